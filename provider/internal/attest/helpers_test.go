package attest

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/imagetrust/imagetrust/provider/internal/batch"
	"github.com/imagetrust/imagetrust/provider/internal/cache"
	"github.com/imagetrust/imagetrust/provider/internal/config"
	"github.com/imagetrust/imagetrust/provider/internal/imageref"
	"github.com/imagetrust/imagetrust/provider/internal/registry"
	"github.com/imagetrust/imagetrust/provider/internal/registry/registrytest"
	"github.com/imagetrust/imagetrust/provider/internal/signing"
	"github.com/imagetrust/imagetrust/provider/internal/signing/signingtest"
	"github.com/imagetrust/imagetrust/provider/internal/verify"
	"github.com/imagetrust/imagetrust/provider/internal/wire"
)

// Predicate types of the tests.
const (
	slsaV1     = "https://slsa.dev/provenance/v1"
	reviewType = "https://bank.internal/attestations/change-review/v1"
)

// env is a real registry on loopback, the provider's registry client, the /v1/verify service
// with the authorities "release" and "ci", and the attestations service on them.
type env struct {
	reg     *registrytest.Registry
	host    string
	client  *registry.Client
	release *signingtest.Key // authority "release"
	ci      *signingtest.Key // authority "ci"
	rogue   *signingtest.Key // configured nowhere
	verify  *verify.Service
}

func newEnv(t testing.TB) *env {
	t.Helper()
	reg := registrytest.New()
	t.Cleanup(reg.Close)
	e := newEnvAt(t, reg.Host)
	e.reg = reg
	return e
}

// newEnvAt is newEnv for a registry already serving at host (plain HTTP on loopback).
func newEnvAt(t testing.TB, host string) *env {
	t.Helper()
	e := &env{host: host, release: signingtest.NewKey(t), ci: signingtest.NewKey(t), rogue: signingtest.NewKey(t)}
	c, err := registry.New(context.Background(), registry.Options{
		Registries: []config.Registry{{Host: e.host, Insecure: true}}, Timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.CloseIdleConnections)
	e.client = c
	pool, err := batch.NewPool(64, nil)
	if err != nil {
		t.Fatal(err)
	}
	e.verify, err = verify.New(context.Background(), verify.Options{
		Authorities: []config.Authority{e.release.Authority("release"), e.ci.Authority("ci")},
		Registry:    c, Refs: imageref.NewMemo(1024), Pool: pool, Deadline: 30 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// service builds the attestations service over e (cache optional).
func (e *env) service(t testing.TB, l Limits, c *cache.Cache[*Value], now func() time.Time) *Service {
	t.Helper()
	pool, err := batch.NewPool(64, nil)
	if err != nil {
		t.Fatal(err)
	}
	o := Options{Verifier: e.verify, Registry: e.client, Refs: imageref.NewMemo(1024), Pool: pool,
		Deadline: 30 * time.Second, Limits: l, Cache: c, Now: now}
	if c != nil {
		o.EmptyTTL = 30 * time.Second
	}
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// push writes an image whose digest depends only on repo (a config with one label), so
// recorded answers are the same on every run, and returns its digest reference.
func (e *env) push(t testing.TB, repo, tag string) name.Digest {
	t.Helper()
	img, err := mutate.Config(empty.Image, v1.Config{Labels: map[string]string{"org.opencontainers.image.title": repo}})
	if err != nil {
		t.Fatal(err)
	}
	tr, err := name.NewTag(e.host + "/" + repo + ":" + tag)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(tr, img); err != nil {
		t.Fatalf("remote.Write(%s) = %v", tr, err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return tr.Context().Digest(d.String())
}

// attest signs predicate about d with k as `cosign attest --tlog-upload=false` does (DSSE on
// the .att tag).
func attest(t testing.TB, d name.Digest, k *signingtest.Key, predicateType string, predicate any) {
	t.Helper()
	if err := signing.Attest(d, k.Signer, predicateType, mustJSON(t, predicate)); err != nil {
		t.Fatal(err)
	}
}

// attestBundle signs predicate about d with k as cosign v3 does with a key (Sigstore bundle
// referrer).
func attestBundle(t testing.TB, d name.Digest, k *signingtest.Key, predicateType string, predicate any) {
	t.Helper()
	if err := signing.AttestBundle(d, k.Signer, k.Public, predicateType, mustJSON(t, predicate)); err != nil {
		t.Fatal(err)
	}
}

// attestAbout signs a statement whose subject is other and attaches it to d's .att tag: a
// transplanted attestation.
func attestAbout(t testing.TB, d, other name.Digest, k *signingtest.Key, predicateType string, predicate any) {
	t.Helper()
	st, err := signing.Statement(other, predicateType, mustJSON(t, predicate))
	if err != nil {
		t.Fatal(err)
	}
	env, err := signing.Envelope(st, k.Signer)
	if err != nil {
		t.Fatal(err)
	}
	if err := signing.AttachEnvelope(d, env); err != nil {
		t.Fatal(err)
	}
}

func mustJSON(t testing.TB, v any) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// provenance is an SLSA v1 provenance predicate built from source uri.
func provenance(uri string) map[string]any {
	return map[string]any{
		"buildDefinition": map[string]any{
			"buildType":          "https://slsa-framework.github.io/github-actions-buildtypes/workflow/v1",
			"externalParameters": map[string]any{"source": map[string]any{"uri": uri, "digest": map[string]string{"sha1": "4d8f1c2b9a7e6f5d3c2b1a0f9e8d7c6b5a4f3e2d"}}},
			"resolvedDependencies": []any{map[string]any{
				"uri": uri, "digest": map[string]string{"gitCommit": "4d8f1c2b9a7e6f5d3c2b1a0f9e8d7c6b5a4f3e2d"},
			}},
		},
		"runDetails": map[string]any{
			"builder":  map[string]any{"id": "https://github.com/actions/runner/github-hosted"},
			"metadata": map[string]any{"invocationId": "https://github.com/bank/payments/actions/runs/1/attempts/1"},
		},
	}
}

// review is the custom change-review predicate of the tests.
func review(status string, reviewers ...string) map[string]any {
	return map[string]any{"ticket": "CHG-1042", "status": status, "reviewers": reviewers}
}

// answer runs one key through s and decodes its value; it fails on a per-key error.
func answer(t testing.TB, s *Service, key string) (*Value, []byte) {
	t.Helper()
	items := s.Attestations(context.Background(), []string{key})
	if items[0].Error != "" {
		t.Fatalf("Attestations(%q) error = %s", key, items[0].Error)
	}
	raw, ok := items[0].Value.(wire.Encoded)
	if !ok {
		t.Fatalf("Attestations(%q) value is %T, want wire.Encoded", key, items[0].Value)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var v Value
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("decoding %s: %v", raw, err)
	}
	return &v, raw
}
