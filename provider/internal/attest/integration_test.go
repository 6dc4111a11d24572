package attest

// The generated templates/attestations.yaml with the seed constraint
// constraints/attestations/slsa-source.yaml, evaluated by Gatekeeper's own constraint framework
// and external-data client (caBundle, client certificate, TLS 1.3), against the attestations
// service behind the provider's HTTP handler, over images whose statements are signed in the
// test. external_data is registered process-wide: nothing here runs in parallel.

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
	"github.com/imagetrust/imagetrust/provider/internal/policy"
	"github.com/imagetrust/imagetrust/provider/internal/server"
	"github.com/imagetrust/imagetrust/provider/internal/wire"
)

var repoRoot = filepath.Join("..", "..", "..")

func TestAttestationsTemplateThroughGatekeeper(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	s := e.service(t, Limits{}, nil, nil)
	c := gatekeeperClient(t, ctx, s)

	good := e.push(t, "it/good", "v1")
	attest(t, good, e.release, slsaV1, provenance("git+https://github.com/bank/payments@refs/heads/main"))
	attest(t, good, e.release, reviewType, review("approved", "alice", "bob"))
	bundled := e.push(t, "it/bundled", "v1")
	attestBundle(t, bundled, e.release, slsaV1, provenance("https://github.com/bank/platform.git"))
	attestBundle(t, bundled, e.release, reviewType, review("approved", "carol"))
	wrong := e.push(t, "it/wrong", "v1")
	attest(t, wrong, e.release, slsaV1, provenance("git+https://github.com/bank/payments-fork@refs/heads/main"))
	attest(t, wrong, e.release, reviewType, review("approved", "alice"))
	pending := e.push(t, "it/pending", "v1")
	attest(t, pending, e.release, slsaV1, provenance("git+https://github.com/bank/payments@refs/heads/main"))
	attest(t, pending, e.release, reviewType, review("pending"))
	byCI := e.push(t, "it/by-ci", "v1") // verified, but by an authority the constraint does not name
	attest(t, byCI, e.ci, slsaV1, provenance("git+https://github.com/bank/payments"))
	attest(t, byCI, e.ci, reviewType, review("approved", "dave"))
	rogue := e.push(t, "it/rogue", "v1")
	attest(t, rogue, e.rogue, slsaV1, provenance("git+https://github.com/bank/payments"))
	transplanted := e.push(t, "it/transplanted", "v1")
	attestAbout(t, transplanted, good, e.release, slsaV1, provenance("git+https://github.com/bank/payments"))
	plain := e.push(t, "it/plain", "v1")

	ref := func(d interface{ String() string }) string { return d.String() }
	got := reviewPod(t, ctx, c, ref(good), ref(bundled), ref(wrong), ref(pending), ref(byCI), ref(rogue), ref(transplanted), ref(plain), e.host+"/it/good:v1")
	for _, ok := range []string{ref(good), ref(bundled), e.host + "/it/good:v1"} {
		for _, m := range got {
			if strings.Contains(m, "<"+ok+">") {
				t.Errorf("%s was denied: %s", ok, m)
			}
		}
	}
	noProv := "has no verified SLSA provenance <https://slsa.dev/provenance/v1> from authorities <release>"
	noReview := "has no verified <https://bank.internal/attestations/change-review/v1> statement from authorities <release>"
	for _, want := range [][]string{
		{"<" + ref(wrong) + "> was built from source <git+https://github.com/bank/payments-fork@refs/heads/main> (SLSA provenance of <release>), not one of the allowed repositories <https://github.com/bank/payments, https://github.com/bank/platform>"},
		{"<" + ref(pending) + "> has no verified <https://bank.internal/attestations/change-review/v1> statement with <status> in <approved>; found <pending> (changes are reviewed before release)"},
		{"<" + ref(byCI) + "> " + noProv},
		{"<" + ref(byCI) + "> " + noReview},
		{"<" + ref(rogue) + "> " + noProv, "no configured authority verified it"},
		{"<" + ref(transplanted) + "> " + noProv, "not this image"},
		{"<" + ref(plain) + "> " + noProv + "; allowedSourceRepos requires one"},
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
	if n := len(got); n != 10 {
		t.Errorf("Review() gave %d messages, want 10:\n  %s", n, strings.Join(got, "\n  "))
	}
}

// gatekeeperClient is Gatekeeper's constraint client with the template and the seed
// constraint, calling s over mTLS through the provider's HTTP handler.
func gatekeeperClient(t *testing.T, ctx context.Context, s *Service) *constraintclient.Client {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := apis.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	tmpl, err := reader.ReadTemplate(scheme, os.DirFS(repoRoot), "templates/attestations.yaml")
	if err != nil {
		t.Fatalf("ReadTemplate(templates/attestations.yaml) = %v", err)
	}
	ca, err := pki.NewCA("attest-it CA")
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
		// Generous: this test is about the answers and the policy, not a loaded machine's speed.
		Attestations: server.Endpoint{Lookup: s.AttestationsLookup, Deadline: 25 * time.Second},
	})
	srv := httptest.NewUnstartedServer(h)
	srv.TLS = &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{cert}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: ca.Pool()}
	srv.StartTLS()
	t.Cleanup(srv.Close)

	pc := externaldata.NewCache()
	if err := pc.Upsert(&unversioned.Provider{ObjectMeta: metav1.ObjectMeta{Name: "imagetrust-attestations"},
		Spec: unversioned.ProviderSpec{URL: srv.URL + "/v1/attestations", Timeout: 30, CABundle: ca.CABundle()}}); err != nil {
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
		t.Fatalf("AddTemplate(attestations.yaml) = %v", err)
	}
	raw, err := os.ReadFile(filepath.Join(repoRoot, "constraints", "attestations", "slsa-source.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	objs, err := policy.DecodeYAML(raw)
	if err != nil || len(objs) != 1 {
		t.Fatalf("DecodeYAML(slsa-source.yaml) = %d objects, %v", len(objs), err)
	}
	if _, err := c.AddConstraint(ctx, objs[0]); err != nil {
		t.Fatalf("AddConstraint(slsa-source.yaml) = %v", err)
	}
	return c
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
