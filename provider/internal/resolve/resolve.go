// Package resolve answers the /v1/resolve and /v1/mutate external-data endpoints: each key (an
// image reference as written in the pod spec) is parsed like the runtime parses it, checked
// against the configured registries, and resolved to its digest with a HEAD request, through
// the answer cache and the shared worker pool, under the endpoint deadline.
package resolve

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/kubernetes"

	"github.com/imagetrust/imagetrust/provider/internal/batch"
	"github.com/imagetrust/imagetrust/provider/internal/cache"
	"github.com/imagetrust/imagetrust/provider/internal/config"
	"github.com/imagetrust/imagetrust/provider/internal/imageref"
	"github.com/imagetrust/imagetrust/provider/internal/registry"
	"github.com/imagetrust/imagetrust/provider/internal/wire"
)

// Defaults used when the configuration leaves a field at zero.
const (
	DefaultResolveDeadline = 2500 * time.Millisecond
	DefaultMutateDeadline  = 800 * time.Millisecond
	DefaultWorkers         = 64
	DefaultMaxEntries      = 100000
	DefaultTTL             = 5 * time.Minute
	DefaultNotFoundTTL     = 30 * time.Second
)

// memoEntries bounds the parse memo (about 200 bytes per entry).
const memoEntries = 8192

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
	// Platforms of an index (nil for an image manifest).
	Platforms []Platform
}

// Option adjusts a Service.
type Option func(*options)

type options struct {
	kube   kubernetes.Interface
	tls    *tls.Config
	now    func() time.Time
	pool   *batch.Pool
	regCli *registry.Client
}

// WithKubernetes gives the client used to read pull secrets (needed when cfg.Auth.Kubernetes is set).
func WithKubernetes(cs kubernetes.Interface) Option { return func(o *options) { o.kube = cs } }

// WithRegistryTLS sets the TLS configuration for registry connections (extra root CAs).
func WithRegistryTLS(c *tls.Config) Option { return func(o *options) { o.tls = c } }

// WithClock injects the cache clock (tests).
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithPool shares a worker pool built elsewhere (default: one built from cfg.Lookup.Workers).
func WithPool(p *batch.Pool) Option { return func(o *options) { o.pool = p } }

// WithRegistryClient shares a registry client built elsewhere (default: one built from cfg).
func WithRegistryClient(c *registry.Client) Option { return func(o *options) { o.regCli = c } }

// Service resolves image references. Safe for concurrent use.
type Service struct {
	reg             *registry.Client
	pool            *batch.Pool
	cache           *cache.Cache[Answer]
	refs            *imageref.Memo
	resolveDeadline time.Duration
	mutateDeadline  time.Duration
	loadTimeout     time.Duration
}

