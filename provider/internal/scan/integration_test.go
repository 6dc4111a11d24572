package scan

// The generated templates/security.yaml, evaluated by Gatekeeper's own constraint framework
// and external-data client (caBundle, client certificate, TLS 1.3), against the real scan
// service behind the provider's HTTP handler, over images whose scans are signed in the test.
// external_data is registered process-wide: nothing here runs in parallel.

import (
	"context"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/imagetrust/imagetrust/provider/internal/policy/gatekeepertest"
	"github.com/imagetrust/imagetrust/provider/internal/server"
	"github.com/imagetrust/imagetrust/provider/internal/wire"
)

func TestSecurityTemplateThroughGatekeeper(t *testing.T) {
	ctx := context.Background()
	e := newScanEnv(t, envOptions{})
	at := time.Now().Add(-time.Hour).UTC()

	c := gatekeepertest.Client(t, ctx, gatekeepertest.Options{
		Root: filepath.Join("..", "..", ".."), Template: "templates/security.yaml",
		Deps:      server.Deps{Scan: server.Endpoint{Lookup: e.svc.ScanLookup, Deadline: gatekeepertest.Deadline}},
		Providers: map[string]string{"imagetrust-scan": "/v1/scan"},
	})
	con := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "constraints.gatekeeper.sh/v1beta1", "kind": "K8sImageVulnerabilities",
		"metadata": map[string]any{"name": "no-high-critical"},
		"spec": map[string]any{"parameters": map[string]any{
			"scannerAuthorities": []any{"ci"},
			"maxSeverity":        "LOW",
			"maxScanAge":         "168h",
			"vexAuthorities":     []any{"vendor"},
			"ignore": []any{map[string]any{
				"id": "CVE-1999-0001", "reason": "package-1 is test data", "expires": "2099-12-31",
			}},
		}},
	}}
	if _, err := c.AddConstraint(ctx, con); err != nil {
		t.Fatalf("AddConstraint() = %v", err)
	}

	clean := e.push(t, "it/clean", "v1")
	e.attest(t, clean, e.ci, PredicateCosignVuln, cosignVulnPredicate(t, []byte(cleanTrivy), at))
	vulnerable := e.push(t, "it/vulnerable", "v1")
	e.attest(t, vulnerable, e.ci, PredicateCosignVuln, cosignVulnPredicate(t, sample(t, "trivy-image-alpine-310.json"), at))
	vexed := e.push(t, "it/vexed", "v1")
	e.attest(t, vexed, e.ci, PredicateCosignVuln, cosignVulnPredicate(t, sample(t, "trivy-image-alpine-310.json"), at))
	for _, st := range []string{"CVE-2019-1549", "CVE-2019-1551"} {
		doc := strings.Replace(string(vexFor(vexed, "not_affected", "2026-01-01T00:00:00Z")), "CVE-2019-1549", st, 1)
		doc = strings.Replace(doc, `{"@id":"pkg:apk/alpine/libcrypto1.1"}`, `{"@id":"pkg:apk/alpine/libcrypto1.1"},{"@id":"pkg:apk/alpine/libssl1.1"}`, 1)
		e.attest(t, vexed, e.vendor, PredicateOpenVEXV020, []byte(doc))
	}
	ignored := e.push(t, "it/ignored", "v1")
	e.attest(t, ignored, e.ci, PredicateCosignVuln, cosignVulnPredicate(t, []byte(strings.Replace(string(sample(t, "grype-image.json")), `"Critical"`, `"Low"`, 1)), at))
	rogue := e.push(t, "it/rogue", "v1")
	e.attest(t, rogue, e.rogue, PredicateCosignVuln, cosignVulnPredicate(t, []byte(cleanTrivy), at))
	unscanned := e.push(t, "it/unscanned", "v1")

	ref := func(d interface{ String() string }) string { return d.String() }
	got := gatekeepertest.ReviewPod(t, ctx, c, ref(clean), ref(vulnerable), ref(vexed), ref(ignored), ref(rogue), ref(unscanned))
	for _, ok := range []string{ref(clean), ref(vexed), ref(ignored)} {
		for _, m := range got {
			if strings.Contains(m, "<"+ok+">") {
				t.Errorf("%s was denied: %s", ok, m)
			}
		}
	}
	for _, want := range [][]string{
		{"<" + ref(vulnerable) + ">", "<CVE-2019-1549> (<MEDIUM>) in package <libcrypto1.1> <1.1.1c-r0>, fixed in <1.1.1d-r0>; fixable findings are allowed up to <LOW>"},
		{"<" + ref(rogue) + ">", "no trusted vulnerability scan (<no-trusted-scan>)", "no configured authority verified it"},
		{"<" + ref(unscanned) + ">", "no trusted vulnerability scan (<no-scan>)"},
	} {
		if !slices.ContainsFunc(got, func(m string) bool {
			for _, w := range want {
				if !strings.Contains(m, w) {
					return false
				}
			}
			return true
		}) {
			t.Errorf("Review() has no message containing all of %q; got:\n  %s", want, strings.Join(got, "\n  "))
		}
	}
	t.Logf("messages:\n  %s", strings.Join(got, "\n  "))
}

