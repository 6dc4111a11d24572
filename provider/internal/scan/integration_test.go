package scan

// The generated templates/security.yaml, evaluated by Gatekeeper's own constraint framework
// and external-data client (caBundle, client certificate, TLS 1.3), against the real scan
// service behind the provider's HTTP handler, over images whose scans are signed in the test.
// external_data is registered process-wide: nothing here runs in parallel.

import (
	"context"
	"crypto/tls"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/open-policy-agent/frameworks/constraint/pkg/apis/externaldata/unversioned"
	constraintclient "github.com/open-policy-agent/frameworks/constraint/pkg/client"
	"github.com/open-policy-agent/frameworks/constraint/pkg/client/drivers/rego"
	"github.com/open-policy-agent/frameworks/constraint/pkg/externaldata"
	"github.com/open-policy-agent/gatekeeper/v3/apis"
	"github.com/open-policy-agent/gatekeeper/v3/pkg/gator/reader"
	"github.com/open-policy-agent/gatekeeper/v3/pkg/target"
	"github.com/open-policy-agent/gatekeeper/v3/pkg/util"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/certwatcher"

	"github.com/imagetrust/imagetrust/provider/internal/pki"
	"github.com/imagetrust/imagetrust/provider/internal/server"
	"github.com/imagetrust/imagetrust/provider/internal/wire"
)

func TestSecurityTemplateThroughGatekeeper(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := apis.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	tmpl, err := reader.ReadTemplate(scheme, os.DirFS(filepath.Join("..", "..", "..")), "templates/security.yaml")
	if err != nil {
		t.Fatalf("ReadTemplate(templates/security.yaml) = %v", err)
	}
	ctx := context.Background()
	e := newScanEnv(t, envOptions{})
	at := time.Now().Add(-time.Hour).UTC()

	ca, err := pki.NewCA("scan-it CA")
	if err != nil {
		t.Fatal(err)
	}
	srvKP, err := ca.ServerCert("imagetrust-provider")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := srvKP.TLSCertificate()
	if err != nil {
		t.Fatal(err)
	}
	notServed := func(_ context.Context, keys []string) ([]wire.Item, []wire.Class) {
		out := make([]wire.Item, len(keys))
		classes := make([]wire.Class, len(keys))
		for i, k := range keys {
			out[i] = wire.Item{Key: k, Error: wire.ClassUnavailable.Message("not served in this test")}
			classes[i] = wire.ClassUnavailable
		}
		return out, classes
	}
	h := server.NewServer(server.Deps{
		Resolve: server.Endpoint{Lookup: notServed, Deadline: 2e9},
		Mutate:  server.Endpoint{Lookup: notServed, Deadline: 1e9},
		Scan:    server.Endpoint{Lookup: e.svc.ScanLookup, Deadline: 25 * time.Second},
	})
	srv := httptest.NewUnstartedServer(h)
	srv.TLS = &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{cert}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: ca.Pool()}
	srv.StartTLS()
	defer srv.Close()

	pc := externaldata.NewCache()
	if err := pc.Upsert(&unversioned.Provider{ObjectMeta: metav1.ObjectMeta{Name: "imagetrust-scan"},
		Spec: unversioned.ProviderSpec{URL: srv.URL + "/v1/scan", Timeout: 30, CABundle: ca.CABundle()}}); err != nil {
		t.Fatalf("Upsert() = %v", err)
	}
	gk, err := ca.ClientCert("gatekeeper-audit")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := gk.WriteFiles(filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")); err != nil {
		t.Fatal(err)
	}
	cw, err := certwatcher.New(filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"))
	if err != nil {
		t.Fatal(err)
	}
	drv, err := rego.New(rego.Tracing(false), rego.AddExternalDataProviderCache(pc), rego.EnableExternalDataClientAuth(), rego.AddExternalDataClientCertWatcher(cw))
	if err != nil {
		t.Fatal(err)
	}
	c, err := constraintclient.NewClient(constraintclient.Targets(&target.K8sValidationTarget{}), constraintclient.Driver(drv), constraintclient.EnforcementPoints(util.AuditEnforcementPoint))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.AddTemplate(ctx, tmpl); err != nil {
		t.Fatalf("AddTemplate(security.yaml) = %v", err)
	}
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
	got := reviewPod(t, ctx, c, ref(clean), ref(vulnerable), ref(vexed), ref(ignored), ref(rogue), ref(unscanned))
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

func reviewPod(t *testing.T, ctx context.Context, c *constraintclient.Client, images ...string) []string {
	t.Helper()
	var containers []any
	for i, img := range images {
		containers = append(containers, map[string]any{"name": "c" + string(rune('0'+i)), "image": img})
	}
	pod := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "Pod",
		"metadata": map[string]any{"name": "p", "namespace": "default"},
		"spec":     map[string]any{"containers": containers},
	}}
	resps, err := c.Review(ctx, pod)
	if err != nil {
		t.Fatalf("Review() = %v", err)
	}
	var msgs []string
	for _, r := range resps.Results() {
		msgs = append(msgs, r.Msg)
	}
	slices.Sort(msgs)
	return msgs
}
