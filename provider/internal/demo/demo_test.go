package demo

// Runs the whole demo (registry, provider over mTLS, Gatekeeper mutation, constraint framework
// with the repository's templates and constraints) and checks the decisions `make demo` shows.
// external_data is registered process-wide: nothing here runs in parallel.

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

func findRow(t *testing.T, rep *Report, object, container string) Row {
	t.Helper()
	for _, o := range rep.Objects {
		for _, r := range o.Rows {
			if r.Object == object && r.Container == container {
				return r
			}
		}
	}
	t.Fatalf("Run() has no row for %s container %s", object, container)
	return Row{}
}

func findObject(t *testing.T, rep *Report, object string) Object {
	t.Helper()
	for _, o := range rep.Objects {
		if o.Name == object {
			return o
		}
	}
	t.Fatalf("Run() has no object %s", object)
	return Object{}
}

func TestRun(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var plog bytes.Buffer
	rep, err := Run(ctx, Options{RepoDir: "../../..", WorkDir: t.TempDir(), ProviderLog: &plog})
	if err != nil {
		t.Fatalf("Run() = %v", err)
	}

	pin := func(image string) string {
		d, ok := rep.Digests[image]
		if !ok {
			t.Fatalf("Run().Digests lacks %s", image)
		}
		return image + "@" + d
	}
	tests := []struct {
		object, container string
		want              Decision
		pinned            string   // "" when the image must stay as written
		reasons           []string // substrings that must each appear in some reason
	}{
		{"Deployment payments/payments-api", "api", Mutated, pin("registry.bank.internal/payments/api:2.4.1"), nil},
		{"Deployment payments/payments-api", "envoy", Mutated, pin("registry.bank.internal/platform/envoy:1.30.2"), nil},
		{"Deployment payments/legacy-web", "web", Deny, "", []string{
			"bank-trusted-image-source (deny): uses banned tag <latest>",
			"bank-trusted-image-source (deny): does not name its registry",
			"bank-kms-signed (deny): was not verified: provider <imagetrust-verify-signatures> error: registry not allowed: docker.io",
		}},
		{"Deployment payments/legacy-web", "cache", Deny, "", []string{
			"comes from <docker.io/library/redis>, which is not an allowed registry",
		}},
		{"Pod payments/db-migrate", "init:migrate", Deny, pin("registry.bank.internal/payments/migrate:1.8.0"), []string{
			"bank-kms-signed (deny): is not signed by required authority <bank-kms>; found no verified signature",
			"stale-verification-warn (warn): has no verified signature",
		}},
		{"Pod payments/db-migrate", "api", Allow, "", nil},
		{"CronJob reporting/nightly-report", "report", Warn, pin("registry.bank.internal/reporting/report:3.0.1"), []string{
			"demo-sbom-rollout-warn (warn): has no verified SBOM",
		}},
		{"Deployment reporting/exporter", "exporter", Mutated, pin("registry.bank.internal/reporting/exporter:1.2.0"), nil},
		{"Deployment production/ledger", "ledger", Mutated, pin("registry.bank.internal/payments/ledger:5.2.0"), nil},
		{"Deployment production/ledger-canary", "ledger", Deny, "", []string{
			"production-image-digest (deny): is not pinned by digest",
			"bank-kms-signed (deny): was not verified: provider <imagetrust-verify-signatures> error: not found:",
		}},
		{"Pod payments/tools", "debug", Deny, pin("registry.bank.internal/platform/debug:0.9.0"), []string{
			"is not signed by required authority <bank-kms>; found no verified signature (rejected: <layer sha256:",
			"no configured authority verified it",
		}},
		{"Pod payments/tools", "typo", Deny, "", []string{
			"bank-trusted-image-source (deny): is not a valid image reference: repository name (Platform/Debug) must be lowercase",
		}},
		{"Pod edge-munich/gateway", "lte", Allow, "", nil},
		{"Pod edge-munich/gateway", "pause", Allow, "", nil},
		{"Pod edge-munich/gateway", "telemetry", Deny, "", []string{
			"edge-trusted-image-source (deny): has tag <2.4>, which does not match the required pattern",
			"edge-image-digest (deny): is not pinned by digest",
		}},
		{"Deployment edge-munich/telemetry", "telemetry", Allow, "", nil},
		{"Deployment edge-munich/telemetry", "shipper", Deny, "", []string{"edge-image-digest (deny): has both tag <v1.4.0> and a digest"}},
		// Scans: every image above has a clean signed scan, so the bank's scan rule adds nothing
		// to those rows; fx-rates' scan names a fixable HIGH CVE; pdf-render's MEDIUM CVE is
		// covered by an ignore entry in force.
		{"Deployment payments/fx-rates", "rates", Deny, pin("registry.bank.internal/payments/fx-rates:3.1.0"), []string{
			"bank-no-high-critical (deny): has <CVE-2023-5363> (<HIGH>) in package <libcrypto3> <3.1.3-r0>, fixed in <3.1.4-r0>; fixable findings are allowed up to <MEDIUM>",
		}},
		{"Deployment reporting/pdf-render", "render", Mutated, pin("registry.bank.internal/reporting/pdf-render:2.0.0"), nil},
	}
	rows := 0
	for _, o := range rep.Objects {
		rows += len(o.Rows)
	}
	if rows != len(tests) {
		t.Errorf("Run() produced %d rows, want %d", rows, len(tests))
	}
	for _, tc := range tests {
		r := findRow(t, rep, tc.object, tc.container)
		all := strings.Join(r.Reasons, "\n  ")
		if r.Decision != tc.want {
			t.Errorf("%s %s: decision = %s, want %s; reasons:\n  %s", tc.object, tc.container, r.Decision, tc.want, all)
		}
		if r.Pinned != tc.pinned {
			t.Errorf("%s %s: pinned = %q, want %q", tc.object, tc.container, r.Pinned, tc.pinned)
		}
		for _, want := range tc.reasons {
			if !strings.Contains(all, want) {
				t.Errorf("%s %s: reasons lack %q; got:\n  %s", tc.object, tc.container, want, all)
			}
		}
		// Allowed and mutated images have no violation at all: the signed ones passed bank-kms.
		if (tc.want == Allow || tc.want == Mutated) && len(r.Reasons) != len(nonEmpty(tc.pinned)) {
			t.Errorf("%s %s: reasons = %q, want only the pin", tc.object, tc.container, r.Reasons)
		}
	}

	admitted := map[string]bool{
		"Deployment payments/payments-api":    true,
		"Deployment payments/legacy-web":      false,
		"Pod payments/db-migrate":             false,
		"CronJob reporting/nightly-report":    true,
		"Deployment reporting/exporter":       true,
		"Deployment production/ledger":        true,
		"Deployment production/ledger-canary": false,
		"Pod payments/tools":                  false,
		"Pod edge-munich/gateway":             false,
		"Deployment edge-munich/telemetry":    false,
		"Deployment payments/fx-rates":        false,
		"Deployment reporting/pdf-render":     true,
	}
	for name, want := range admitted {
		if got := findObject(t, rep, name).Admitted; got != want {
			t.Errorf("%s: admitted = %v, want %v", name, got, want)
		}
	}

	// The provider really served the lookups: its own metrics and its log (one line per batch).
	if rep.Requests["mutate"] == 0 || rep.Requests["verify"] == 0 || rep.Requests["scan"] == 0 {
		t.Errorf("Run().Requests = %v, want mutate, verify and scan requests", rep.Requests)
	}
	for _, ep := range []string{`"endpoint":"mutate"`, `"endpoint":"verify"`, `"endpoint":"scan"`} {
		if !strings.Contains(plog.String(), ep) {
			t.Errorf("provider log has no %s batch:\n%s", ep, plog.String())
		}
	}

	var out bytes.Buffer
	if err := PrintHeader(&out, rep); err != nil {
		t.Fatal(err)
	}
	if err := PrintTable(&out, rep); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"OBJECT", "DECISION", "REASON",
		"in-memory registry at " + rep.RegistryHost + " plays registry.bank.internal",
		"summary: 12 objects (5 admitted, 7 denied), 19 containers: 4 allow, 5 mutated, 1 warn, 9 deny",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("printed report lacks %q:\n%s", want, out.String())
		}
	}
}

func nonEmpty(s string) []string {
	if s == "" {
		return nil
	}
	return []string{s}
}
