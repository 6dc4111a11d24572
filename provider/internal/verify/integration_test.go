package verify

// The generated templates/verification.yaml, evaluated by Gatekeeper's own constraint framework
// and external-data client (caBundle, client certificate, TLS 1.3), against the real verify
// service behind the provider's HTTP handler, over images signed in the test. external_data is
// registered process-wide: nothing here runs in parallel.

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

func TestVerificationTemplateThroughGatekeeper(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := apis.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	tmpl, err := reader.ReadTemplate(scheme, os.DirFS(filepath.Join("..", "..", "..")), "templates/verification.yaml")
	if err != nil {
		t.Fatalf("ReadTemplate(templates/verification.yaml) = %v", err)
	}
	ctx := context.Background()
	e := newEnv(t)
	release, rogue := newKey(t, "ecdsa"), newKey(t, "ed25519")
	s := newService(t, e, keyAuthorityCfg("release", release))

	// The provider's HTTP handler over mTLS.
	ca, err := pki.NewCA("verify-it CA")
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
		// Generous: this test is about the answers and the policy; verifying the batch on a
		// loaded machine must not run into the deadline.
		Verify: server.Endpoint{Lookup: s.VerifyLookup, Deadline: 25 * time.Second},
	})
	srv := httptest.NewUnstartedServer(h)
	srv.TLS = &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{cert}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: ca.Pool()}
	srv.StartTLS()
	defer srv.Close()

	// Gatekeeper's side.
	pc := externaldata.NewCache()
	if err := pc.Upsert(&unversioned.Provider{ObjectMeta: metav1.ObjectMeta{Name: "imagetrust-verify"},
		Spec: unversioned.ProviderSpec{URL: srv.URL + "/v1/verify", Timeout: 30, CABundle: ca.CABundle()}}); err != nil {
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
		t.Fatalf("AddTemplate(verification.yaml) = %v", err)
	}
	con := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "constraints.gatekeeper.sh/v1beta1", "kind": "K8sImageSignature",
		"metadata": map[string]any{"name": "release-signed"},
		"spec": map[string]any{"parameters": map[string]any{
			"authorities":        []any{"release"},
			"allowedSourceRepos": []any{"https://github.com/bank/*"},
		}},
	}}
	if _, err := c.AddConstraint(ctx, con); err != nil {
		t.Fatalf("AddConstraint() = %v", err)
	}

	withProvenance := func(repo, source string, k *keyPair) string {
		d := e.push(t, repo, "v1")
		signImage(t, d, k)
		pred := map[string]any{
			"buildDefinition": map[string]any{"buildType": "https://actions.github.io/buildtypes/workflow/v1",
				"externalParameters": map[string]any{"workflow": map[string]any{"repository": source}}},
			"runDetails": map[string]any{"builder": map[string]any{"id": "https://github.com/actions/runner/github-hosted"}},
		}
		attachAtt(t, d, dsseSign(t, k, statementJSON(t, "v1", d.Context().String(), d.DigestStr(), slsaV1, pred)))
		return e.host + "/" + repo + ":v1"
	}
	good := withProvenance("it/good", "https://github.com/bank/app", release)
	evil := withProvenance("it/evil", "https://github.com/bank-evil/app", release)
	rogueSigned := withProvenance("it/rogue", "https://github.com/bank/app", rogue)
	unsigned := e.host + "/it/unsigned:v1"
	e.push(t, "it/unsigned", "v1")

	got := reviewPod(t, ctx, c, good, evil, rogueSigned, unsigned)
	for _, m := range got {
		if strings.Contains(m, "<"+good+">") {
			t.Errorf("a correctly signed image with allowed provenance was denied: %s", m)
		}
	}
	for _, want := range [][]string{
		{"<" + evil + ">", "bank-evil"},
		{"<" + rogueSigned + ">", "release", "no configured authority verified it"},
		{"<" + unsigned + ">", "release"},
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
