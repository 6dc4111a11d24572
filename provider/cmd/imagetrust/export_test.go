package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// `imagetrust export` from the repository's seed constraints and a provider configuration
// with one key authority writes the four files; warnings go to stderr.
func TestExportCommand(t *testing.T) {
	dir := t.TempDir()
	key, err := os.ReadFile(filepath.Join("..", "..", "internal", "export", "testdata", "keys", "bank-release.pub"))
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "bank.pub")
	if err := os.WriteFile(keyFile, key, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "provider.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`server:
  tls: {certFile: /tls/tls.crt, keyFile: /tls/tls.key, clientCAFile: /tls/ca.crt}
registries:
  - host: registry.bank.internal
authorities:
  - name: bank-release
    images: ["registry.bank.internal/**"]
    key: {file: %q}
`, keyFile)), 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	var stdout, stderr bytes.Buffer
	err = run(context.Background(), []string{"export", "-constraints", filepath.Join("..", "..", "..", "constraints", "base"),
		"-config", cfg, "-allow", "quay.io/openshift-release-dev", "-out", out}, os.Getenv, &stdout, &stderr)
	if err != nil {
		t.Fatalf("export: %v\n%s", err, stderr.String())
	}
	for _, f := range []string{"image.config.openshift.io.yaml", "policy.json", "registries.d/imagetrust.yaml", "clusterimagepolicies.yaml"} {
		if !strings.Contains(stdout.String(), filepath.Join(out, f)) {
			t.Errorf("stdout does not list %s:\n%s", f, stdout.String())
		}
	}
	pol, err := os.ReadFile(filepath.Join(out, "policy.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(pol), base64.StdEncoding.EncodeToString(key)) {
		t.Errorf("policy.json lacks the bank-release key:\n%s", pol)
	}
	if !strings.Contains(stderr.String(), "scope quay.io/openshift-release-dev: no key authority covers it") {
		t.Errorf("stderr lacks the unsigned-scope warning:\n%s", stderr.String())
	}

	stdout.Reset()
	err = run(context.Background(), []string{"export", "-constraints", filepath.Join("..", "..", "..", "constraints", "base"), "-format", "openshift-image"}, os.Getenv, &stdout, &stderr)
	if err != nil || !strings.Contains(stdout.String(), "kind: Image") || !strings.Contains(stdout.String(), "- registry.bank.internal") {
		t.Errorf("export -format openshift-image = %v:\n%s", err, stdout.String())
	}

	for _, args := range [][]string{
		{"export"},
		{"export", "-constraints", "x", "-format", "all"},
		{"export", "-constraints", "x", "-format", "yaml"},
	} {
		if err := run(context.Background(), args, os.Getenv, &stdout, &stderr); !errors.Is(err, errUsage) {
			t.Errorf("run(%q) = %v, want a usage error", args, err)
		}
	}
}
