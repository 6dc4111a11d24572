package verify

import (
	"context"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/imagetrust/imagetrust/provider/internal/imageref"
	"github.com/imagetrust/imagetrust/provider/internal/resolve"
)

// platformsOf learns the media type (one HEAD by digest when the reference had a digest) and,
// for an index, its platform manifests.
func (s *Service) platformsOf(ctx context.Context, ref imageref.Ref, digest string, mt types.MediaType, outMT *types.MediaType, out *[]v1.Descriptor, outErr *error) {
	if mt == "" {
		d, err := s.reg.Head(ctx, ref)
		if err != nil {
			*outErr = err
			return
		}
		mt = d.MediaType
	}
	*outMT = mt
	if !mt.IsIndex() {
		return
	}
	idx, err := s.indexes.Platforms(ctx, ref, digest)
	if err != nil {
		*outErr = err
		return
	}
	// The list is shared with every key whose reference resolves to this index: copied into
	// descriptors (one allocation for the platforms) that the answer then owns.
	ds := make([]v1.Descriptor, len(idx.Entries))
	ps := make([]v1.Platform, len(idx.Entries))
	for i := range idx.Entries {
		e := &idx.Entries[i]
		ds[i].Digest = e.Digest
		if e.HasPlatform {
			ps[i] = v1.Platform{OS: e.OS, Architecture: e.Architecture, Variant: e.Variant}
			ds[i].Platform = &ps[i]
		}
	}
	*out = ds
}

// indexesOf is o.Indexes, or one for this Service alone.
func indexesOf(o Options) (*resolve.Indexes, error) {
	if o.Indexes != nil {
		return o.Indexes, nil
	}
	return resolve.NewIndexes(resolve.IndexesOptions{Registry: o.Registry, MaxBytes: resolve.DefaultIndexCacheBytes})
}

// verifyPlatforms checks, for authorities with verifyPlatforms, that every platform manifest
// of the index carries the authority's own signature; an authority that misses one is removed
// from the index's signatures. Every platform is checked; the answer then lists only the first
// Limits.Platforms of them (capPlatforms).
func (s *Service) verifyPlatforms(ctx context.Context, ref imageref.Ref, auths []*authority, v *Value) error {
	defer capPlatforms(v, s.lim.Platforms)
	var vp []*authority
	for _, a := range auths {
		if a.verifyPlatforms {
			vp = append(vp, a)
		}
	}
	if len(vp) == 0 {
		return nil
	}
	out := make([]platformResult, len(v.Platforms))
	// A bounded number of workers checks the platforms; the first error (a registry failure,
	// or the key's request budget spent) stops the rest.
	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	next := make(chan int)
	var (
		wg       sync.WaitGroup
		firstErr error
		once     sync.Once
	)
	for range min(maxPlatformWorkers, len(v.Platforms)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if out[i] = s.platformSigners(ctx, ref, vp, v.Platforms[i].Digest); out[i].err != nil {
					once.Do(func() { firstErr = out[i].err; cancel() })
				}
			}
		}()
	}
feed:
	for i := range v.Platforms {
		pl := v.Platforms[i]
		if pl.OS == "unknown" && pl.Architecture == "unknown" {
			continue // build attestation manifests, not runnable platforms
		}
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err := parent.Err(); err != nil {
		return err // the endpoint deadline came first: no verdict for the platforms left
	}
	if firstErr != nil {
		return firstErr
	}
	missing := map[string]string{}
	for i := range v.Platforms {
		pl := &v.Platforms[i]
		if pl.OS == "unknown" && pl.Architecture == "unknown" {
			continue
		}
		for _, a := range vp {
			if out[i].names[a.name] {
				pl.VerifiedBy = append(pl.VerifiedBy, a.name)
			} else if _, ok := missing[a.name]; !ok {
				missing[a.name] = platformString(*pl) + " (" + pl.Digest + ")"
			}
		}
	}
	if len(missing) == 0 {
		return nil
	}
	kept := v.Signatures[:0]
	for _, sig := range v.Signatures {
		if m, ok := missing[sig.Authority]; ok {
			v.reject("platform", "authority %s signed the index but not platform %s", sig.Authority, m)
			continue
		}
		kept = append(kept, sig)
	}
	v.Signatures = kept
	return nil
}

// capPlatforms keeps the first limit platforms of v's list and records the total and whether
// the list was truncated: an index of thousands of platforms (legal under the 4 MiB index cap)
// must not turn into an answer, and a cache entry, of megabytes.
func capPlatforms(v *Value, limit int) {
	v.PlatformsTotal = len(v.Platforms)
	if len(v.Platforms) <= limit {
		return
	}
	v.Platforms = append([]Platform(nil), v.Platforms[:limit]...)
	v.PlatformsTruncated = true
}

// maxPlatformWorkers bounds the platforms of one key checked at once (each runs at most two
// lookups: signature tag and referrers).
const maxPlatformWorkers = 8

type platformResult struct {
	names map[string]bool
	err   error
}

// platformSigners returns the names of the authorities in vp whose signature the platform
// manifest digest carries.
func (s *Service) platformSigners(ctx context.Context, ref imageref.Ref, vp []*authority, digest string) platformResult {
	h, err := v1.NewHash(digest)
	if err != nil {
		return platformResult{err: err}
	}
	var sp, rp partial
	var iwg sync.WaitGroup
	if sa := filter(vp, func(a *authority) bool { return a.cosign }); len(sa) > 0 {
		iwg.Add(1)
		go func() { defer iwg.Done(); s.signatures(ctx, ref, h, sa, &sp) }()
	}
	if ra := filter(vp, func(a *authority) bool { return a.bundle }); len(ra) > 0 {
		iwg.Add(1)
		go func() { defer iwg.Done(); s.referrers(ctx, ref, h, ra, readSignatures, &rp) }()
	}
	iwg.Wait()
	if sp.err != nil {
		return platformResult{err: sp.err}
	}
	if rp.err != nil {
		return platformResult{err: rp.err}
	}
	names := map[string]bool{}
	for _, sig := range append(sp.sigs, rp.sigs...) { // rp.sigs: cosign's OCI 1.1 signature referrers
		names[sig.Authority] = true
	}
	for _, st := range rp.stmts { // bundles
		if st.st.PredicateType == cosignSignPredicate {
			for _, sig := range st.sigs {
				names[sig.Authority] = true
			}
		}
	}
	return platformResult{names: names}
}

func platformString(p Platform) string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}
