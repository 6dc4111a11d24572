package report

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/google/go-containerregistry/pkg/authn"
	"k8s.io/client-go/kubernetes"

	"github.com/imagetrust/imagetrust/provider/internal/app"
)

// InProcess is the provider started in this process on loopback (app.StartLoopback: the wiring
// imagetrust-provider runs, with a PKI made for the run), as re-evaluation's external data.
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
	// Keychain adds registry credentials after the configuration's (optional; the CLI passes
	// authn.DefaultKeychain for docker credential helpers and credsStore).
	Keychain authn.Keychain
}

// StartProvider starts the provider in this process (app.StartLoopback) and waits until it is
// ready.
func StartProvider(ctx context.Context, o InProcessOptions) (*InProcess, error) {
	if o.ConfigFile == "" || o.Dir == "" || o.Logger == nil {
		return nil, fmt.Errorf("report: InProcessOptions.ConfigFile, Dir and Logger are required")
	}
	l, err := app.StartLoopback(ctx, app.LoopbackOptions{ConfigFile: o.ConfigFile, Dir: o.Dir, ClientName: "imagetrust-report", Logger: o.Logger, Kubernetes: o.Kubernetes, Keychain: o.Keychain})
	if err != nil {
		return nil, err
	}
	return &InProcess{
		ExternalData: ExternalData{ProviderURL: l.URL, CABundle: l.CABundle, CertFile: l.ClientCertFile, KeyFile: l.ClientKeyFile},
		stop:         l.Stop,
	}, nil
}

// Stop stops the provider.
func (p *InProcess) Stop() error { return p.stop() }
