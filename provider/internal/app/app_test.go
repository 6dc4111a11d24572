package app

import (
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/imagetrust/imagetrust/provider/internal/config"
	"github.com/imagetrust/imagetrust/provider/internal/pki"
	"github.com/imagetrust/imagetrust/provider/internal/registry/registrytest"
	"github.com/imagetrust/imagetrust/provider/internal/wire"
)

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	return ln
}

// The assembly refuses to start without what it needs, naming it, before touching any file.
func TestNewRefusesMissingDependencies(t *testing.T) {
	lg := slog.New(slog.NewTextHandler(io.Discard, nil))
	withKube := &config.Config{Auth: config.Auth{Kubernetes: &config.KubernetesAuth{Namespace: "imagetrust"}}}
	tests := []struct {
		name string
		cfg  *config.Config
		o    Options
		want string
	}{
		{"no logger", &config.Config{}, Options{Metrics: prometheus.NewRegistry()}, "Options.Logger and Options.Metrics are required"},
		{"no metrics", &config.Config{}, Options{Logger: lg}, "Options.Logger and Options.Metrics are required"},
		{"pull secrets without a client", withKube, Options{Logger: lg, Metrics: prometheus.NewRegistry()}, "auth.kubernetes is set but no Kubernetes client was given"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(context.Background(), tt.cfg, listen(t), listen(t), tt.o)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New() = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

// Provider.Lookup answers the endpoints in-process, through the same pipelines as HTTPS: a CLI
// needs no listener, TLS client or HTTP round trip. The provider is built without listeners
// (as imagetrust-provider does before it binds).
func TestProviderLookupInProcess(t *testing.T) {
	reg := registrytest.New()
	defer reg.Close()
	d := registrytest.PushImage(t, reg.Host, "team/app:v1")
	cfg := &config.Config{
		Server:     config.Server{TLS: serverTLS(t)},
		Registries: []config.Registry{{Host: reg.Host, Insecure: true}},
		Lookup:     config.Lookup{RegistryTimeout: config.Duration(30 * time.Second)},
		Endpoints:  config.Endpoints{Resolve: config.Endpoint{Deadline: config.Duration(30 * time.Second)}, Mutate: config.Endpoint{Deadline: config.Duration(30 * time.Second)}, Verify: config.Endpoint{Deadline: config.Duration(30 * time.Second)}},
	}
	cfg.ApplyDefaults()
	metrics := prometheus.NewRegistry()
	prov, err := New(context.Background(), cfg, nil, nil, Options{Logger: slog.New(slog.DiscardHandler), Metrics: metrics})
	if err != nil {
		t.Fatal(err)
	}
	defer prov.Registry.CloseIdleConnections()
	if prov.Lookup("/v1/nope") != nil {
		t.Errorf("Lookup(/v1/nope) != nil, want nil for an unknown endpoint")
	}
	key := reg.Host + "/team/app:v1"
	items := prov.Lookup("/v1/mutate")(context.Background(), []string{key, key, "docker.io/library/nginx:1"})
	if len(items) != 2 || items[0].Value != key+"@"+d.DigestStr() || !strings.HasPrefix(items[1].Error, "registry not allowed: ") {
		t.Errorf("Lookup(/v1/mutate)(%q twice, nginx) = %+v, want the pinned reference once and a registry-not-allowed error", key, items)
	}
	items = prov.Lookup("/v1/verify")(context.Background(), []string{key})
	if len(items) != 1 || items[0].Error != "" || !strings.Contains(string(items[0].Value.(wire.Encoded)), `"signed":false`) {
		t.Errorf("Lookup(/v1/verify)(%q) = %+v, want an unsigned answer", key, items)
	}
	items = prov.Lookup("/v1/verify/signatures")(context.Background(), []string{key})
	if len(items) != 1 || items[0].Error != "" || !strings.Contains(string(items[0].Value.(wire.Encoded)), `"signed":false`) ||
		!strings.Contains(string(items[0].Value.(wire.Encoded)), `"reads":"signatures"`) {
		t.Errorf("Lookup(/v1/verify/signatures)(%q) = %+v, want an unsigned answer that read signatures only", key, items)
	}
	// Each verify endpoint counts its own answers.
	got := verifyResults(t, metrics)
	want := map[string]float64{"verify unsigned": 1, "verify-signatures unsigned": 1}
	if len(got) != len(want) || got["verify unsigned"] != 1 || got["verify-signatures unsigned"] != 1 {
		t.Errorf("imagetrust_verify_results_total by endpoint and outcome = %v, want %v", got, want)
	}
}

// serverTLS is a serving certificate, its key and a client CA in files, as server.tls names them.
func serverTLS(t *testing.T) config.TLS {
	t.Helper()
	ca, err := pki.NewCA("imagetrust test CA")
	if err != nil {
		t.Fatal(err)
	}
	kp, err := ca.ServerCert("imagetrust-provider")
	if err != nil {
		t.Fatal(err)
	}
	files, err := pki.WriteDir(t.TempDir(), ca, kp)
	if err != nil {
		t.Fatal(err)
	}
	return config.TLS{CertFile: files.Cert, KeyFile: files.Key, ClientCAFile: files.CA}
}

// verifyResults returns imagetrust_verify_results_total as "endpoint outcome" → count, for the
// series counted at least once.
func verifyResults(t *testing.T, g prometheus.Gatherer) map[string]float64 {
	t.Helper()
	families, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range families {
		if f.GetName() != "imagetrust_verify_results_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if v := m.GetCounter().GetValue(); v > 0 {
				out[labels["endpoint"]+" "+labels["outcome"]] = v
			}
		}
	}
	return out
}
