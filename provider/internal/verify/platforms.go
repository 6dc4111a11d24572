package verify

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/imagetrust/imagetrust/provider/internal/imageref"
	"github.com/imagetrust/imagetrust/provider/internal/registry"
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
	m, err := s.reg.Manifest(ctx, ref, digest, 4<<20)
	if err != nil {
		*outErr = err
		return
	}
	var idx v1.IndexManifest
	if err := json.Unmarshal(m.Raw, &idx); err != nil {
		*outErr = &registry.UnavailableError{Ref: ref.Original, Err: fmt.Errorf("malformed index %s: %w", digest, err)}
		return
	}
	*out = idx.Manifests
}

// verifyPlatforms checks, for authorities with verifyPlatforms, that every platform manifest
// of the index carries the authority's own signature; an authority that misses one is removed
// from the index's signatures.
func (s *Service) verifyPlatforms(ctx context.Context, ref imageref.Ref, auths []*authority, v *Value) error {
	var vp []*authority
	for _, a := range auths {
		if a.verifyPlatforms {
			vp = append(vp, a)
		}
	}
	if len(vp) == 0 {
		return nil
	}
	type res struct {
		names map[string]bool
		err   error
	}
	out := make([]res, len(v.Platforms))
	var wg sync.WaitGroup
	for i := range v.Platforms {
		pl := v.Platforms[i]
		if pl.OS == "unknown" && pl.Architecture == "unknown" {
			continue // build attestation manifests, not runnable platforms
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			h, err := v1.NewHash(pl.Digest)
			if err != nil {
				out[i].err = err
				return
			}
			var sp, rp partial
			var iwg sync.WaitGroup
			if sa := filter(vp, func(a *authority) bool { return a.cosign }); len(sa) > 0 {
				iwg.Add(1)
				go func() { defer iwg.Done(); s.signatures(ctx, ref, h, sa, &sp) }()
			}
			if ra := filter(vp, func(a *authority) bool { return a.bundle }); len(ra) > 0 {
				iwg.Add(1)
				go func() { defer iwg.Done(); s.referrers(ctx, ref, h, ra, &rp) }()
			}
			iwg.Wait()
			if sp.err != nil {
				out[i].err = sp.err
				return
			}
			if rp.err != nil {
				out[i].err = rp.err
				return
			}
			names := map[string]bool{}
			for _, sig := range sp.sigs {
				names[sig.Authority] = true
			}
			for _, st := range rp.stmts {
				if st.st.PredicateType == cosignSignPredicate {
					for _, sig := range st.sigs {
						names[sig.Authority] = true
					}
				}
			}
			out[i].names = names
		}()
	}
	wg.Wait()
	missing := map[string]string{}
	for i := range v.Platforms {
		pl := &v.Platforms[i]
		if pl.OS == "unknown" && pl.Architecture == "unknown" {
			continue
		}
		if out[i].err != nil {
			return out[i].err
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

func platformString(p Platform) string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}
