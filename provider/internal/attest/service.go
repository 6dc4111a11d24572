// Package attest answers POST /v1/attestations: for each image, every in-toto statement about
// the image's digest that verified against a configured authority, in full (authority,
// format, _type, predicate type, subjects and the decoded predicate), for templates that write
// their own rules over predicates. Statements are read and verified by the verify package
// exactly as /v1/verify verifies attestations (cosign .att tag, in-toto referrers, Sigstore
// bundles); this package orders them, caps them and serves them on the lookup pipeline with a
// cache of its own, so the /v1/verify answer and its cache stay small.
package attest

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
	"github.com/imagetrust/imagetrust/provider/internal/verify"
	"github.com/imagetrust/imagetrust/provider/internal/wire"
)

// Verifier reads and verifies the statements attached to a digest; *verify.Service is one.
type Verifier interface {
	Contents(ctx context.Context, ref imageref.Ref, h v1.Hash) (*verify.Contents, error)
}

// Registry resolves tags and is the allow-list; *registry.Client is one.
type Registry interface {
	lookup.Allower
	Head(ctx context.Context, ref imageref.Ref) (*v1.Descriptor, error)
}

// Limits bound one image's answer. Zero fields take the config package's defaults.
type Limits struct {
	// Statements reported per image (config.DefaultAttestationsMaxStatements).
	Statements int
	// StatementBytes: one reported statement, encoded (config.DefaultAttestationsMaxStatementBytes).
	StatementBytes int64
	// ImageBytes: the reported statements of one image together
	// (config.DefaultAttestationsMaxImageBytes).
	ImageBytes int64
}

func (l Limits) withDefaults() Limits {
	if l.Statements <= 0 {
		l.Statements = config.DefaultAttestationsMaxStatements
	}
	if l.StatementBytes <= 0 {
		l.StatementBytes = config.DefaultAttestationsMaxStatementBytes
	}
	if l.ImageBytes <= 0 {
		l.ImageBytes = config.DefaultAttestationsMaxImageBytes
	}
	return l
}

// Options configure a Service.
type Options struct {
	// Verifier verifies statements against the configured authorities (required; the
	// provider's /v1/verify service, so authorities are compiled once).
	Verifier Verifier
	// Registry resolves tags and is the allow-list (required; the provider's *registry.Client).
	Registry Registry
	// Refs parses keys like the runtime, shared with the other endpoints (required).
	Refs *imageref.Memo
	// Pool bounds registry loads across all endpoints (required).
	Pool *batch.Pool
	// Deadline of a whole batch (required; config attestations.deadline). It also bounds one
	// image's lookup.
	Deadline time.Duration
	// Cache of answers by normalised reference (optional: nil looks every key up).
	Cache *cache.Cache[*Value]
	// EmptyTTL: a cached answer without statements is looked up again after this long, so a
	// newly attached attestation is seen soon (required with Cache; config.DefaultUnsignedTTL
	// in the provider).
	EmptyTTL time.Duration
	// Limits bound one image's answer (optional: zero fields take the defaults).
	Limits Limits
	// Registerer receives the metrics (optional: nil, not registered).
	Registerer prometheus.Registerer
	// Now is the clock (optional: time.Now).
	Now func() time.Time
}

// Service answers /v1/attestations. Safe for concurrent use.
type Service struct {
	o        Options
	pipeline *lookup.Pipeline[*Value]
	results  *prometheus.CounterVec
}

// New checks the options, registers the metrics and builds the pipeline.
func New(o Options) (*Service, error) {
	if o.Verifier == nil || o.Registry == nil {
		return nil, errors.New("attest: Options.Verifier and Options.Registry are required")
	}
	if o.Cache != nil && o.EmptyTTL <= 0 {
		return nil, errors.New("attest: Options.EmptyTTL is required with a Cache")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	o.Limits = o.Limits.withDefaults()
	s := &Service{o: o, results: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "imagetrust_attestations_results_total",
		Help: "Attestations answers by outcome (attested, none, truncated); per-key errors are imagetrust_key_errors_total{endpoint=\"attestations\"}.",
	}, []string{"outcome"})}
	if o.Registerer != nil {
		if err := o.Registerer.Register(s.results); err != nil {
			return nil, fmt.Errorf("attest: registering metrics: %w", err)
		}
	}
	po := lookup.Options[*Value]{
		Name: "attestations", Refs: o.Refs, Registries: o.Registry, Pool: o.Pool, Cache: o.Cache,
		Deadline: o.Deadline, LoadTimeout: o.Deadline,
		CacheKey: cacheKey, Load: s.load, Render: s.render,
	}
	if o.Cache != nil {
		po.Refresh = s.expiredEmpty
	}
	var err error
	if s.pipeline, err = lookup.New(po); err != nil {
		return nil, fmt.Errorf("attest: %w", err)
	}
	return s, nil
}

// Attestations answers one batch: one item per key, in order (for in-process callers).
func (s *Service) Attestations(ctx context.Context, keys []string) []wire.Item {
	return s.pipeline.Items(ctx, keys)
}

// AttestationsLookup is the /v1/attestations pipeline (server.Lookup shape).
func (s *Service) AttestationsLookup(ctx context.Context, keys []string) ([]wire.Item, []wire.Class) {
	return s.pipeline.Lookup(ctx, keys)
}

func cacheKey(ref imageref.Ref) string { return ref.PrefixedNormalized("attestations\x00") }

// expiredEmpty reports a cached answer without statements older than EmptyTTL.
func (s *Service) expiredEmpty(v *Value) bool {
	return v != nil && v.total == 0 && s.o.Now().Sub(v.loadedAt) >= s.o.EmptyTTL
}

// load is the pipeline's loader: Lookup, encoded once into the form the cache keeps.
func (s *Service) load(ctx context.Context, ref imageref.Ref) (*Value, error) {
	v, err := s.Lookup(ctx, ref)
	if err != nil {
		return nil, err
	}
	return v.compact(s.o.Now())
}

// render is the pipeline's renderer: the encoded answer, "stale" added when served stale.
func (s *Service) render(_ imageref.Ref, _ any, v *Value, stale bool) (any, error) {
	raw, err := v.encoded(stale)
	if err != nil {
		return nil, err
	}
	switch {
	case v.truncated:
		s.results.WithLabelValues("truncated").Inc()
	case v.total > 0:
		s.results.WithLabelValues("attested").Inc()
	default:
		s.results.WithLabelValues("none").Inc()
	}
	return wire.Encoded(raw), nil
}
