package resolve

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unsafe"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/singleflight"

	"github.com/imagetrust/imagetrust/provider/internal/cache"
	"github.com/imagetrust/imagetrust/provider/internal/config"
	"github.com/imagetrust/imagetrust/provider/internal/imageref"
	"github.com/imagetrust/imagetrust/provider/internal/registry"
)

// ManifestReader reads one manifest by digest within the provider's caps (the provider's
// *registry.Client).
type ManifestReader interface {
	Manifest(ctx context.Context, ref imageref.Ref, reference string, limit int64) (*registry.Manifest, error)
}

// IndexEntry is one manifest an index lists: its digest and platform.
type IndexEntry struct {
	Digest v1.Hash
	// OS, Architecture and Variant of the entry's platform (empty when HasPlatform is false).
	OS, Architecture, Variant string
	// HasPlatform is false for an entry without a "platform" object.
	HasPlatform bool
}

// Index is the decoded platform list of one index, shared read-only by every key whose
// reference resolves to that index.
type Index struct {
	Entries []IndexEntry
}

// CacheBytes estimates the memory the list holds (cache.Sizer): the entries and their strings
// (counted even when a well-known platform string is shared, so the estimate errs high).
func (x *Index) CacheBytes() int {
	n := 24 + cap(x.Entries)*int(unsafe.Sizeof(IndexEntry{}))
	for i := range x.Entries {
		e := &x.Entries[i]
		n += len(e.Digest.Algorithm) + 1 + len(e.Digest.Hex) + len(e.OS) + len(e.Architecture) + len(e.Variant)
	}
	return n
}

// DefaultIndexCacheBytes bounds an Indexes built for a Service whose options name none.
const DefaultIndexCacheBytes = 8 << 20

// indexTTL: an entry is keyed by its digest, so its content never changes; the TTL only lets an
// unused list leave before the byte bound evicts it.
const indexTTL = time.Hour

// IndexesOptions configure Indexes.
type IndexesOptions struct {
	// Registry reads the index manifests (required).
	Registry ManifestReader
	// MaxBytes bounds the memory the decoded lists hold (required, > 0); the least recently
	// used are evicted beyond it.
	MaxBytes int64
	// MaxIndexBytes caps one index manifest read (optional; default
	// config.DefaultMaxIndexBytes; the provider's is lookup.maxIndexBytes). A larger index is
	// "limit exceeded:" naming the cap.
	MaxIndexBytes int64
	// Registerer receives the cache metrics, as cache "index" (optional).
	Registerer prometheus.Registerer
}

// Indexes reads index manifests by digest for their platform lists and keeps one decoded list
// per digest: the tags that point at one index, in any repository of any registry, share one
// read and one decode (concurrent keys wait for the one read in flight). Only a list whose
// content hashed to its digest is stored, so an entry is the content of that digest wherever it
// is stored: it never needs invalidation, and no registry can plant a list under a digest for
// another. The caller has already learnt, from the key's own registry and repository (the HEAD
// of its tag or digest), that the digest is there. Errors are never stored: a registry that
// answers badly for a digest does not fail another registry's keys. Safe for concurrent use.
type Indexes struct {
	reg      ManifestReader
	cache    *cache.Cache[*Index]
	group    singleflight.Group
	maxIndex int64
}

// NewIndexes builds an empty Indexes.
func NewIndexes(o IndexesOptions) (*Indexes, error) {
	if o.Registry == nil {
		return nil, errors.New("resolve: IndexesOptions.Registry is required")
	}
	if o.MaxBytes <= 0 {
		return nil, fmt.Errorf("resolve: IndexesOptions.MaxBytes must be > 0, got %d", o.MaxBytes)
	}
	c, err := cache.New[*Index](cache.Options{
		Name: "index",
		// The byte bound decides; the entry bound only caps bookkeeping for tiny indexes.
		MaxEntries: int(min(o.MaxBytes/256+1, 1<<20)),
		MaxBytes:   o.MaxBytes,
		TTL:        indexTTL,
		Registerer: o.Registerer,
	})
	if err != nil {
		return nil, err
	}
	if o.MaxIndexBytes <= 0 {
		o.MaxIndexBytes = config.DefaultMaxIndexBytes
	}
	return &Indexes{reg: o.Registry, cache: c, maxIndex: o.MaxIndexBytes}, nil
}

// Bytes is the estimated memory the stored lists hold.
func (x *Indexes) Bytes() int64 { return x.cache.Bytes() }

// maxIndexAttempts bounds how often a key joins a read that another key's context ended.
const maxIndexAttempts = 3

