// Package resolve answers the /v1/resolve and /v1/mutate external-data endpoints on the lookup
// pipeline: each key (an image reference as written in the pod spec) is resolved to its digest
// with a HEAD request (and, for /v1/resolve of an index, one GET by digest for its platforms).
package resolve

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/imagetrust/imagetrust/provider/internal/batch"
	"github.com/imagetrust/imagetrust/provider/internal/cache"
	"github.com/imagetrust/imagetrust/provider/internal/config"
	"github.com/imagetrust/imagetrust/provider/internal/imageref"
	"github.com/imagetrust/imagetrust/provider/internal/lookup"
	"github.com/imagetrust/imagetrust/provider/internal/registry"
	"github.com/imagetrust/imagetrust/provider/internal/wire"
)

// Platform of one manifest of an index.
type Platform struct {
	OS           string `json:"os"`
	Architecture string `json:"architecture"`
	Variant      string `json:"variant,omitempty"`
}

// Answer is the cached result of resolving one pull reference.
type Answer struct {
	Digest    string
	MediaType string
	// Platforms of an index (nil for an image manifest): the first MaxPlatforms of them.
	Platforms []Platform
	// PlatformsTotal is how many platforms the index lists; more than len(Platforms) when the
	// list was truncated.
	PlatformsTotal int
}

// CacheBytes is the memory a cached answer holds (cache.Sizer): its strings and platform
// list (an index's list is capped by lookup.maxPlatforms).
func (a Answer) CacheBytes() int {
	const platform = 3 * 16 // a Platform's three string headers
	n := len(a.Digest) + len(a.MediaType) + 24 + cap(a.Platforms)*platform
	for _, p := range a.Platforms {
		n += len(p.OS) + len(p.Architecture) + len(p.Variant)
	}
	return n
}

// Options configure a Service. Every field is required; the provider's values come from the
// configuration (internal/app builds the shared parts once and hands them in).
type Options struct {
	// Registry is the registry client (allow-list, SSRF guard, auth, mirrors).
	Registry *registry.Client
	// Refs parses keys like the runtime, remembering recent ones.
	Refs *imageref.Memo
	// Pool bounds registry loads across all endpoints.
	Pool *batch.Pool
	// Cache keeps answers by pull reference (/v1/resolve) and by "head" + pull reference
	// (/v1/mutate, which needs the digest only).
	Cache *cache.Cache[Answer]
	// ResolveDeadline and MutateDeadline are the endpoint deadlines (config endpoints.*.deadline).
	ResolveDeadline, MutateDeadline time.Duration
	// LoadTimeout bounds one load (a HEAD, maybe a GET, maybe at a mirror first).
	LoadTimeout time.Duration
	// MaxPlatforms caps the platforms an answer lists (optional; default
	// config.DefaultMaxPlatforms; the provider's is lookup.maxPlatforms).
	MaxPlatforms int
	// RequestBudget is how many registry requests one key may send (optional; default
	// lookup.DefaultRequestBudget).
	RequestBudget int64
	// Indexes reads and keeps index platform lists by digest, shared with /v1/verify
	// (optional; default: one of DefaultIndexCacheBytes for this Service alone).
	Indexes *Indexes
}

// Service resolves image references. Safe for concurrent use.
type Service struct {
	reg          *registry.Client
	indexes      *Indexes
	maxPlatforms int
	resolve      *lookup.Pipeline[Answer]
	mutate       *lookup.Pipeline[Answer]
}

