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

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// Command lines that cannot work fail before any work, saying what is wrong.
func TestCommandLineErrors(t *testing.T) {
	dir := t.TempDir()
	epoch := env(map[string]string{"SOURCE_DATE_EPOCH": "1767225600"})
	tests := []struct {
		args      []string
		getenv    func(string) string
		want      string
		wantUsage bool
	}{
		{nil, epoch, "no command given", true},
		{[]string{"bake"}, epoch, `unknown command "bake"`, true},
		{[]string{"build", "-binary", "linux/amd64"}, epoch, `"linux/amd64": want os/arch=path`, true},
		{[]string{"build", "-binary", "linux/amd64=/x"}, epoch, "-out is required", true},
		{[]string{"build", "-out", dir, "-binary", "linux/amd64=/x", "-source", "https://x", "-version", "v1"}, env(nil), "SOURCE_DATE_EPOCH is not set", false},
		{[]string{"build", "-out", dir, "-binary", "linux/amd64=/x"}, env(map[string]string{"SOURCE_DATE_EPOCH": "yesterday"}), `SOURCE_DATE_EPOCH="yesterday"`, false},
		{[]string{"build", "-out", dir, "-source", "https://x", "-version", "v1"}, epoch, "binaries: at least one platform binary is required", false},
		{[]string{"push", "-dir", dir}, epoch, "-dir and -to are required", true},
		{[]string{"push", "-dir", dir, "-to", "127.0.0.1:1/x"}, epoch, "build it with `make image`", false},
		{[]string{"sign", "-dir", dir, "-repo", "127.0.0.1:1/x"}, epoch, "-dir, -repo and -key are required", true},
		{[]string{"sign", "-dir", dir, "-repo", "127.0.0.1:1/x", "-key", "k"}, epoch, "run make image first", false},
	}
	for _, tt := range tests {
		var out, errw bytes.Buffer
		err := run(context.Background(), tt.args, tt.getenv, &out, &errw)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("run(%q) = %v, want an error containing %q", tt.args, err, tt.want)
			continue
		}
		if errors.Is(err, errUsage) != tt.wantUsage {
			t.Errorf("run(%q) = %v: usage error %v, want %v", tt.args, err, errors.Is(err, errUsage), tt.wantUsage)
		}
	}
}

// sign refuses a build directory whose digest file does not name the layout's index.
func TestReadBuildChecksDigest(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, digestFile), []byte("sha256:"+strings.Repeat("0", 64)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := readBuild(dir); err == nil || !strings.Contains(err.Error(), "build it with `make image`") {
		t.Errorf("readBuild(no layout) = %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, digestFile), []byte("sha256:xyz\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := readBuild(dir); err == nil || !strings.Contains(err.Error(), digestFile) {
		t.Errorf("readBuild(bad digest) = %v, want an error naming %s", err, digestFile)
	}
}
