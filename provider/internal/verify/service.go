// Package verify answers POST /v1/verify: for each image it proves, with cryptography and
// against the configured authorities, which signatures, attestations, SBOMs and provenance
// belong to the image's digest. After at most one HEAD for a tag everything is read by digest:
// cosign's tag scheme (sha256-<hex>.sig / .att) and OCI referrers (Sigstore bundles, in-toto
// attestations, SBOM artifacts). Multi-arch indexes report their platforms and, for authorities
// with verifyPlatforms, every platform manifest's own signature is checked too.
package verify

import (
	"context"
	"errors"
	"fmt"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/imagetrust/imagetrust/provider/internal/batch"
	"github.com/imagetrust/imagetrust/provider/internal/cache"
	"github.com/imagetrust/imagetrust/provider/internal/config"
	"github.com/imagetrust/imagetrust/provider/internal/imageref"
	"github.com/imagetrust/imagetrust/provider/internal/lookup"
	"github.com/imagetrust/imagetrust/provider/internal/registry"
	"github.com/imagetrust/imagetrust/provider/internal/resolve"
	"github.com/imagetrust/imagetrust/provider/internal/wire"
)

// Limits cap what one verification reads. Zero fields take the defaults.
type Limits struct {
	// Layers: signature / attestation layers examined per manifest (default 32).
	Layers int
	// Referrers examined per digest (default 64).
	Referrers int
	// ManifestBytes: a signature, attestation or referrer manifest (default 256 KiB).
	ManifestBytes int64
	// PayloadBytes: a simple-signing payload (default 64 KiB).
	PayloadBytes int64
	// AttestationBytes: a DSSE envelope or Sigstore bundle (default 4 MiB).
	AttestationBytes int64
	// Requests: registry requests one key may send (default MaxKeyRequests); a key over it is
	// answered "limit exceeded:".
	Requests int64
	// Platforms an answer lists for an index (default config.DefaultMaxPlatforms; see
	// Answer.PlatformsTruncated).
	Platforms int
}

func (l Limits) withDefaults() Limits {
	if l.Layers <= 0 {
		l.Layers = 32
	}
	if l.Referrers <= 0 {
		l.Referrers = 64
	}
	if l.ManifestBytes <= 0 {
		l.ManifestBytes = 256 << 10
	}
	if l.PayloadBytes <= 0 {
		l.PayloadBytes = 64 << 10
	}
	if l.AttestationBytes <= 0 {
		l.AttestationBytes = 4 << 20
	}
	if l.Requests <= 0 {
		l.Requests = MaxKeyRequests
	}
	if l.Platforms <= 0 {
		l.Platforms = config.DefaultMaxPlatforms
	}
	return l
}

// Registry is what verification reads from registries: whole operations, each reading from
// the mirrors and the origin in order, contacting only allowed registries and returning the
// registry package's typed errors (NotFoundError, DeniedError, UnavailableError,
// NotAllowedError). *registry.Client is one.
type Registry interface {
	// Allowed returns the configuration of the registry ref names, or a NotAllowedError.
	Allowed(ref imageref.Ref) (config.Registry, error)
	// Head resolves ref with one HEAD request (by tag, or by digest when ref has one).
	Head(ctx context.Context, ref imageref.Ref) (*v1.Descriptor, error)
	// Manifest GETs the manifest reference (a tag such as sha256-<hex>.sig, or a digest) in
	// ref's repository. A manifest larger than limit is an error.
	Manifest(ctx context.Context, ref imageref.Ref, reference string, limit int64) (*registry.Manifest, error)
	// BlobInto GETs a blob of ref's repository, at most limit bytes, checked against its
	// digest, into dst's memory when it fits (dst may be nil).
	BlobInto(ctx context.Context, ref imageref.Ref, digest v1.Hash, limit int64, dst []byte) ([]byte, error)
	// Referrers lists the OCI referrers of digest (the referrers API, or its tag fallback).
	Referrers(ctx context.Context, ref imageref.Ref, digest v1.Hash) (*v1.IndexManifest, error)
	// ReferrersFromTag reports whether ref's referrers are read from the fallback tag alone
	// (its registry, which has no mirrors, is known to lack the referrers API).
	ReferrersFromTag(ref imageref.Ref) bool
	// DigestTags lists which of the digest's sha256-<hex>[.suffix] tags exist, with one
	// request; nil when that cannot be known for certain (then every tag is read).
	DigestTags(ctx context.Context, ref imageref.Ref, digest v1.Hash) *registry.DigestTags
}