// New builds a Service on the shared parts.
func New(o Options) (*Service, error) {
	if o.Registry == nil || o.Cache == nil {
		return nil, errors.New("resolve: Options.Registry and Options.Cache are required")
	}
	if o.MaxPlatforms <= 0 {
		o.MaxPlatforms = config.DefaultMaxPlatforms
	}
	if o.Indexes == nil {
		x, err := NewIndexes(IndexesOptions{Registry: o.Registry, MaxBytes: DefaultIndexCacheBytes})
		if err != nil {
			return nil, err
		}
		o.Indexes = x
	}
	s := &Service{reg: o.Registry, indexes: o.Indexes, maxPlatforms: o.MaxPlatforms}
	var err error
	s.resolve, err = lookup.New(lookup.Options[Answer]{
		Name: "resolve", Refs: o.Refs, Registries: o.Registry, Pool: o.Pool, Cache: o.Cache,
		Deadline: o.ResolveDeadline, LoadTimeout: o.LoadTimeout, RequestBudget: o.RequestBudget,
		Load: s.load,
		Render: func(ref imageref.Ref, _ any, a Answer, stale bool) (any, error) {
			return resolveValue(ref, a, stale), nil
		},
	})
	if err != nil {
		return nil, err
	}
	s.mutate, err = lookup.New(lookup.Options[Answer]{
		Name: "mutate", Refs: o.Refs, Registries: o.Registry, Pool: o.Pool, Cache: o.Cache,
		Deadline: o.MutateDeadline, LoadTimeout: o.LoadTimeout, RequestBudget: o.RequestBudget,
		CacheKey: func(ref imageref.Ref) string { return "head\x00" + ref.Pull() },
		// A reference with a digest is answered as written: mutation is idempotent.
		Direct: func(ref imageref.Ref) (any, bool) { return ref.Original, ref.Digest != "" },
		Load:   s.head,
		Render: func(ref imageref.Ref, _ any, a Answer, _ bool) (any, error) { return ref.Pinned(a.Digest), nil },
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// ResolveLookup is the /v1/resolve pipeline (server.Lookup shape).
func (s *Service) ResolveLookup(ctx context.Context, keys []string) ([]wire.Item, []wire.Class) {
	return s.resolve.Lookup(ctx, keys)
}

// MutateLookup is the /v1/mutate pipeline (server.Lookup shape).
func (s *Service) MutateLookup(ctx context.Context, keys []string) ([]wire.Item, []wire.Class) {
	return s.mutate.Lookup(ctx, keys)
}

// Resolve answers /v1/resolve: per key a value {"image": normalised reference, "digest",
// "mediaType", "platforms", "platformsTotal", "platformsTruncated" (for an index), "stale": true
// (only when served stale)} or an error.
func (s *Service) Resolve(ctx context.Context, keys []string) []wire.Item {
	return s.resolve.Items(ctx, keys)
}

// Mutate answers /v1/mutate: per key the reference in the user's spelling pinned to its digest
// (name:tag@digest, or name@digest when no tag was written), from one HEAD. A reference that
// already has a digest is returned unchanged without contacting the registry, so mutation is
// idempotent. During a registry outage a cached digest up to MaxStale old is used.
func (s *Service) Mutate(ctx context.Context, keys []string) []wire.Item {
	return s.mutate.Items(ctx, keys)
}

// head resolves one reference to its digest with one HEAD (what mutation needs).
func (s *Service) head(ctx context.Context, ref imageref.Ref) (Answer, error) {
	desc, err := s.reg.Head(ctx, ref)
	if err != nil {
		return Answer{}, err
	}
	return Answer{Digest: desc.Digest.String(), MediaType: internMediaType(string(desc.MediaType))}, nil
}

// load resolves one reference at the registry: HEAD (by digest or tag), and for an index its
// platform list (one GET by digest, shared by every tag that points at the index), of which the
// answer keeps the first maxPlatforms.
func (s *Service) load(ctx context.Context, ref imageref.Ref) (Answer, error) {
	a, err := s.head(ctx, ref)
	if err != nil {
		return Answer{}, err
	}
	if types.MediaType(a.MediaType).IsIndex() {
		idx, err := s.indexes.Platforms(ctx, ref, a.Digest)
		if err != nil {
			return Answer{}, err
		}
		a.Platforms = make([]Platform, 0, min(len(idx.Entries), s.maxPlatforms))
		for i := range idx.Entries {
			e := &idx.Entries[i]
			if !e.HasPlatform || e.OS == "unknown" {
				continue // attestation manifests and the like
			}
			if a.PlatformsTotal++; len(a.Platforms) < s.maxPlatforms {
				a.Platforms = append(a.Platforms, Platform{OS: e.OS, Architecture: e.Architecture, Variant: e.Variant})
			}
		}
	}
	return a, nil
}

// internMediaType shares one string per well-known media type instead of one per cache entry.
func internMediaType(mt string) string {
	for _, known := range []types.MediaType{types.OCIManifestSchema1, types.OCIImageIndex, types.DockerManifestSchema2, types.DockerManifestList, types.DockerManifestSchema1, types.DockerManifestSchema1Signed} {
		if mt == string(known) {
			return string(known)
		}
	}
	return mt
}

// resolveValue renders the /v1/resolve value as pre-encoded JSON.
func resolveValue(ref imageref.Ref, a Answer, stale bool) wire.Encoded {
	img := ref.Normalized()
	b := make([]byte, 0, len(img)+len(a.Digest)+len(a.MediaType)+64)
	b = append(b, `{"image":`...)
	b = appendJSONString(b, img)
	if stale {
		b = append(b, `,"stale":true`...)
	}
	b = append(b, `,"digest":`...)
	b = appendJSONString(b, a.Digest)
	b = append(b, `,"mediaType":`...)
	b = appendJSONString(b, a.MediaType)
	if a.Platforms != nil {
		p, _ := json.Marshal(a.Platforms) // plain strings: cannot fail
		b = append(b, `,"platforms":`...)
		b = append(b, p...)
		b = append(b, `,"platformsTotal":`...)
		b = strconv.AppendInt(b, int64(a.PlatformsTotal), 10)
		b = append(b, `,"platformsTruncated":`...)
		b = strconv.AppendBool(b, a.PlatformsTotal > len(a.Platforms))
	}
	return append(b, '}')
}

// appendJSONString quotes s for JSON: printable ASCII without quotes or backslashes (every
// parsed reference and digest) is copied as is; anything else goes through encoding/json.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			j, _ := json.Marshal(s)
			return append(b, j...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
