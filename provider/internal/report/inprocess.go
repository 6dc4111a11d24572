package report

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/kubernetes"

	"github.com/imagetrust/imagetrust/provider/internal/app"
	"github.com/imagetrust/imagetrust/provider/internal/config"
	"github.com/imagetrust/imagetrust/provider/internal/pki"
)

// InProcess is the provider (provider/internal/app, the wiring imagetrust-provider runs)
// started in this process on loopback, with a PKI made for the run: its serving certificate
// and the client certificate re-evaluation presents are issued here, so the provider's mTLS is
// exercised exactly as with Gatekeeper.
type InProcess struct {
	// ExternalData points external_data calls and facts at the provider.
	ExternalData ExternalData
	stop         func() error
}

// InProcessOptions configure StartProvider.
type InProcessOptions struct {
	// ConfigFile is the provider configuration (required); its server.tls and listen addresses
	// are replaced.
	ConfigFile string
	// Dir receives the generated certificates (required).
	Dir string
	// Logger receives the provider's lines (required).
	Logger *slog.Logger
	// Kubernetes reads pull secrets when the config sets auth.kubernetes (optional).
	Kubernetes kubernetes.Interface
}

// StartProvider starts the provider and waits until it is ready.
func StartProvider(ctx context.Context, o InProcessOptions) (*InProcess, error) {
	if o.ConfigFile == "" || o.Dir == "" || o.Logger == nil {
		return nil, fmt.Errorf("report: InProcessOptions.ConfigFile, Dir and Logger are required")
	}
	cfg, err := config.Load(o.ConfigFile)
	if err != nil {
		return nil, fmt.Errorf("provider config: %w", err)
	}
	srvCA, err := pki.NewCA("imagetrust-report provider CA")
	if err != nil {
		return nil, err
	}
	cliCA, err := pki.NewCA("imagetrust-report client CA")
	if err != nil {
		return nil, err
	}
	srv, err := srvCA.ServerCert("imagetrust-provider")
	if err != nil {
		return nil, err
	}
	cli, err := cliCA.ClientCert("imagetrust-report")
	if err != nil {
		return nil, err
	}
	srvFiles, err := pki.WriteDir(filepath.Join(o.Dir, "provider"), srvCA, srv)
	if err != nil {
		return nil, err
	}
	cliFiles, err := pki.WriteDir(filepath.Join(o.Dir, "client"), cliCA, cli)
	if err != nil {
		return nil, err
	}
	cfg.Server.TLS = config.TLS{CertFile: srvFiles.Cert, KeyFile: srvFiles.Key, ClientCAFile: cliFiles.CA}

	var lc net.ListenConfig
	apiLn, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	opsLn, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		_ = apiLn.Close()
		return nil, err
	}
	prov, err := app.New(ctx, cfg, apiLn, opsLn, app.Options{Logger: o.Logger, Metrics: prometheus.NewRegistry(), Kubernetes: o.Kubernetes})
	if err != nil {
		_, _ = apiLn.Close(), opsLn.Close()
		return nil, fmt.Errorf("provider: %w", err)
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan error, 1)
	go func() { done <- prov.Runner.Run(runCtx) }()
	p := &InProcess{
		ExternalData: ExternalData{ProviderURL: "https://" + apiLn.Addr().String(), CABundle: srvCA.CABundle(), CertFile: cliFiles.Cert, KeyFile: cliFiles.Key},
		stop: func() error {
			cancel()
			err := <-done
			prov.Registry.CloseIdleConnections()
			return err
		},
	}
	deadline := time.Now().Add(10 * time.Second)
	for prov.Runner.Ready() != nil {
		select {
		case err := <-done:
			cancel()
			return nil, fmt.Errorf("provider stopped while starting: %w", err)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = p.Stop()
			return nil, fmt.Errorf("provider not ready after 10s: %w", prov.Runner.Ready())
		}
	}
	return p, nil
}

// Stop stops the provider.
func (p *InProcess) Stop() error { return p.stop() }