// TestFilteredAnswersDecideAsWholeOnes: the findings a constraint's query asks for decide
// exactly as every finding does. The same reviews run twice against the real service: once as
// Gatekeeper sends them (each key with the constraint's query, answered with the findings it
// lists), once with the queries taken off on the way in (the whole answer under the same
// key). Every constraint below must give the same messages both ways, and the filtered
// answers must be smaller where the query leaves findings out.
func TestFilteredAnswersDecideAsWholeOnes(t *testing.T) {
	ctx := context.Background()
	e := newScanEnv(t, envOptions{limits: Limits{Findings: 3}})
	at := time.Now().Add(-time.Hour).UTC()

	var whole atomic.Bool
	var asked []string
	var answered int
	lookup := func(ctx context.Context, keys []string) ([]wire.Item, []wire.Class) {
		sent := keys
		if whole.Load() {
			sent = make([]string, len(keys))
			for i, k := range keys {
				sent[i], _, _ = strings.Cut(k, "#")
			}
		}
		items, classes := e.svc.ScanLookup(ctx, sent)
		for i := range items {
			items[i].Key = keys[i]
			if a, ok := items[i].Value.(wire.Appender); ok {
				answered += a.Len()
			}
		}
		asked = append(asked, keys...)
		return items, classes
	}
	c := gatekeepertest.Client(t, ctx, gatekeepertest.Options{
		Root: filepath.Join("..", "..", ".."), Template: "templates/security.yaml",
		Deps:      server.Deps{Scan: server.Endpoint{Lookup: lookup, Deadline: gatekeepertest.Deadline}},
		Providers: map[string]string{"imagetrust-scan": "/v1/scan"},
	})

	var images []string
	for i, s := range []string{"trivy-image-alpine-310.json", "grype-image.json", "trivy-image-centos-7-statuses.json", "trivy-npm-with-vex-suppressed.json"} {
		d := e.push(t, "diff/app"+strconv.Itoa(i), "v1")
		e.attest(t, d, e.ci, PredicateCosignVuln, cosignVulnPredicate(t, sample(t, s), at))
		images = append(images, d.String())
	}
	vexed := e.push(t, "diff/vexed", "v1")
	e.attest(t, vexed, e.ci, PredicateCosignVuln, cosignVulnPredicate(t, sample(t, "trivy-image-alpine-310.json"), at))
	e.attest(t, vexed, e.vendor, PredicateOpenVEXV020, vexFor(vexed, "not_affected", "2026-01-01T00:00:00Z"))
	clean := e.push(t, "diff/clean", "v1")
	e.attest(t, clean, e.ci, PredicateCosignVuln, cosignVulnPredicate(t, []byte(cleanTrivy), at))
	images = append(images, vexed.String(), clean.String())

	// query: the keys carry one; fewer: it leaves findings of these images out (otherwise
	// the answers are as long as the whole ones).
	for i, tc := range []struct {
		params       map[string]any
		query, fewer bool
	}{
		{map[string]any{"maxSeverity": "MEDIUM", "blockedIds": []any{"CVE-2021-44228", "CVE-2019-1551"}, "vexAuthorities": []any{"vendor"}}, true, true},
		{map[string]any{"maxSeverity": "HIGH"}, true, true},
		{map[string]any{"maxSeverity": "CRITICAL", "blockedIds": []any{"cve-2019-1549"}}, true, true},
		{map[string]any{"maxSeverity": "HIGH", "maxUnfixedSeverity": "LOW"}, true, true},
		{map[string]any{"maxSeverity": "LOW", "ignore": []any{map[string]any{"id": "CVE-2019-1549", "reason": "test data", "expires": "2099-12-31"}}}, true, true},
		{map[string]any{"maxSeverity": "UNKNOWN"}, true, false},
		{map[string]any{"maxSeverity": "NONE"}, false, false},
	} {
		params := tc.params
		params["scannerAuthorities"] = []any{"ci"}
		con := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "constraints.gatekeeper.sh/v1beta1", "kind": "K8sImageVulnerabilities",
			"metadata": map[string]any{"name": "c" + strconv.Itoa(i)},
			"spec":     map[string]any{"parameters": params},
		}}
		if _, err := c.AddConstraint(ctx, con); err != nil {
			t.Fatalf("AddConstraint(%v) = %v", params, err)
		}
		whole.Store(false)
		asked, answered = nil, 0
		filtered := gatekeepertest.ReviewPod(t, ctx, c, images...)
		queried, filteredBytes := asked, answered
		whole.Store(true)
		asked, answered = nil, 0
		all := gatekeepertest.ReviewPod(t, ctx, c, images...)
		if !slices.Equal(filtered, all) {
			t.Errorf("%v: the filtered answers decide\n  %s\nthe whole ones\n  %s", params, strings.Join(filtered, "\n  "), strings.Join(all, "\n  "))
		}
		if len(all) == 0 {
			t.Errorf("%v: no image denied; the comparison needs denials", params)
		}
		for _, k := range queried {
			if strings.Contains(k, "#above=") != tc.query {
				t.Errorf("%v: key %q (a query expected: %v)", params, k, tc.query)
			}
		}
		if tc.fewer && filteredBytes >= answered {
			t.Errorf("%v: filtered answers %d bytes, whole ones %d; the query listed every finding", params, filteredBytes, answered)
		}
		if !tc.fewer && filteredBytes != answered {
			t.Errorf("%v: filtered answers %d bytes, whole ones %d; the query should list every finding", params, filteredBytes, answered)
		}
		t.Logf("%v: %d messages, answers %d bytes filtered, %d whole", params, len(all), filteredBytes, answered)
		if _, err := c.RemoveConstraint(ctx, con); err != nil {
			t.Fatal(err)
		}
	}
}
