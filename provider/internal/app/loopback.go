package app

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/kubernetes"

	"github.com/imagetrust/imagetrust/provider/internal/config"
	"github.com/imagetrust/imagetrust/provider/internal/pki"
)

// Loopback is the provider started in this process on loopback listeners, with a PKI made for
// the run: the wiring imagetrust-provider runs (same registry client, caches, SSRF guard,
// authorities and handler), for commands that need provider answers without a cluster
// (`imagetrust check`, `imagetrust report --complete`). Its callers present the run's client
// certificate, so the provider's mTLS is exercised exactly as with Gatekeeper.
type Loopback struct {
	// URL is https://127.0.0.1:<port>, the API listener.
	URL string
	// CABundle is the base64 PEM of the CA that signed the serving certificate (a Provider's
	// spec.caBundle).
	CABundle string
	// ClientCertFile and ClientKeyFile are the client certificate the provider accepts.
	ClientCertFile, ClientKeyFile string
	// ClientTLS presents that certificate and trusts only the run's server CA.
	ClientTLS *tls.Config
	stop      func() error
}

// LoopbackOptions configure StartLoopback.
type LoopbackOptions struct {
	// ConfigFile is the provider configuration (required): registries, auth, cache, deadlines
	// and trust authorities, as the deployed provider reads them. Its server.tls files and
	// listen addresses are replaced.
	ConfigFile string
	// Dir receives the run's certificates (required; the caller removes it).
	Dir string
	// ClientName is the client certificate's common name (required, e.g. "imagetrust-check").
	ClientName string
	// Logger receives the provider's lines (required).
	Logger *slog.Logger
	// Kubernetes reads pull secrets when the config sets auth.kubernetes (optional).
	Kubernetes kubernetes.Interface
	// Keychain adds registry credentials after the configured ones (optional; the CLIs pass
	// authn.DefaultKeychain for docker credential helpers).
	Keychain authn.Keychain
}

// StartLoopback starts the provider and returns once it is ready (its readiness check passes).
func StartLoopback(ctx context.Context, o LoopbackOptions) (*Loopback, error) {
	if o.ConfigFile == "" || o.Dir == "" || o.ClientName == "" || o.Logger == nil {
		return nil, errors.New("app: LoopbackOptions.ConfigFile, Dir, ClientName and Logger are required")
	}
	data, err := os.ReadFile(o.ConfigFile)
	if err != nil {
		return nil, fmt.Errorf("provider config: %w", err)
	}
	// Decoded strictly, validated once the TLS files below are in place.
	cfg, err := config.Decode(data)
	if err != nil {
		return nil, fmt.Errorf("provider config %s: %w", o.ConfigFile, err)
	}
	srvCA, err := pki.NewCA(o.ClientName + " provider CA")
	if err != nil {
		return nil, err
	}
	cliCA, err := pki.NewCA(o.ClientName + " client CA")
	if err != nil {
		return nil, err
	}
	srvKP, err := srvCA.ServerCert("imagetrust-provider")
	if err != nil {
		return nil, err
	}
	cliKP, err := cliCA.ClientCert(o.ClientName)
	if err != nil {
		return nil, err
	}
	srvFiles, err := pki.WriteDir(filepath.Join(o.Dir, "provider"), cliCA, srvKP)
	if err != nil {
		return nil, err
	}
	cliFiles, err := pki.WriteDir(filepath.Join(o.Dir, "client"), srvCA, cliKP)
	if err != nil {
		return nil, err
	}
	clientTLS, err := pki.ClientTLSConfig(srvCA, cliKP)
	if err != nil {
		return nil, err
	}
	cfg.Server.TLS = config.TLS{CertFile: srvFiles.Cert, KeyFile: srvFiles.Key, ClientCAFile: srvFiles.CA}
	cfg.Server.Address, cfg.Server.MetricsAddress = "127.0.0.1:0", "127.0.0.1:0"
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("provider config %s: %w", o.ConfigFile, err)
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
	prov, err := New(ctx, cfg, apiLn, opsLn, Options{Logger: o.Logger, Metrics: prometheus.NewRegistry(), Kubernetes: o.Kubernetes, Keychain: o.Keychain})
	if err != nil {
		_, _ = apiLn.Close(), opsLn.Close()
		return nil, fmt.Errorf("provider config %s: %w", o.ConfigFile, err)
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan error, 1)
	go func() { done <- prov.Runner.Run(runCtx) }()
	l := &Loopback{
		URL:            "https://" + apiLn.Addr().String(),
		CABundle:       srvCA.CABundle(),
		ClientCertFile: cliFiles.Cert,
		ClientKeyFile:  cliFiles.Key,
		ClientTLS:      clientTLS,
		stop: func() error {
			cancel()
			err := <-done
			prov.Registry.CloseIdleConnections()
			return err
		},
	}
	deadline := time.Now().Add(15 * time.Second)
	for prov.Runner.Ready() != nil {
		select {
		case err := <-done:
			cancel()
			return nil, fmt.Errorf("in-process provider stopped while starting: %w", err)
		case <-ctx.Done():
			_ = l.Stop()
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = l.Stop()
			return nil, fmt.Errorf("in-process provider not ready after 15s: %w", prov.Runner.Ready())
		}
	}
	return l, nil
}

// Stop stops the provider and waits for it.
func (l *Loopback) Stop() error { return l.stop() }
