// Package scan answers POST /v1/scan: for each image, the newest vulnerability scan a
// configured scanner authority signed for the image's digest — a cosign vuln or in-toto vulns
// attestation (tag scheme or Sigstore bundle referrer, verified by the verify package exactly
// as /v1/verify verifies attestations), a SARIF referrer signed by a scanner authority, or,
// when enabled, a Trivy Operator report — normalised into one value, with the findings a
// trusted VEX authority marks not_affected or fixed noted. An image without a usable scan is a
// value with scanned=false and a reason, never an error; registry outages are per-key errors.
package scan

import (
	"context"
	"errors"
	"fmt"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/imagetrust/imagetrust/provider/internal/batch"
	"github.com/imagetrust/imagetrust/provider/internal/cache"
	"github.com/imagetrust/imagetrust/provider/internal/imageref"
	"github.com/imagetrust/imagetrust/provider/internal/lookup"
	"github.com/imagetrust/imagetrust/provider/internal/verify"
	"github.com/imagetrust/imagetrust/provider/internal/wire"
)

// Verifier verifies what is attached to a digest: a verify.Service built with the scanner and
// VEX authorities.
type Verifier interface {
	// StatementsInto returns the verified attestations of digest h of ref's repository, the
	// predicates of the types targets names decoded in their statement's own decode.
	StatementsInto(ctx context.Context, ref imageref.Ref, h v1.Hash, targets verify.PredicateTargets) (*verify.Attested, error)
	// Lookup verifies the signatures of ref (here: a SARIF referrer manifest by digest).
	Lookup(ctx context.Context, ref imageref.Ref) (*verify.Value, error)
}

// Options configures a Service.
type Options struct {
	// Verifier verifies attestations and signatures (required).
	Verifier Verifier
	// Registry reads manifests, blobs and HEADs and is the allow-list (required; the
	// provider's *registry.Client).
	Registry verify.Registry
	// Pool bounds registry loads across all endpoints (required).
	Pool *batch.Pool
	// Refs parses keys like the runtime, shared with the other endpoints (required).
	Refs *imageref.Memo
	// Scanners and VEXAuthorities name the authorities (of the Verifier) whose scans and VEX
	// documents count.
	Scanners       []string
	VEXAuthorities []string
	// SARIF reads SARIF referrers (counted only when signed by a scanner authority).
	SARIF bool
	// Operator holds Trivy Operator reports (nil: the source is off).
	Operator *OperatorIndex
	// Cache of answers by normalised reference (optional: nil looks every key up).
	Cache *cache.Cache[*Value]
	// UnscannedTTL: a cached scanned=false answer is looked up again after this long (default
	// 30s), so a newly attached scan is seen soon.
	UnscannedTTL time.Duration
	// Deadline for a whole batch (default 2.5s); it also bounds one image's lookup.
	Deadline time.Duration
	// ClockSkew tolerated between a scan's time and its log time or the clock (default 2m).
	ClockSkew time.Duration
	Limits    Limits
	// MaxPlatforms: platform manifests of an index scanned at most (default 16).
	MaxPlatforms int
	// Registerer receives the scan metrics (nil: not registered).
	Registerer prometheus.Registerer
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Service answers /v1/scan on the lookup pipeline: Lookup loads, render encodes. Safe for
// concurrent use.
type Service struct {
	o        Options
	scanners map[string]bool
	vex      map[string]bool
	pipeline *lookup.Pipeline[*Value]
	// findings interns the cached answers' findings.
	findings interner
	results  resultCounters
	sources  *prometheus.CounterVec
}

// New checks the options, registers the metrics and builds the pipeline.
func New(o Options) (*Service, error) {
	if o.Verifier == nil || o.Registry == nil || o.Pool == nil || o.Refs == nil {
		return nil, errors.New("scan: Verifier, Registry, Pool and Refs are required")
	}
	if o.UnscannedTTL <= 0 {
		o.UnscannedTTL = 30 * time.Second
	}
	if o.Deadline <= 0 {
		o.Deadline = 2500 * time.Millisecond
	}
	if o.ClockSkew < 0 {
		o.ClockSkew = 0
	} else if o.ClockSkew == 0 {
		o.ClockSkew = 2 * time.Minute
	}
	if o.MaxPlatforms <= 0 {
		o.MaxPlatforms = 16
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	o.Limits = o.Limits.withDefaults()
	results := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "imagetrust_scan_results_total",
		Help: "Scan answers by outcome (scanned, or the not-scanned reason); per-key errors are imagetrust_key_errors_total{endpoint=\"scan\"}.",
	}, []string{"outcome"})
	s := &Service{o: o, scanners: set(o.Scanners), vex: set(o.VEXAuthorities),
		results: newResultCounters(results),
		sources: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "imagetrust_scan_candidates_total",
			Help: "Scans and VEX documents examined, by source and result (used, rejected).",
		}, []string{"source", "result"}),
	}
	if o.Registerer != nil {
		for _, c := range []prometheus.Collector{results, s.sources} {
			if err := o.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("scan: registering metrics: %w", err)
			}
		}
	}
	po := lookup.Options[*Value]{
		Name: "scan", Refs: o.Refs, Registries: o.Registry, Pool: o.Pool, Cache: o.Cache,
		Deadline: o.Deadline, LoadTimeout: o.Deadline,
		CacheKey: cacheKey, Load: s.load, Render: s.render,
		Query: func(q string) (any, error) { return ParseFilter(q) },
	}
	if o.Cache != nil {
		po.Refresh = s.expiredUnscanned
	}
	var err error
	if s.pipeline, err = lookup.New(po); err != nil {
		return nil, fmt.Errorf("scan: %w", err)
	}
	return s, nil
}

