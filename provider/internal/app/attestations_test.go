package app

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/imagetrust/imagetrust/provider/internal/attest"
	"github.com/imagetrust/imagetrust/provider/internal/config"
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
	d := registrytest.PushImage(t, reg.Host, "team/app:v1")
	ref := reg.Host + "/team/app:v1"
	key, err := signing.NewKey(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"https://example.com/a/v1", "https://example.com/b/v1"} {
		if err := signing.Attest(d, key.Signer, p, json.RawMessage(`{"ok":true}`)); err != nil {
			t.Fatal(err)
		}
	}
	cfg := &config.Config{
		Server:       config.Server{TLS: serverTLS(t)},
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
	items := lk(context.Background(), []string{ref})
	if len(items) != 1 || items[0].Error != "" {
		t.Fatalf("Lookup(/v1/attestations)(%s) = %+v", ref, items)
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
