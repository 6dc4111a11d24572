package scan

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/imagetrust/imagetrust/provider/internal/imageref"
)

// indexBytes caps an image index read to find its platforms.
const indexBytes = 256 << 10

// Lookup answers one parsed reference: the digest's own scan or, for an index without a
// usable scan of its own, its platform manifests' scans.
func (s *Service) Lookup(ctx context.Context, ref imageref.Ref) (*Value, error) {
	digest := ref.Digest
	var mediaType types.MediaType
	if digest == "" {
		d, err := s.o.Registry.Head(ctx, ref)
		if err != nil {
			return nil, err
		}
		digest, mediaType = d.Digest.String(), d.MediaType
	}
	h, err := v1.NewHash(digest)
	if err != nil {
		return nil, &imageref.InvalidError{Ref: ref.Original, Reason: err.Error()}
	}
	subj := Subject{Repository: ref.Repository(), Digest: digest} // digest is h.String(): NewHash took it whole
	image := subj.Repository + "@" + digest
	v, err := s.scanDigest(ctx, ref, h, subj, image)
	if err != nil {
		return nil, err
	}
	if v.Scanned || (mediaType != "" && !mediaType.IsIndex()) {
		return v, nil
	}
	plats, err := s.platforms(ctx, ref, digest)
	if err != nil || len(plats) == 0 {
		return v, err
	}
	out, err := s.scanPlatforms(ctx, ref, subj.Repository, plats)
	if err != nil {
		return nil, err
	}
	c := CombinePlatforms(image, digest, out, s.o.Limits)
	for _, r := range v.Rejected {
		c.reject(r.Kind, "index: "+r.Reason)
	}
	return c, nil
}

// maxPlatformWorkers bounds the platform manifests of one key scanned at once (each reads its
// .att tag, attestation layers and referrers), as verify bounds its platform checks; with
// MaxPlatforms capping how many there are, a key's registry reads stay bounded too.
const maxPlatformWorkers = 8

// scanPlatforms scans the platform manifests of an index with at most maxPlatformWorkers at
// once; the first error (a registry failure) stops the rest and is the answer.
func (s *Service) scanPlatforms(ctx context.Context, ref imageref.Ref, repo string, plats []v1.Descriptor) ([]PlatformScan, error) {
	out := make([]PlatformScan, len(plats))
	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	next := make(chan int)
	var (
		wg       sync.WaitGroup
		once     sync.Once
		firstErr error
	)
	for range min(maxPlatformWorkers, len(plats)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				p := plats[i]
				d := p.Digest.String()
				pv, err := s.scanDigest(ctx, ref, p.Digest, Subject{Repository: repo, Digest: d}, repo+"@"+d)
				if err != nil {
					once.Do(func() { firstErr = err; cancel() })
					continue
				}
				out[i] = PlatformScan{Platform: platformName(p.Platform), Value: pv}
			}
		}()
	}
feed:
	for i := range plats {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	if err := parent.Err(); err != nil {
		return nil, err // the deadline came before every platform was scanned
	}
	return out, nil
}

// platforms reads digest's manifest and, when it is an index, returns its platform
// manifests (attestation manifests, platform unknown/unknown, left out), at most MaxPlatforms.
func (s *Service) platforms(ctx context.Context, ref imageref.Ref, digest string) ([]v1.Descriptor, error) {
	m, err := s.o.Registry.Manifest(ctx, ref, digest, indexBytes)
	if err != nil {
		return nil, err
	}
	if !m.MediaType.IsIndex() {
		return nil, nil
	}
	var idx v1.IndexManifest
	if err := json.Unmarshal(m.Raw, &idx); err != nil {
		return nil, fmt.Errorf("index %s: malformed manifest: %w", digest, err)
	}
	var out []v1.Descriptor
	for _, d := range idx.Manifests {
		if d.Platform != nil && d.Platform.OS == "unknown" && d.Platform.Architecture == "unknown" {
			continue
		}
		if len(out) == s.o.MaxPlatforms {
			return nil, fmt.Errorf("index %s: more than %d platform manifests", digest, s.o.MaxPlatforms)
		}
		out = append(out, d)
	}
	return out, nil
}

func platformName(p *v1.Platform) string {
	if p == nil {
		return "unknown"
	}
	n := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		n += "/" + p.Variant
	}
	return n
}
