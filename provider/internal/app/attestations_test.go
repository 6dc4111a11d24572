package app

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/imagetrust/imagetrust/provider/internal/attest"
	"github.com/imagetrust/imagetrust/provider/internal/config"
	"github.com/imagetrust/imagetrust/provider/internal/pki"
	"github.com/imagetrust/imagetrust/provider/internal/registry/registrytest"
	"github.com/imagetrust/imagetrust/provider/internal/signing"
	"github.com/imagetrust/imagetrust/provider/internal/wire"
)

// The assembled provider answers /v1/attestations with the configured authorities and the
// attestations section's caps: two statements signed by the authority, one listed
// (maxStatements 1), the answer truncated.
func TestProviderAttestations(t *testing.T) {
	reg := registrytest.New()
	defer reg.Close()
	img, err := random.Image(64, 1)
	if err != nil {
		t.Fatal(err)
	}
	tag, err := name.NewTag(reg.Host + "/team/app:v1")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(tag, img); err != nil {
		t.Fatal(err)
	}
	h, _ := img.Digest()
	d := tag.Context().Digest(h.String())
	key, err := signing.NewKey(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"https://example.com/a/v1", "https://example.com/b/v1"} {
		if err := signing.Attest(d, key.Signer, p, json.RawMessage(`{"ok":true}`)); err != nil {
			t.Fatal(err)
		}
	}
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
	cfg := &config.Config{
		Server:       config.Server{TLS: config.TLS{CertFile: files.Cert, KeyFile: files.Key, ClientCAFile: files.CA}},
		Registries:   []config.Registry{{Host: reg.Host, Insecure: true}},
		Lookup:       config.Lookup{RegistryTimeout: config.Duration(30 * time.Second)},
		Authorities:  []config.Authority{{Name: "release", Key: &config.Key{File: key.PublicFile}}},
		Attestations: config.Attestations{Deadline: config.Duration(30 * time.Second), MaxStatements: 1},
	}
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	prov, err := New(context.Background(), cfg, nil, nil, Options{Logger: slog.New(slog.DiscardHandler), Metrics: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	defer prov.Registry.CloseIdleConnections()
	lk := prov.Lookup("/v1/attestations")
	if lk == nil {
		t.Fatal("Lookup(/v1/attestations) = nil")
	}
	items := lk(context.Background(), []string{tag.String()})
	if len(items) != 1 || items[0].Error != "" {
		t.Fatalf("Lookup(/v1/attestations)(%s) = %+v", tag, items)
	}
	var v attest.Value
	if err := json.Unmarshal(items[0].Value.(wire.Encoded), &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Statements) != 1 || v.StatementsTotal != 2 || !v.Truncated || v.Statements[0].Authority != "release" ||
		v.Statements[0].PredicateType != "https://example.com/a/v1" || string(v.Statements[0].Predicate) != `{"ok":true}` {
		t.Errorf("answer = %+v, want the first of two statements of authority release, truncated", v)
	}
	if !strings.HasPrefix(lk(context.Background(), []string{"ghcr.io/x/y:1"})[0].Error, "registry not allowed: ") {
		t.Errorf("an unlisted registry is not refused")
	}
}
