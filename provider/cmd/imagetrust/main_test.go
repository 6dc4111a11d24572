package main

// No t.Parallel: verify creates frameworks rego drivers (external_data is process-wide).

import (
	"context"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const echoSuite = "../../internal/suite/testdata/echo"

func runCLI(args ...string) (string, string, error) {
	var stdout, stderr strings.Builder
	err := run(context.Background(), args, func(string) string { return "" }, &stdout, &stderr)
	return stdout.String(), stderr.String(), err
}

func TestVerifyPasses(t *testing.T) {
	// Flags after the path, as gator (cobra) accepts them.
	out, errOut, err := runCLI("verify", echoSuite, "-v")
	if err != nil {
		t.Fatalf("imagetrust verify %s -v = %v\nstdout:\n%s\nstderr:\n%s", echoSuite, err, out, errOut)
	}
	for _, want := range []string{"=== RUN   echo", "--- PASS: ok", "\nPASS\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("imagetrust verify -v output lacks %q:\n%s", want, out)
		}
	}
}

func TestVerifyFailsWithExitCode1(t *testing.T) {
	dir := t.TempDir()
	src, err := filepath.Abs(echoSuite)
	if err != nil {
		t.Fatal(err)
	}
	// A suite in another directory reusing the echo template and samples, with a wrong
	// assertion and a copy of the fixtures.
	fixtures, err := os.ReadFile(filepath.Join(src, "fixtures.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "fixtures.yaml"), fixtures, 0o644); err != nil {
		t.Fatal(err)
	}
	suite := `apiVersion: test.gatekeeper.sh/v1alpha1
kind: Suite
tests:
  - name: echo
    template: ` + filepath.Join(src, "template.yaml") + `
    constraint: ` + filepath.Join(src, "constraint.yaml") + `
    cases:
      - name: expects-nothing-but-gets-a-violation
        object: ` + filepath.Join(src, "samples", "bad.yaml") + `
        assertions: [{violations: no}]
`
	// Suite paths are joined to the suite's directory; make them relative.
	suite = strings.ReplaceAll(suite, src, relTo(t, dir, src))
	if err := os.WriteFile(filepath.Join(dir, "suite.yaml"), []byte(suite), 0o644); err != nil {
		t.Fatal(err)
	}
	out, _, err := runCLI("verify", "-run", "expects", dir)
	if !errors.Is(err, errSilent) {
		t.Fatalf("imagetrust verify (failing suite) = %v, want errSilent\n%s", err, out)
	}
	if got := exitCode(err); got != 1 {
		t.Errorf("exit code = %d, want 1", got)
	}
	if !strings.Contains(out, "--- FAIL: expects-nothing-but-gets-a-violation") || !strings.HasSuffix(out, "FAIL\n") {
		t.Errorf("imagetrust verify output does not report the failure:\n%s", out)
	}
}

func relTo(t *testing.T, from, to string) string {
	t.Helper()
	rel, err := filepath.Rel(from, to)
	if err != nil {
		t.Fatal(err)
	}
	return rel
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no command", nil, "no command given"},
		{"unknown command", []string{"frobnicate"}, `unknown command "frobnicate"`},
		{"verify without a path", []string{"verify"}, "verify takes exactly one path, got 0"},
		{"verify with two paths", []string{"verify", "a", "b"}, "verify takes exactly one path, got 2"},
		{"unknown flag", []string{"verify", "-nope", "a"}, "flag provided but not defined: -nope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := runCLI(tt.args...)
			if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("run(%q) = %v, want a usage error containing %q", tt.args, err, tt.want)
			}
			if got := exitCode(err); got != 2 {
				t.Errorf("exit code = %d, want 2", got)
			}
		})
	}
}

func TestVerifyBadTargetAndFilter(t *testing.T) {
	if _, _, err := runCLI("verify", filepath.Join(t.TempDir(), "missing")); err == nil || errors.Is(err, errUsage) {
		t.Errorf("imagetrust verify <missing dir> = %v, want a listing error", err)
	}
	if _, _, err := runCLI("verify", "-run", "a//b//c", echoSuite); err == nil || !strings.Contains(err.Error(), "filter") {
		t.Errorf("imagetrust verify -run a//b//c = %v, want a filter error", err)
	}
}

func TestParseInterspersed(t *testing.T) {
	tests := []struct {
		args    []string
		wantPos []string
		wantRun string
		wantV   bool
	}{
		{[]string{"dir"}, []string{"dir"}, "", false},
		{[]string{"-v", "dir"}, []string{"dir"}, "", true},
		{[]string{"dir", "-v", "-run", "x"}, []string{"dir"}, "x", true},
		{[]string{"-run", "x", "--", "-v"}, []string{"-v"}, "x", false},
	}
	for _, tt := range tests {
		runs, v := "", false
		fs := newTestFlagSet(&runs, &v)
		pos, err := parseInterspersed(fs, tt.args)
		if err != nil {
			t.Errorf("parseInterspersed(%q) = %v", tt.args, err)
			continue
		}
		if strings.Join(pos, " ") != strings.Join(tt.wantPos, " ") || runs != tt.wantRun || v != tt.wantV {
			t.Errorf("parseInterspersed(%q) = %q run=%q v=%v, want %q run=%q v=%v", tt.args, pos, runs, v, tt.wantPos, tt.wantRun, tt.wantV)
		}
	}
}

func newTestFlagSet(run *string, v *bool) *flag.FlagSet {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(run, "run", "", "")
	fs.BoolVar(v, "v", false, "")
	return fs
}