// New builds a Service from the configuration. reg receives the metrics of the cache, the pool
// and the registry client (nil: not registered).
func New(ctx context.Context, cfg config.Config, reg prometheus.Registerer, opts ...Option) (*Service, error) {
	var o options
	for _, f := range opts {
		f(&o)
	}
	s := &Service{
		resolveDeadline: or(cfg.Endpoints.Resolve.Deadline.D(), DefaultResolveDeadline),
		mutateDeadline:  or(cfg.Endpoints.Mutate.Deadline.D(), DefaultMutateDeadline),
		// A load is a HEAD, maybe a GET, maybe at a mirror first: a few registry timeouts.
		loadTimeout: 3 * or(cfg.Lookup.RegistryTimeout.D(), 2*time.Second),
	}
	var err error
	s.reg = o.regCli
	if s.reg == nil {
		s.reg, err = NewRegistryClient(ctx, cfg, reg, o.kube, o.tls)
		if err != nil {
			return nil, err
		}
	}
	s.pool = o.pool
	if s.pool == nil {
		w := cfg.Lookup.Workers
		if w <= 0 {
			w = DefaultWorkers
		}
		if s.pool, err = batch.NewPool(w, reg); err != nil {
			return nil, err
		}
	}
	// The parse memo covers the hot working set only: beyond it a key costs one parse (µs).
	s.refs = imageref.NewMemo(min(orInt(cfg.Cache.MaxEntries, DefaultMaxEntries), memoEntries))
	s.cache, err = cache.New[Answer](cache.Options{
		Name:        "resolve",
		MaxEntries:  orInt(cfg.Cache.MaxEntries, DefaultMaxEntries),
		TTL:         or(cfg.Cache.TTL.D(), DefaultTTL),
		NotFoundTTL: or(cfg.Cache.NotFoundTTL.D(), DefaultNotFoundTTL),
		MaxStale:    cfg.Cache.MaxStale.D(),
		Negative:    registry.IsNegative,
		Now:         o.now,
		Registerer:  reg,
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// NewRegistryClient builds the registry client from the configuration (shared with the verify
// service so both use one transport, one SSRF guard and one set of per-registry limits).
func NewRegistryClient(ctx context.Context, cfg config.Config, reg prometheus.Registerer, kube kubernetes.Interface, tlsConfig *tls.Config) (*registry.Client, error) {
	return registry.New(ctx, registry.Options{
		Registries:             cfg.Registries,
		Auth:                   cfg.Auth,
		Kubernetes:             kube,
		PerRegistryConcurrency: cfg.Lookup.PerRegistryConcurrency,
		Timeout:                cfg.Lookup.RegistryTimeout.D(),
		TLSConfig:              tlsConfig,
		Registerer:             reg,
	})
}

// Registry is the registry client the service uses.
func (s *Service) Registry() *registry.Client { return s.reg }

// Pool is the worker pool the service uses.
func (s *Service) Pool() *batch.Pool { return s.pool }

// Refs is the memo of parsed references, for other services to share.
func (s *Service) Refs() *imageref.Memo { return s.refs }

func or(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

func orInt(n, def int) int {
	if n <= 0 {
		return def
	}
	return n
}

// lookup is one key's answer before it is rendered for an endpoint.
type lookup struct {
	ref   imageref.Ref
	ans   Answer
	stale bool
}

// Resolve answers /v1/resolve: per key a value {"image": normalised reference, "digest",
// "mediaType", "platforms" (for an index), "stale": true (only when served stale)} or an error.
func (s *Service) Resolve(ctx context.Context, keys []string) []wire.Item {
	ctx, cancel := withBudget(ctx, s.resolveDeadline)
	defer cancel()
	return s.run(ctx, keys, false, func(l lookup) any { return resolveValue(l) })
}

// Mutate answers /v1/mutate: per key the reference in the user's spelling pinned to its digest
// (name:tag@digest, or name@digest when no tag was written). A reference that already has a
// digest is returned unchanged without contacting the registry, so mutation is idempotent.
// During a registry outage a cached digest up to MaxStale old is used.
func (s *Service) Mutate(ctx context.Context, keys []string) []wire.Item {
	ctx, cancel := withBudget(ctx, s.mutateDeadline)
	defer cancel()
	return s.run(ctx, keys, true, func(l lookup) any {
		if l.ref.Digest != "" {
			return l.ref.Original
		}
		return l.ref.Pinned(l.ans.Digest)
	})
}

// withBudget bounds ctx by the endpoint deadline and stops the lookups a little earlier (a tenth
// of the remaining time, at most 50ms), so the answer, "timed out" keys included, is encoded and
// sent before the deadline rather than at it.
func withBudget(ctx context.Context, deadline time.Duration) (context.Context, context.CancelFunc) {
	dl := time.Now().Add(deadline)
	if d, ok := ctx.Deadline(); ok && d.Before(dl) {
		dl = d
	}
	margin := min(50*time.Millisecond, time.Until(dl)/10)
	return context.WithDeadline(ctx, dl.Add(-margin))
}

func (s *Service) run(ctx context.Context, keys []string, pinnedShortcut bool, render func(lookup) any) []wire.Item {
	items := make([]wire.Item, len(keys))
	var missKeys []string
	var missIdx []int
	var missRefs []imageref.Ref
	for i, k := range keys {
		items[i].Key = k
		ref, err := s.refs.Parse(k)
		if err != nil {
			items[i].Error = err.Error()
			continue
		}
		if _, err := s.reg.Allowed(ref); err != nil {
			items[i].Error = err.Error()
			continue
		}
		if pinnedShortcut && ref.Digest != "" {
			items[i].Value = render(lookup{ref: ref})
			continue
		}
		ans, err, ok := s.cache.Fresh(ref.Pull())
		if ok {
			if err != nil {
				items[i].Error = err.Error()
			} else {
				items[i].Value = render(lookup{ref: ref, ans: ans})
			}
			continue
		}
		missKeys = append(missKeys, ref.Pull())
		missIdx = append(missIdx, i)
		missRefs = append(missRefs, ref)
	}
	if len(missKeys) == 0 {
		return items
	}
	refByPull := make(map[string]imageref.Ref, len(missKeys))
	for j, k := range missKeys {
		refByPull[k] = missRefs[j]
	}
	// batch.Run hands each key a context ending just before the batch's, so an answer served
	// stale because the registry is slow is in before Run gives up on the key.
	res := batch.Run(ctx, missKeys, func(ctx context.Context, pull string) (cache.Result[Answer], error) {
		ref := refByPull[pull]
		return s.cache.Get(ctx, pull, func(ctx context.Context) (Answer, error) {
			// Detached from the batch (other batches may share this load); bounded here.
			ctx, cancel := context.WithTimeout(ctx, s.loadTimeout)
			defer cancel()
			var a Answer
			err := s.pool.Do(ctx, func() (err error) {
				a, err = s.load(ctx, ref)
				return err
			})
			if err != nil {
				return Answer{}, registry.Classify(ref.Original, err)
			}
			return a, nil
		})
	})
	for j, r := range res {
		i := missIdx[j]
		if r.Err != nil {
			items[i].Error = r.Err.Error()
			continue
		}
		items[i].Value = render(lookup{ref: missRefs[j], ans: r.Value.Value, stale: r.Value.Stale})
	}
	return items
}

// load resolves one reference at the registry: HEAD (by digest or tag), and for an index a GET
// by digest for its platforms.
func (s *Service) load(ctx context.Context, ref imageref.Ref) (Answer, error) {
	desc, err := s.reg.Head(ctx, ref)
	if err != nil {
		return Answer{}, err
	}
	a := Answer{Digest: desc.Digest.String(), MediaType: internMediaType(string(desc.MediaType))}
	if desc.MediaType.IsIndex() {
		d, err := s.reg.Get(ctx, ref, a.Digest)
		if err != nil {
			return Answer{}, err
		}
		var im v1.IndexManifest
		if err := json.Unmarshal(d.Manifest, &im); err != nil {
			return Answer{}, &registry.UnavailableError{Ref: ref.Original, Err: fmt.Errorf("index %s is not valid JSON: %w", a.Digest, err)}
		}
		a.Platforms = make([]Platform, 0, len(im.Manifests))
		for _, m := range im.Manifests {
			if m.Platform == nil || m.Platform.OS == "unknown" {
				continue // attestation manifests and the like
			}
			a.Platforms = append(a.Platforms, Platform{OS: m.Platform.OS, Architecture: m.Platform.Architecture, Variant: m.Platform.Variant})
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
func resolveValue(l lookup) wire.Encoded {
	img := l.ref.Normalized()
	a := l.ans
	b := make([]byte, 0, len(img)+len(a.Digest)+len(a.MediaType)+64)
	b = append(b, `{"image":`...)
	b = appendJSONString(b, img)
	if l.stale {
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
