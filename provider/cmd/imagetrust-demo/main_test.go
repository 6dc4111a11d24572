package main

// `make demo` runs this command; the test runs its run() end to end (registry, provider over
// mTLS, Gatekeeper mutation and validation) from the repository root, and checks its flags.
// external_data is registered process-wide: nothing here runs in parallel.

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

// runDemo runs the command with args after the program name and returns its standard output.
func runDemo(t *testing.T, args ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	getenv := func(k string) string {
		if k == "TMPDIR" {
			return t.TempDir()
		}
		return ""
	}
	err := run(context.Background(), append([]string{"imagetrust-demo", "-repo", "../../.."}, args...), getenv, &stdout, &stderr)
	if err != nil {
		t.Fatalf("run(%q) = %v; stderr:\n%s", args, err, stderr.String())
	}
	if stderr.Len() != 0 {
		t.Errorf("run(%q) wrote to stderr:\n%s", args, stderr.String())
	}
	return stdout.String()
}

// The default output fits a 120-column terminal and still says everything: every reason of
// the -wide table (one line per container) appears, word for word, once its wrapped lines are
// joined again.
func TestRunPrintsTheTable(t *testing.T) {
	out := runDemo(t)
	for i, line := range strings.Split(out, "\n") {
		if n := utf8.RuneCountInString(line); n > 120 {
			t.Errorf("run() output line %d is %d columns, want at most 120:\n%s", i+1, n, line)
		}
	}
	for _, want := range []string{
		"imagetrust demo: what Gatekeeper would do with 12 sample workloads",
		"DECISION  CONTAINER     IMAGE (as written)",
		"-- Deployment payments/payments-api [bank cluster] admitted: the bank's compliant Deployment;",
		"   mutated   api           registry.bank.internal/payments/api:2.4.1\n" +
			"     - imagetrust-mutate: pinned to <registry.bank.internal/payments/api:2.4.1@sha256:",
		"   deny      init:migrate  registry.bank.internal/payments/migrate:1.8.0\n" +
			"     - bank-kms-signed (deny): is not signed by required authority <bank-kms>; found no verified signature\n",
		"summary: 12 objects (5 admitted, 7 denied), 19 containers: 4 allow, 5 mutated, 1 warn, 9 deny;",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("run() output lacks %q:\n%s", want, out)
		}
	}

	wide := runDemo(t, "-wide")
	for _, want := range []string{
		"imagetrust demo: what Gatekeeper would do with 12 sample workloads",
		"OBJECT", "CONTAINER", "IMAGE (as written)", "DECISION", "REASON",
		"Deployment payments/payments-api     api           registry.bank.internal/payments/api:2.4.1",
		"mutated   imagetrust-mutate: pinned to <registry.bank.internal/payments/api:2.4.1@sha256:",
		"deny      bank-kms-signed (deny): is not signed by required authority <bank-kms>; found no verified signature\n",
		"summary: 12 objects (5 admitted, 7 denied), 19 containers: 4 allow, 5 mutated, 1 warn, 9 deny;",
	} {
		if !strings.Contains(wide, want) {
			t.Errorf("run(-wide) output lacks %q:\n%s", want, wide)
		}
	}

	// The two runs differ only in loopback ports and in what their fresh keys signed.
	joined := runSpecific.ReplaceAllString(unwrap(out), "<run>")
	reasons := 0
	for _, line := range strings.Split(wide, "\n") {
		// Wide rows: the reason starts after the DECISION column (10 columns wide).
		i := strings.Index(line, "(deny): ")
		if i < 0 {
			i = strings.Index(line, "(warn): ")
		}
		if i < 0 {
			continue
		}
		start := strings.LastIndex(line[:i], "  ") + 2
		reason := runSpecific.ReplaceAllString(line[start:], "<run>")
		reasons++
		if !strings.Contains(joined, "- "+reason+"\n") {
			t.Errorf("run() output lacks the reason %q of the -wide table", reason)
		}
	}
	if reasons < 20 {
		t.Errorf("run(-wide) shows %d deny/warn reasons, want at least 20:\n%s", reasons, wide)
	}
}

// runSpecific matches what differs between two runs of the demo: loopback ports and shortened
// digests.
var runSpecific = regexp.MustCompile(`127\.0\.0\.1:[0-9]+|sha256:[0-9a-f]{12}…`)

// unwrap joins the reason lines PrintCompact wrapped (continuations indented under "- ").
func unwrap(out string) string {
	var b strings.Builder
	for _, line := range strings.Split(out, "\n") {
		if rest, ok := strings.CutPrefix(line, "       "); ok && !strings.HasPrefix(rest, " ") && b.Len() > 0 {
			s := strings.TrimSuffix(b.String(), "\n")
			b.Reset()
			b.WriteString(s + " " + rest + "\n")
			continue
		}
		b.WriteString(line + "\n")
	}
	return b.String()
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
