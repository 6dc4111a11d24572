// Package app assembles the provider from a validated configuration: the shared parts, built
// once here (registry client, worker pool, reference memo, answer caches), the lookup services
// built on them (resolve/mutate and verify, each a lookup pipeline), the external-data handler,
// the mTLS certificate reloader and the runner that serves the API and ops listeners.
// imagetrust-provider and the demo run this same wiring; Provider.Lookup answers the endpoints
// in-process for CLIs.
package app

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/imagetrust/imagetrust/provider/internal/attest"
	"github.com/imagetrust/imagetrust/provider/internal/batch"
	"github.com/imagetrust/imagetrust/provider/internal/cache"
	"github.com/imagetrust/imagetrust/provider/internal/config"
	"github.com/imagetrust/imagetrust/provider/internal/imageref"
	"github.com/imagetrust/imagetrust/provider/internal/registry"
	"github.com/imagetrust/imagetrust/provider/internal/resolve"
	"github.com/imagetrust/imagetrust/provider/internal/scan"
	"github.com/imagetrust/imagetrust/provider/internal/server"
	"github.com/imagetrust/imagetrust/provider/internal/verify"
	"github.com/imagetrust/imagetrust/provider/internal/wire"
)

// Options are the provider's dependencies besides its configuration.
type Options struct {
	// Logger receives one line per batch and the runner's lines (required).
	Logger *slog.Logger
	// Metrics registers every collector and is what /metrics serves (required).
	Metrics *prometheus.Registry
	// Kubernetes reads pull secrets; required when cfg.Auth.Kubernetes is set.
	Kubernetes kubernetes.Interface
	// Dynamic watches Trivy Operator reports; required when cfg.Scan.TrivyOperator.Enabled.
	Dynamic dynamic.Interface
	// OnReload, if set, is called after each attempt to reload the TLS files (nil error: loaded).
	OnReload func(error)
	// RegistryTLS is the TLS configuration for registry connections (optional: extra root CAs).
	RegistryTLS *tls.Config
	// Keychain adds registry credentials after the configured ones (optional; registry.Options).
	Keychain authn.Keychain
}

// Provider is an assembled provider; Runner.Run serves it until its context ends.
type Provider struct {
	Runner   *server.Runner
	Reloader *server.CertReloader
	// Registry is the one registry client every lookup uses.
	Registry *registry.Client
	Resolve  *resolve.Service
	Verify   *verify.Service
	Scan     *scan.Service
	// Attestations answers /v1/attestations.
	Attestations *attest.Service
	lookups      map[string]server.Lookup
}

// Lookup returns the lookup behind the endpoint path ("/v1/resolve", "/v1/mutate",
// "/v1/verify", "/v1/verify/signatures", "/v1/scan", "/v1/attestations"), or nil for an unknown path: the same pipeline the HTTPS endpoint runs, called
// in-process, without HTTP or TLS. The function answers one item per key (keys de-duplicated
// as the server does) under the endpoint's configured deadline, or earlier when ctx ends
// earlier.
func (p *Provider) Lookup(path string) func(ctx context.Context, keys []string) []wire.Item {
	lk := p.lookups[path]
	if lk == nil {
		return nil
	}
	return func(ctx context.Context, keys []string) []wire.Item {
		uniq, _ := batch.Dedupe(keys)
		items, _ := lk(ctx, uniq)
		return items
	}
}

