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
	"encoding/json"
	"errors"
	"fmt"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/imagetrust/imagetrust/provider/internal/batch"
	"github.com/imagetrust/imagetrust/provider/internal/cache"
	"github.com/imagetrust/imagetrust/provider/internal/imageref"
	"github.com/imagetrust/imagetrust/provider/internal/registry"
	"github.com/imagetrust/imagetrust/provider/internal/verify"
	"github.com/imagetrust/imagetrust/provider/internal/wire"
)

// Verifier verifies what is attached to a digest: a verify.Service built with the scanner and
// VEX authorities.
type Verifier interface {
	// Statements returns the verified attestations of digest h of ref's repository.
	Statements(ctx context.Context, ref imageref.Ref, h v1.Hash) (*verify.Attested, error)
	// Lookup verifies the signatures of ref (here: a SARIF referrer manifest by digest).
	Lookup(ctx context.Context, ref imageref.Ref) (*verify.Value, error)
}

// Options configures a Service. Verifier, Registry and Pool are required.
type Options struct {
	Verifier Verifier
	// Registry reads manifests, blobs and HEADs (the verify package's view of the shared
	// registry client).
	Registry verify.Registry
	Pool     *batch.Pool
	// Scanners and VEXAuthorities name the authorities (of the Verifier) whose scans and VEX
	// documents count.
	Scanners       []string
	VEXAuthorities []string
	// SARIF reads SARIF referrers (counted only when signed by a scanner authority).
	SARIF bool
	// Operator holds Trivy Operator reports (nil: the source is off).
	Operator *OperatorIndex
	// Cache of answers by normalised reference (nil: none).
	Cache *cache.Cache[*Value]
	// UnscannedTTL: a cached scanned=false answer is looked up again after this long (default
	// 30s), so a newly attached scan is seen soon.
	UnscannedTTL time.Duration
	// Deadline for a whole batch (default 2.5s).
	Deadline time.Duration
	// ClockSkew tolerated between a scan's time and its log time or the clock (default 2m).
	ClockSkew time.Duration
	Limits    Limits
	// MaxPlatforms: platform manifests of an index scanned at most (default 16).
	MaxPlatforms int
	// Registerer receives the scan metrics (nil: not registered).
	Registerer prometheus.Registerer
	// Refs remembers parsed references (nil: a memo of its own).
	Refs *imageref.Memo
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Service answers /v1/scan. Safe for concurrent use.
type Service struct {
	o        Options
	scanners map[string]bool
	vex      map[string]bool
	results  *prometheus.CounterVec
	sources  *prometheus.CounterVec
}

// New checks the options and registers the metrics.
func New(o Options) (*Service, error) {
	if o.Verifier == nil || o.Registry == nil || o.Pool == nil {
		return nil, errors.New("scan: Verifier, Registry and Pool are required")
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
	if o.Refs == nil {
		o.Refs = imageref.NewMemo(8192)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	o.Limits = o.Limits.withDefaults()
	s := &Service{o: o, scanners: set(o.Scanners), vex: set(o.VEXAuthorities),
		results: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "imagetrust_scan_results_total",
			Help: "Scan lookups by outcome (scanned, the not-scanned reason, error).",
		}, []string{"outcome"}),
		sources: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "imagetrust_scan_candidates_total",
			Help: "Scans and VEX documents examined, by source and result (used, rejected).",
		}, []string{"source", "result"}),
	}
	if o.Registerer != nil {
		for _, c := range []prometheus.Collector{s.results, s.sources} {
			if err := o.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("scan: registering metrics: %w", err)
			}
		}
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

// Scan answers one /v1/scan batch: one item per key, in order.
func (s *Service) Scan(ctx context.Context, keys []string) []wire.Item {
	items := make([]wire.Item, len(keys))
	var missKeys []string
	var missIdx []int
	now := s.o.Now()
	for i, k := range keys {
		items[i].Key = k
		if s.o.Cache != nil {
			if ref, err := s.o.Refs.Parse(k); err == nil {
				if v, err, ok := s.o.Cache.Fresh(cacheKey(ref)); ok && !s.expiredUnscanned(v, now) {
					s.fill(&items[i], v, err)
					continue
				}
			}
		}
		missKeys = append(missKeys, k)
		missIdx = append(missIdx, i)
	}
	if len(missKeys) == 0 {
		return items
	}
	ctx, cancel := context.WithTimeout(ctx, s.o.Deadline)
	defer cancel()
	res := batch.Run(ctx, missKeys, s.lookupKey)
	for j, r := range res {
		s.fill(&items[missIdx[j]], r.Value, r.Err)
	}
	return items
}

func cacheKey(ref imageref.Ref) string { return "scan\x00" + ref.Normalized() }

func (s *Service) expiredUnscanned(v *Value, now time.Time) bool {
	return v != nil && !v.Scanned && now.Sub(v.loadedAt) >= s.o.UnscannedTTL
}

func (s *Service) fill(it *wire.Item, v *Value, err error) {
	if err != nil {
		it.Error = err.Error()
		s.results.WithLabelValues("error").Inc()
		return
	}
	raw := v.raw
	if raw == nil {
		var eerr error
		if raw, eerr = v.Encode(); eerr != nil {
			it.Error = (&registry.UnavailableError{Ref: it.Key, Err: fmt.Errorf("encoding the answer: %w", eerr)}).Error()
			s.results.WithLabelValues("error").Inc()
			return
		}
	}
	it.Value = wire.Encoded(raw)
	if v.Scanned {
		s.results.WithLabelValues("scanned").Inc()
	} else {
		s.results.WithLabelValues(v.Reason).Inc()
	}
}

func (s *Service) lookupKey(ctx context.Context, key string) (*Value, error) {
	ref, err := s.o.Refs.Parse(key)
	if err != nil {
		return nil, err
	}
	if s.o.Cache == nil {
		return s.load(ctx, ref)
	}
	load := func(ctx context.Context) (*Value, error) {
		ctx, cancel := context.WithTimeout(ctx, s.o.Deadline)
		defer cancel()
		return s.load(ctx, ref)
	}
	r, err := s.o.Cache.Get(ctx, cacheKey(ref), load)
	if err != nil {
		return nil, err
	}
	if r.Hit && s.expiredUnscanned(r.Value, s.o.Now()) {
		v, err := s.load(ctx, ref)
		if err != nil {
			if registry.IsNegative(err) {
				return nil, err
			}
			// An outage must not turn "not scanned" into an error failOpen would admit.
			return r.Value, nil
		}
		s.o.Cache.Put(cacheKey(ref), v)
		return v, nil
	}
	return r.Value, nil
}

// load runs Lookup on a worker of the shared pool and encodes the answer once.
func (s *Service) load(ctx context.Context, ref imageref.Ref) (*Value, error) {
	var v *Value
	err := s.o.Pool.Do(ctx, func() error {
		var err error
		v, err = s.Lookup(ctx, ref)
		return err
	})
	if err != nil {
		var ie *imageref.InvalidError
		if errors.As(err, &ie) {
			return nil, err
		}
		return nil, registry.Classify(ref.Original, err)
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, registry.Classify(ref.Original, err)
	}
	return &Value{Scanned: v.Scanned, Reason: v.Reason, loadedAt: s.o.Now(), raw: raw}, nil
}
