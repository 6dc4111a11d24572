// Package app assembles the provider from a validated configuration: the lookup services
// (resolve/mutate and verify sharing one registry client, worker pool and reference memo), the
// external-data handler, the mTLS certificate reloader and the runner that serves the API and
// ops listeners. imagetrust-provider and the demo run this same wiring.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/kubernetes"

	"github.com/imagetrust/imagetrust/provider/internal/cache"
	"github.com/imagetrust/imagetrust/provider/internal/config"
	"github.com/imagetrust/imagetrust/provider/internal/registry"
	"github.com/imagetrust/imagetrust/provider/internal/resolve"
	"github.com/imagetrust/imagetrust/provider/internal/scan"
	"github.com/imagetrust/imagetrust/provider/internal/server"
	"github.com/imagetrust/imagetrust/provider/internal/verify"
)

// Options are the provider's dependencies besides its configuration.
type Options struct {
	// Logger receives one line per batch and the runner's lines (required).
	Logger *slog.Logger
	// Metrics registers every collector and is what /metrics serves (required).
	Metrics *prometheus.Registry
	// Kubernetes reads pull secrets; required when cfg.Auth.Kubernetes is set.
	Kubernetes kubernetes.Interface
	// OnReload, if set, is called after each attempt to reload the TLS files (nil error: loaded).
	OnReload func(error)
}

// Provider is an assembled provider; Runner.Run serves it until its context ends.
type Provider struct {
	Runner   *server.Runner
	Reloader *server.CertReloader
	Resolve  *resolve.Service
	Verify   *verify.Service
	Scan     *scan.Service
}

// New assembles the provider for cfg (defaults applied and validated) on the given API (HTTPS)
// and ops (plain HTTP) listeners.
func New(ctx context.Context, cfg *config.Config, apiLn, opsLn net.Listener, o Options) (*Provider, error) {
	if o.Logger == nil || o.Metrics == nil {
		return nil, errors.New("app: Options.Logger and Options.Metrics are required")
	}
	var ropts []resolve.Option
	if cfg.Auth.Kubernetes != nil {
		if o.Kubernetes == nil {
			return nil, errors.New("auth.kubernetes is set but no Kubernetes client was given")
		}
		ropts = append(ropts, resolve.WithKubernetes(o.Kubernetes))
	}
	rs, err := resolve.New(ctx, *cfg, o.Metrics, ropts...)
	if err != nil {
		return nil, err
	}
	vc, err := cache.New[*verify.Value](cache.Options{
		Name:        "verify",
		MaxEntries:  cfg.Cache.MaxEntries,
		TTL:         cfg.Cache.TTL.D(),
		NotFoundTTL: cfg.Cache.NotFoundTTL.D(),
		MaxStale:    cfg.Cache.MaxStale.D(),
		Negative:    registry.IsNegative,
		Registerer:  o.Metrics,
	})
	if err != nil {
		return nil, err
	}
	vs, err := verify.New(ctx, verify.Options{
		Authorities: cfg.Authorities,
		Registry:    verify.NewRegistry(rs.Registry()),
		Pool:        rs.Pool(),
		Refs:        rs.Refs(),
		Cache:       vc,
		Deadline:    cfg.Endpoints.Verify.Deadline.D(),
		Registerer:  o.Metrics,
	})
	if err != nil {
		return nil, err
	}

	ss, err := newScan(ctx, cfg, rs, o.Metrics)
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
		Logger:          o.Logger,
		Metrics:         metrics,
		Resolve:         server.Endpoint{Lookup: rs.Resolve, Deadline: cfg.Endpoints.Resolve.Deadline.D()},
		Mutate:          server.Endpoint{Lookup: rs.Mutate, Deadline: cfg.Endpoints.Mutate.Deadline.D(), Idempotent: true},
		Verify:          server.Endpoint{Lookup: vs.Verify, Deadline: cfg.Endpoints.Verify.Deadline.D()},
		Scan:            server.Endpoint{Lookup: ss.Scan, Deadline: cfg.Scan.Deadline.D()},
		MaxRequestBytes: cfg.Server.MaxRequestBytes,
		MaxKeys:         cfg.Server.MaxKeys,
	})
	longest := max(cfg.Endpoints.Resolve.Deadline.D(), cfg.Endpoints.Mutate.Deadline.D(), cfg.Endpoints.Verify.Deadline.D(), cfg.Scan.Deadline.D())
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
	return &Provider{Runner: runner, Reloader: reloader, Resolve: rs, Verify: vs, Scan: ss}, nil
}