func set(names []string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

// Scan answers one /v1/scan batch: one item per key, in order (for in-process callers).
func (s *Service) Scan(ctx context.Context, keys []string) []wire.Item {
	return s.pipeline.Items(ctx, keys)
}

// ScanLookup is the /v1/scan pipeline (server.Lookup shape).
func (s *Service) ScanLookup(ctx context.Context, keys []string) ([]wire.Item, []wire.Class) {
	return s.pipeline.Lookup(ctx, keys)
}

func cacheKey(ref imageref.Ref) string { return ref.PrefixedNormalized("scan\x00") }

func (s *Service) expiredUnscanned(v *Value) bool {
	return v != nil && !v.Scanned && s.o.Now().Sub(v.loadedAt) >= s.o.UnscannedTTL
}

// load is the pipeline's loader: Lookup, encoded once into the form the cache keeps.
func (s *Service) load(ctx context.Context, ref imageref.Ref) (*Value, error) {
	v, err := s.Lookup(ctx, ref)
	if err != nil {
		return nil, err
	}
	enc, err := encodeValue(v, &s.findings)
	if err != nil {
		return nil, err
	}
	return &Value{Scanned: v.Scanned, Reason: v.Reason, loadedAt: s.o.Now(), enc: enc}, nil
}

// render is the pipeline's renderer: the cached encoded answer itself (a wire.Appender the
// response encoder writes in place, no copy per key), or a view of it: its findings filtered
// by the key's query (a *Filter), marked "stale" when served stale.
func (s *Service) render(_ imageref.Ref, q any, v *Value, stale bool) (any, error) {
	f, _ := q.(*Filter)
	out, err := answerOf(v, f, stale)
	if err != nil {
		return nil, err
	}
	s.results.inc(v)
	return out, nil
}

// answerOf is v's cached encoded answer, or a view of it filtered by f (nil: unfiltered) or
// marked stale. Every value the pipeline holds comes from load, which encodes it; one without
// its encoding is a bug, answered as an error, never as an allow.
func answerOf(v *Value, f *Filter, stale bool) (any, error) {
	e := v.enc
	if e == nil {
		return nil, errors.New("cached scan answer has no encoded form")
	}
	if stale && !e.isObject() {
		return nil, errors.New("cached answer is not a JSON object")
	}
	if f == nil && !stale {
		return e, nil
	}
	return newView(e, f, stale), nil
}

// resultCounters are imagetrust_scan_results_total's children for the outcomes the service
// gives, resolved once, so counting an answer hashes no labels.
type resultCounters struct {
	vec                                          *prometheus.CounterVec
	scanned, noScan, noTrustedScan, unverifiable prometheus.Counter
}

func newResultCounters(vec *prometheus.CounterVec) resultCounters {
	return resultCounters{vec: vec,
		scanned: vec.WithLabelValues("scanned"), noScan: vec.WithLabelValues(ReasonNoScan),
		noTrustedScan: vec.WithLabelValues(ReasonNoTrustedScan), unverifiable: vec.WithLabelValues(ReasonUnverifiable)}
}

// inc counts v's outcome: scanned, or its not-scanned reason.
func (r *resultCounters) inc(v *Value) {
	switch {
	case v.Scanned:
		r.scanned.Inc()
	case v.Reason == ReasonNoScan:
		r.noScan.Inc()
	case v.Reason == ReasonNoTrustedScan:
		r.noTrustedScan.Inc()
	case v.Reason == ReasonUnverifiable:
		r.unverifiable.Inc()
	default:
		r.vec.WithLabelValues(v.Reason).Inc()
	}
}