// Platforms returns the platform list of the index digest, which ref's repository holds: from
// memory, or from the read in flight for another key, or read now from ref's repository (by
// digest, at most IndexesOptions.MaxIndexBytes, the content hashed against digest) under ctx and
// its request budget. The returned list is shared: callers must not modify it.
func (x *Indexes) Platforms(ctx context.Context, ref imageref.Ref, digest string) (*Index, error) {
	key := digest
	for attempt := 1; ; attempt++ {
		if idx, _, ok := x.cache.Fresh(key); ok {
			return idx, nil
		}
		led := false
		ch := x.group.DoChan(key, func() (any, error) {
			led = true
			idx, err := x.read(ctx, ref, digest)
			if err == nil {
				x.cache.Put(key, idx) // only a list whose content hashed to digest
			}
			return idx, err
		})
		select {
		case r := <-ch:
			if r.Err == nil {
				return r.Val.(*Index), nil
			}
			// A read another key led can fail on that key's deadline or request budget;
			// this key, with time and budget left, reads again (or joins the next read).
			if led {
				return nil, r.Err
			}
			if attempt >= maxIndexAttempts || ctx.Err() != nil || !leaderBound(r.Err) {
				return nil, relabel(r.Err, ref.Original)
			}
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for index %s: %w", digest, context.Cause(ctx))
		}
	}
}

// leaderBound reports whether err came from the reading key's own limits rather than from
// the registry or the content.
func leaderBound(err error) bool {
	var be *registry.BudgetError
	return errors.As(err, &be) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// relabel names ref (this key) instead of the key that led a shared read in the registry
// errors that name a reference: the first of them in err's chain, in this order.
func relabel(err error, ref string) error {
	for _, rebind := range []func(error) (error, bool){
		withRef(func(e *registry.InvalidManifestError) { e.Ref = ref }),
		withRef(func(e *registry.NotFoundError) { e.Ref = ref }),
		withRef(func(e *registry.DeniedError) { e.Ref = ref }),
		withRef(func(e *registry.UnavailableError) { e.Ref = ref }),
	} {
		if c, ok := rebind(err); ok {
			return c
		}
	}
	return err
}

// withRef returns a function that finds the first *E in an error's chain and returns a copy
// of it with set applied (false when the chain holds no *E).
func withRef[E any, P interface {
	*E
	error
}](set func(P)) func(error) (error, bool) {
	return func(err error) (error, bool) {
		var e P
		if !errors.As(err, &e) {
			return nil, false
		}
		c := P(new(E))
		*c = *e
		set(c)
		return c, true
	}
}

// read GETs and decodes the index.
func (x *Indexes) read(ctx context.Context, ref imageref.Ref, digest string) (*Index, error) {
	m, err := x.reg.Manifest(ctx, ref, digest, x.maxIndex)
	var tl *registry.TooLargeError
	if errors.As(err, &tl) {
		return nil, &registry.TooLargeError{What: "index " + digest + " (lookup.maxIndexBytes)", Max: x.maxIndex}
	}
	if err != nil {
		return nil, err
	}
	return decodeIndex(m.Raw, ref.Original, digest)
}

// decodeIndex decodes what the platform list needs of the index digest (its entries' digests
// and platforms; the whole v1.IndexManifest, annotations included, costs more for nothing) and
// checks every platform string against registry.MaxPlatformFieldBytes. ref names the index in
// errors.
func decodeIndex(raw []byte, ref, digest string) (*Index, error) {
	var im struct {
		Manifests []struct {
			Digest   v1.Hash      `json:"digest"`
			Platform *v1.Platform `json:"platform"`
		} `json:"manifests"`
	}
	if err := json.Unmarshal(raw, &im); err != nil {
		return nil, &registry.InvalidManifestError{Ref: ref, What: "index " + digest, Err: err}
	}
	idx := &Index{Entries: make([]IndexEntry, len(im.Manifests))}
	for i, d := range im.Manifests {
		if err := registry.CheckPlatform(d.Platform); err != nil {
			return nil, err
		}
		e := &idx.Entries[i]
		e.Digest = d.Digest
		if p := d.Platform; p != nil {
			e.HasPlatform = true
			e.OS, e.Architecture, e.Variant = internPlatformString(p.OS), internPlatformString(p.Architecture), internPlatformString(p.Variant)
		}
	}
	return idx, nil
}

// internPlatformString shares one string per common platform field value instead of one per
// index entry.
func internPlatformString(s string) string {
	switch s {
	case "linux":
		return "linux"
	case "windows":
		return "windows"
	case "unknown":
		return "unknown"
	case "amd64":
		return "amd64"
	case "arm64":
		return "arm64"
	case "arm":
		return "arm"
	case "386":
		return "386"
	case "ppc64le":
		return "ppc64le"
	case "s390x":
		return "s390x"
	case "riscv64":
		return "riscv64"
	case "v5":
		return "v5"
	case "v6":
		return "v6"
	case "v7":
		return "v7"
	case "v8":
		return "v8"
	}
	return s
}
