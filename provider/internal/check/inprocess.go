package check

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/imagetrust/imagetrust/provider/internal/app"
	"github.com/imagetrust/imagetrust/provider/internal/config"
	"github.com/imagetrust/imagetrust/provider/internal/pki"
)

// InProcessOptions configure InProcessProviders.
type InProcessOptions struct {
	// ConfigFile is the provider configuration (required): registries (the SSRF guard),
	// auth, cache, deadlines and trust authorities, exactly as the deployed provider reads it.
	// Its server.tls files and listen addresses are replaced: the provider serves this check
	// only, on loopback, with certificates made for the run.
	ConfigFile string
	// WorkDir receives the run's certificates (required; removed by the caller).
	WorkDir string
	// Log receives the provider's JSON log lines (nil: discarded).
	Log io.Writer
	// Timeout is the Provider objects' timeout (default 10s).
	Timeout time.Duration
}

// InProcessProviders starts the provider in this process (app.New: the same registry client,
// caches, SSRF guard, authorities and handler as imagetrust-provider) on loopback listeners with
// mTLS, and answers external_data from it.
func InProcessProviders(ctx context.Context, o InProcessOptions) (*Providers, error) {
	data, err := os.ReadFile(o.ConfigFile)
	if err != nil {
		return nil, fmt.Errorf("--provider-config: %w", err)
	}
	cfg, err := config.Decode(data)
	if err != nil {
		return nil, fmt.Errorf("--provider-config %s: %w", o.ConfigFile, err)
	}
	srvCA, err := pki.NewCA("imagetrust check provider CA")
	if err != nil {
		return nil, err
	}
	cliCA, err := pki.NewCA("imagetrust check client CA")
	if err != nil {
		return nil, err
	}
	srvKP, err := srvCA.ServerCert("imagetrust-provider")
	if err != nil {
		return nil, err
	}
	cliKP, err := cliCA.ClientCert("imagetrust-check")
	if err != nil {
		return nil, err
	}
	srvFiles, err := pki.WriteDir(filepath.Join(o.WorkDir, "provider-tls"), cliCA, srvKP)
	if err != nil {
		return nil, err
	}
	cfg.Server.TLS = config.TLS{CertFile: srvFiles.Cert, KeyFile: srvFiles.Key, ClientCAFile: srvFiles.CA}
	cfg.Server.Address, cfg.Server.MetricsAddress = "127.0.0.1:0", "127.0.0.1:0"
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("--provider-config %s: %w", o.ConfigFile, err)
	}

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
	logw := o.Log
	if logw == nil {
		logw = io.Discard
	}
	prov, err := app.New(ctx, cfg, apiLn, opsLn, app.Options{Logger: slog.New(slog.NewJSONHandler(logw, nil)), Metrics: prometheus.NewRegistry()})
	if err != nil {
		_, _ = apiLn.Close(), opsLn.Close()
		return nil, fmt.Errorf("--provider-config %s: %w", o.ConfigFile, err)
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan error, 1)
	go func() { done <- prov.Runner.Run(runCtx) }()
	stop := func() error {
		cancel()
		err := <-done
		prov.Registry.CloseIdleConnections()
		return err
	}
	if err := waitReady(ctx, "http://"+opsLn.Addr().String()+"/readyz", done); err != nil {
		_ = stop()
		return nil, err
	}
	clientTLS, err := pki.ClientTLSConfig(srvCA, cliKP)
	if err != nil {
		_ = stop()
		return nil, err
	}
	p, err := liveProviders("https://"+apiLn.Addr().String(), clientTLS, o.Timeout, stop)
	if err != nil {
		_ = stop()
		return nil, err
	}
	return p, nil
}

// waitReady polls the provider's /readyz, as the kubelet's readiness probe does.
func waitReady(ctx context.Context, url string, done <-chan error) error {
	cl := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(15 * time.Second)
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		if resp, err := cl.Do(req); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case err := <-done:
			return fmt.Errorf("in-process provider stopped while starting: %w", err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return errors.New("in-process provider not ready after 15s (GET /readyz)")
		}
	}
}