// New assembles the provider for cfg (defaults applied and validated) on the given API (HTTPS)
// and ops (plain HTTP) listeners. Everything that can fail at start (TLS files, credentials,
// authorities and their KMS keys) is loaded here, so a caller may build the provider first
// with nil listeners and bind them afterwards (Runner.APIListener, Runner.OpsListener), as
// imagetrust-provider does: a bad file is then reported before any port is taken.
func New(ctx context.Context, cfg *config.Config, apiLn, opsLn net.Listener, o Options) (*Provider, error) {
	if o.Logger == nil || o.Metrics == nil {
		return nil, errors.New("app: Options.Logger and Options.Metrics are required")
	}
	if cfg.Auth.Kubernetes != nil && o.Kubernetes == nil {
		return nil, errors.New("auth.kubernetes is set but no Kubernetes client was given")
	}

	// The shared parts, built once.
	reg, err := registry.New(ctx, registry.Options{
		Registries:             cfg.Registries,
		Auth:                   cfg.Auth,
		Kubernetes:             o.Kubernetes,
		PerRegistryConcurrency: cfg.Lookup.PerRegistryConcurrency,
		MaxReferrersBytes:      cfg.Lookup.MaxReferrersBytes,
		Timeout:                cfg.Lookup.RegistryTimeout.D(),
		TLSConfig:              o.RegistryTLS,
		Registerer:             o.Metrics,
		Keychain:               o.Keychain,
	})
	if err != nil {
		return nil, err
	}
	pool, err := batch.NewPool(cfg.Lookup.Workers, o.Metrics)
	if err != nil {
		return nil, err
	}
	// The parse memo covers the hot working set only: beyond it a key costs one parse (µs).
	refs := imageref.NewMemo(min(cfg.Cache.MaxEntries, config.ParseMemoEntries))
	rc, err := newCache[resolve.Answer](cfg, "resolve", o.Metrics)
	if err != nil {
		return nil, err
	}
	vc, err := newCache[*verify.Value](cfg, "verify", o.Metrics)
	if err != nil {
		return nil, err
	}
	vsc, err := newCache[*verify.Value](cfg, "verify-signatures", o.Metrics)
	if err != nil {
		return nil, err
	}

	// One decoded platform list per index digest, shared by /v1/resolve and /v1/verify.
	indexes, err := resolve.NewIndexes(resolve.IndexesOptions{Registry: reg, MaxBytes: max(cfg.Cache.MaxBytes/4, resolve.DefaultIndexCacheBytes), MaxIndexBytes: cfg.Lookup.MaxIndexBytes, Registerer: o.Metrics})
	if err != nil {
		return nil, err
	}
	rs, err := resolve.New(resolve.Options{
		Registry: reg, Refs: refs, Pool: pool, Cache: rc, Indexes: indexes,
		ResolveDeadline: cfg.Endpoints.Resolve.Deadline.D(),
		MutateDeadline:  cfg.Endpoints.Mutate.Deadline.D(),
		LoadTimeout:     cfg.LoadTimeout(),
		MaxPlatforms:    cfg.Lookup.MaxPlatforms,
	})
	if err != nil {
		return nil, err
	}
	vs, err := verify.New(ctx, verify.Options{
		Authorities: cfg.Authorities,
		Registry:    reg,
		Refs:        refs,
		Pool:        pool,
		Deadline:    cfg.Endpoints.Verify.Deadline.D(),
		Cache:       vc,
		Signatures:  verify.Endpoint{Deadline: cfg.Endpoints.VerifySignatures.Deadline.D(), Cache: vsc},
		UnsignedTTL: config.DefaultUnsignedTTL,
		Limits:      verify.Limits{Platforms: cfg.Lookup.MaxPlatforms},
		Registerer:  o.Metrics,
		Indexes:     indexes,
	})
	if err != nil {
		return nil, err
	}

	ss, err := newScan(ctx, cfg, reg, pool, refs, indexes, o)
	if err != nil {
		return nil, err
	}
	as, err := newAttestations(cfg, vs, reg, pool, refs, o)
	if err != nil {
		return nil, err
	}

	metrics, err := server.NewMetrics(o.Metrics)
	if err != nil {
		return nil, err
	}
	tlsFiles := server.TLSFiles{CertFile: cfg.Server.TLS.CertFile, KeyFile: cfg.Server.TLS.KeyFile, ClientCAFile: cfg.Server.TLS.ClientCAFile}
	reloader, err := server.NewCertReloader(tlsFiles, metrics, o.OnReload)
	if err != nil {
		return nil, fmt.Errorf("server.tls: %w", err)
	}
	api := server.NewServer(server.Deps{
		Logger:           o.Logger,
		Metrics:          metrics,
		Resolve:          server.Endpoint{Lookup: rs.ResolveLookup, Deadline: cfg.Endpoints.Resolve.Deadline.D()},
		Mutate:           server.Endpoint{Lookup: rs.MutateLookup, Deadline: cfg.Endpoints.Mutate.Deadline.D(), Idempotent: true},
		Verify:           server.Endpoint{Lookup: vs.VerifyLookup, Deadline: cfg.Endpoints.Verify.Deadline.D()},
		VerifySignatures: server.Endpoint{Lookup: vs.VerifySignaturesLookup, Deadline: cfg.Endpoints.VerifySignatures.Deadline.D()},
		Scan:             server.Endpoint{Lookup: ss.ScanLookup, Deadline: cfg.Scan.Deadline.D()},
		Attestations:     server.Endpoint{Lookup: as.AttestationsLookup, Deadline: cfg.Attestations.Deadline.D()},
		MaxRequestBytes:  cfg.Server.MaxRequestBytes,
		MaxKeys:          cfg.Server.MaxKeys,
	})
	longest := max(cfg.Endpoints.Resolve.Deadline.D(), cfg.Endpoints.Mutate.Deadline.D(), cfg.Endpoints.Verify.Deadline.D(), cfg.Endpoints.VerifySignatures.Deadline.D(), cfg.Scan.Deadline.D(), cfg.Attestations.Deadline.D())
	runner := &server.Runner{
		API:             api,
		APIListener:     apiLn,
		OpsListener:     opsLn,
		TLS:             reloader.TLSConfig(),
		Logger:          o.Logger,
		ShutdownTimeout: cfg.Server.ShutdownTimeout.D(),
		WriteTimeout:    longest + 5*time.Second,
	}
	runner.Ops = server.NewOpsHandler(server.OpsDeps{Gatherer: o.Metrics, Ready: runner.Ready})
	return &Provider{
		Runner: runner, Reloader: reloader, Registry: reg, Resolve: rs, Verify: vs, Scan: ss, Attestations: as,
		lookups: map[string]server.Lookup{
			"/v1/resolve":           rs.ResolveLookup,
			"/v1/mutate":            rs.MutateLookup,
			"/v1/verify":            vs.VerifyLookup,
			"/v1/verify/signatures": vs.VerifySignaturesLookup,
			"/v1/scan":              ss.ScanLookup,
			"/v1/attestations":      as.AttestationsLookup,
		},
	}, nil
}

// newCache is an endpoint's answer cache, sized and timed by cfg.Cache.
func newCache[V any](cfg *config.Config, name string, reg prometheus.Registerer) (*cache.Cache[V], error) {
	return cache.New[V](cache.Options{
		Name:        name,
		MaxEntries:  cfg.Cache.MaxEntries,
		MaxBytes:    cfg.Cache.MaxBytes,
		TTL:         cfg.Cache.TTL.D(),
		NotFoundTTL: cfg.Cache.NotFoundTTL.D(),
		MaxStale:    cfg.Cache.MaxStale.D(),
		Negative:    registry.IsNegative,
		Registerer:  reg,
	})
}
