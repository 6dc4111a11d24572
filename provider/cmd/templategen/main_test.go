package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func write(t *testing.T, p, s string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestRun(t *testing.T) {
	lib, out := t.TempDir(), t.TempDir()
	write(t, filepath.Join(lib, "lib", "a.rego"), "package lib.a\n\nx := 1\n")
	write(t, filepath.Join(lib, "thing", "src.rego"), "package k8sthing\n\nviolation contains {\"msg\": \"x\"} if false\n")
	write(t, filepath.Join(lib, "thing", "template.yaml"), "kind: K8sThing\ntitle: T\nversion: 0.1.0\ndescription: D.\n")
	ctx := context.Background()
	var stdout, stderr bytes.Buffer

	err := run(ctx, []string{"templategen", "-library", lib, "-out", out, "-check"}, os.Getenv, &stdout, &stderr)
	if !errors.Is(err, errStale) {
		t.Fatalf("run(-check) before generate = %v, want %v", err, errStale)
	}
	if err := run(ctx, []string{"templategen", "-library", lib, "-out", out}, os.Getenv, &stdout, &stderr); err != nil {
		t.Fatalf("run() = %v", err)
	}
	if !strings.Contains(stdout.String(), "thing.yaml") {
		t.Errorf("stdout = %q, want the written file", stdout.String())
	}
	if err := run(ctx, []string{"templategen", "-library", lib, "-out", out, "-check"}, os.Getenv, &stdout, &stderr); err != nil {
		t.Errorf("run(-check) after generate = %v, want nil", err)
	}
	if err := run(ctx, []string{"templategen", "extra"}, os.Getenv, &stdout, &stderr); err == nil {
		t.Error("run(extra argument) = nil, want error")
	}
	if err := run(ctx, []string{"templategen", "-library", filepath.Join(lib, "missing")}, os.Getenv, &stdout, &stderr); err == nil {
		t.Error("run(missing library) = nil, want error")
	}
}