// Options configure a Service.
type Options struct {
	// Authorities, validated (config.Validate); optional (none: nothing verifies). Keys are
	// parsed and KMS public keys fetched once, in New.
	Authorities []config.Authority
	// Registry reads from registries (required; the provider's *registry.Client).
	Registry Registry
	// Refs parses keys like the runtime, shared with the other endpoints (required).
	Refs *imageref.Memo
	// Pool bounds registry loads across all endpoints (required).
	Pool *batch.Pool
	// Deadline of the endpoint (required; config endpoints.verify.deadline). It also bounds
	// one image's verification, which runs detached from the batch that started it.
	Deadline time.Duration
	// Cache of answers by normalised reference (optional: nil looks every key up).
	Cache *cache.Cache[*Value]
	// UnsignedTTL: a cached answer with signed=false is looked up again after this long, so a
	// newly signed image is admitted soon; signed answers keep the cache's TTL (required with
	// Cache; config.DefaultUnsignedTTL in the provider).
	UnsignedTTL time.Duration
	// Signatures configures /v1/verify/signatures, the pipeline that reads signatures only
	// (optional: zero fields take Deadline, and no cache).
	Signatures Endpoint
	// Limits on what one verification reads (optional: zero fields take the defaults).
	Limits Limits
	// Registerer receives the verify metrics (optional: nil, not registered).
	Registerer prometheus.Registerer
	// Indexes reads and keeps index platform lists by digest, shared with /v1/resolve
	// (optional; default: one of resolve.DefaultIndexCacheBytes for this Service alone).
	Indexes *resolve.Indexes
}

// Endpoint configures one more pipeline of the service.
type Endpoint struct {
	// Deadline of the endpoint (optional: zero takes Options.Deadline; config
	// endpoints.verifySignatures.deadline in the provider).
	Deadline time.Duration
	// Cache of its answers (optional: nil looks every key up). Answers of different plans
	// never share a cache entry: the cache key names the plan.
	Cache *cache.Cache[*Value]
}

// Service verifies images. Safe for concurrent use.
type Service struct {
	auths    []*authority
	reg      Registry
	indexes  *resolve.Indexes
	pipeline *lookup.Pipeline[*Value]
	// sigPipeline answers /v1/verify/signatures (plan readSignatures).
	sigPipeline *lookup.Pipeline[*Value]
	unsigned    time.Duration
	now         func() time.Time
	lim         Limits
	checks      *prometheus.CounterVec
	// blobsSaved counts signature payloads not read from the registry (see payloadGuess).
	blobsSaved prometheus.Counter
	// helpers run a lookup's concurrent branches (parallel.go).
	helpers helpers
	// packer packs the cached answers (see Value.split).
	packer *cache.Packer
	// parts and ttl, by plan.attestations: the per-digest parts of the cached answers and the
	// TTL of their cache (see shared.go).
	parts map[bool]*sharedParts
	ttl   map[bool]time.Duration
	// layerBufs holds the buffers envelope and bundle layers are read into: each layer is
	// verified and its statement decoded before the buffer goes back, and nothing verified
	// keeps the layer's bytes (the statement's payload is decoded out of them).
	layerBufs buffers
	// payloadBufs holds the buffers DSSE payloads are decoded into: a verified statement
	// keeps its payload's buffer until the Attested that lists it is released.
	payloadBufs buffers
}

// maxPooledLayer is the largest layer buffer kept for reuse: a signed scan report of a few
// hundred KB is common, a layer at the attestation cap is not kept.
const maxPooledLayer = 1 << 20

