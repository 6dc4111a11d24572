package check

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/imagetrust/imagetrust/provider/internal/app"
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
	// Keychain adds registry credentials after the configuration's (optional; the CLI passes
	// authn.DefaultKeychain for docker credential helpers and credsStore).
	Keychain authn.Keychain
}

// InProcessProviders starts the provider in this process (app.New: the same registry client,
// caches, SSRF guard, authorities and handler as imagetrust-provider) on loopback listeners with
// mTLS, and answers external_data from it.
func InProcessProviders(ctx context.Context, o InProcessOptions) (*Providers, error) {
	logw := o.Log
	if logw == nil {
		logw = io.Discard
	}
	l, err := app.StartLoopback(ctx, app.LoopbackOptions{
		ConfigFile: o.ConfigFile, Dir: o.WorkDir, ClientName: "imagetrust-check",
		Logger: slog.New(slog.NewJSONHandler(logw, nil)), Keychain: o.Keychain,
	})
	if err != nil {
		return nil, fmt.Errorf("--provider-config: %w", err)
	}
	p, err := liveProviders(l.URL, l.ClientTLS, o.Timeout, l.Stop)
	if err != nil {
		_ = l.Stop()
		return nil, err
	}
	return p, nil
}
