package main

// `make demo` runs this command; the test runs its run() end to end (registry, provider over
// mTLS, Gatekeeper mutation and validation) from the repository root, and checks its flags.
// external_data is registered process-wide: nothing here runs in parallel.

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"strings"
	"testing"
)

func TestRunPrintsTheTable(t *testing.T) {
	var stdout, stderr bytes.Buffer
	getenv := func(k string) string {
		if k == "TMPDIR" {
			return t.TempDir()
		}
		return ""
	}
	err := run(context.Background(), []string{"imagetrust-demo", "-repo", "../../.."}, getenv, &stdout, &stderr)
	if err != nil {
		t.Fatalf("run() = %v; stderr:\n%s", err, stderr.String())
	}
	out := stdout.String()
	for _, want := range []string{
		"imagetrust demo: what Gatekeeper would do with 10 sample workloads",
		"OBJECT", "CONTAINER", "IMAGE (as written)", "DECISION", "REASON",
		"Deployment payments/payments-api     api           registry.bank.internal/payments/api:2.4.1",
		"mutated   imagetrust-mutate: pinned to <registry.bank.internal/payments/api:2.4.1@sha256:",
		"deny      bank-kms-signed (deny): is not signed by required authority <bank-kms>; found no verified signature\n",
		"summary: 10 objects (4 admitted, 6 denied), 17 containers: 4 allow, 4 mutated, 1 warn, 8 deny;",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("run() output lacks %q:\n%s", want, out)
		}
	}
	if stderr.Len() != 0 {
		t.Errorf("run() wrote to stderr:\n%s", stderr.String())
	}
}

func TestRunFlags(t *testing.T) {
	tests := []struct {
		args []string
		want string // substring of the error; "" for flag.ErrHelp
	}{
		{[]string{"imagetrust-demo", "-h"}, ""},
		{[]string{"imagetrust-demo", "extra"}, `unexpected arguments ["extra"]`},
		{[]string{"imagetrust-demo", "-timeout", "0s"}, "-timeout 0s must be positive"},
		{[]string{"imagetrust-demo", "-repo", "/nonexistent"}, `templates not found under "/nonexistent" (run at the repository root or pass -repo)`},
	}
	for _, tc := range tests {
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), tc.args, func(string) string { return "" }, &stdout, &stderr)
		switch {
		case tc.want == "" && !errors.Is(err, flag.ErrHelp):
			t.Errorf("run(%q) = %v, want flag.ErrHelp", tc.args, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("run(%q) = %v, want an error containing %q", tc.args, err, tc.want)
		}
	}
}