// New compiles the authorities (reading key files, trusted roots and KMS public keys) and
// builds the /v1/verify pipeline.
func New(ctx context.Context, o Options) (*Service, error) {
	if o.Registry == nil {
		return nil, errors.New("verify: Options.Registry is required")
	}
	if o.Cache != nil && o.UnsignedTTL <= 0 {
		return nil, errors.New("verify: Options.UnsignedTTL is required with a Cache")
	}
	auths, err := compileAuthorities(ctx, o.Authorities)
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	indexes, err := indexesOf(o)
	if err != nil {
		return nil, err
	}
	results := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "imagetrust_verify_results_total",
		Help: "Verify answers by endpoint (verify, verify-signatures) and outcome (signed, unsigned); per-key errors are imagetrust_key_errors_total.",
	}, []string{"endpoint", "outcome"})
	s := &Service{
		auths: auths, reg: o.Registry, indexes: indexes, unsigned: o.UnsignedTTL, now: time.Now,
		packer:  cache.NewPacker(0),
		helpers: newHelpers(),
		lim:     o.Limits.withDefaults(),
		checks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "imagetrust_verify_checks_total",
			Help: "Signatures, attestations and bundles examined, by kind and result (verified, rejected).",
		}, []string{"kind", "result"}),
		blobsSaved: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "imagetrust_verify_payload_reads_saved_total",
			Help: "Simple-signing payloads known from their layer digest, so not read from the registry.",
		}),
	}
	if o.Registerer != nil {
		for _, c := range []prometheus.Collector{results, s.checks, s.blobsSaved} {
			if err := o.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("verify: registering metrics: %w", err)
			}
		}
	}
	s.parts, s.ttl = map[bool]*sharedParts{}, map[bool]time.Duration{}
	s.parts[true], s.ttl[true] = partsFor(o.Cache)
	s.parts[false], s.ttl[false] = partsFor(o.Signatures.Cache)
	po := lookup.Options[*Value]{
		Name: "verify", Refs: o.Refs, Registries: o.Registry, Pool: o.Pool, Cache: o.Cache,
		Deadline: o.Deadline, LoadTimeout: o.Deadline,
		CacheKey: cacheKey, Load: s.load, Render: s.renderer(results, "verify"),
	}
	if o.Cache != nil {
		po.Refresh = func(v *Value) bool { return s.expired(readAll, v) }
	}
	if s.pipeline, err = lookup.New(po); err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	so := po
	so.Name, so.Cache, so.CacheKey, so.Load, so.Refresh = "verify-signatures", o.Signatures.Cache, signaturesCacheKey, s.loadSignatures, nil
	so.Render = s.renderer(results, "verify-signatures")
	if o.Signatures.Deadline > 0 {
		so.Deadline, so.LoadTimeout = o.Signatures.Deadline, o.Signatures.Deadline
	}
	if o.Signatures.Cache != nil {
		so.Refresh = func(v *Value) bool { return s.expired(readSignatures, v) }
	}
	if s.sigPipeline, err = lookup.New(so); err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	return s, nil
}

// Verify answers one /v1/verify batch: one item per key, in order. Per-key errors start with
// a class word (invalid reference, registry not allowed, not found, denied, unavailable,
// timed out); an image that is merely unsigned is a value with signed=false, not an error.
func (s *Service) Verify(ctx context.Context, keys []string) []wire.Item {
	return s.pipeline.Items(ctx, keys)
}

// VerifyLookup is the /v1/verify pipeline (server.Lookup shape).
func (s *Service) VerifyLookup(ctx context.Context, keys []string) ([]wire.Item, []wire.Class) {
	return s.pipeline.Lookup(ctx, keys)
}

// VerifySignatures answers one /v1/verify/signatures batch, like Verify but reading signatures
// only: every answer has reads "signatures" and empty attestation, SBOM and provenance fields.
func (s *Service) VerifySignatures(ctx context.Context, keys []string) []wire.Item {
	return s.sigPipeline.Items(ctx, keys)
}

// VerifySignaturesLookup is the /v1/verify/signatures pipeline (server.Lookup shape).
func (s *Service) VerifySignaturesLookup(ctx context.Context, keys []string) ([]wire.Item, []wire.Class) {
	return s.sigPipeline.Lookup(ctx, keys)
}

// renderer is the renderer of endpoint's pipeline: the answer's encoded bytes for ref (see
// serve), "stale" added when served stale, counted in imagetrust_verify_results_total by
// endpoint (labelled as imagetrust_requests_total is) and outcome.
func (s *Service) renderer(results *prometheus.CounterVec, endpoint string) func(imageref.Ref, any, *Value, bool) (any, error) {
	signed, unsigned := results.WithLabelValues(endpoint, "signed"), results.WithLabelValues(endpoint, "unsigned")
	return func(ref imageref.Ref, _ any, v *Value, stale bool) (any, error) {
		raw, err := s.serve(ref, v, stale)
		if err != nil {
			return nil, err
		}
		if v.IsSigned() {
			signed.Inc()
		} else {
			unsigned.Inc()
		}
		return wire.Encoded(raw), nil
	}
}

// load is the pipeline's loader: the answer in its cached form, one per digest (see shared.go),
// encoded once and served from those bytes afterwards.
func (s *Service) load(ctx context.Context, ref imageref.Ref) (*Value, error) {
	return s.loadShared(ctx, ref, readAll)
}

// loadSignatures is the loader of /v1/verify/signatures, cached like load.
func (s *Service) loadSignatures(ctx context.Context, ref imageref.Ref) (*Value, error) {
	return s.loadShared(ctx, ref, readSignatures)
}

func cacheKey(ref imageref.Ref) string { return ref.PrefixedNormalized("verify\x00") }

func signaturesCacheKey(ref imageref.Ref) string { return "verify-signatures\x00" + ref.Normalized() }

func (s *Service) applicable(ref imageref.Ref) []*authority {
	var out []*authority
	for _, a := range s.auths {
		if a.applies(ref) {
			out = append(out, a)
		}
	}
	return out
}
