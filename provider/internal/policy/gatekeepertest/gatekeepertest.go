// Package gatekeepertest runs a template the way Gatekeeper's audit does, for tests: the
// frameworks constraint client with the Rego driver, external data fetched over mTLS (client
// certificate, CA bundle) from the provider's own HTTP handler.
package gatekeepertest

import (
	"context"
	"crypto/tls"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/open-policy-agent/frameworks/constraint/pkg/apis/externaldata/unversioned"
	constraintclient "github.com/open-policy-agent/frameworks/constraint/pkg/client"
	"github.com/open-policy-agent/frameworks/constraint/pkg/client/drivers/rego"
	"github.com/open-policy-agent/frameworks/constraint/pkg/core/templates"
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

// Deadline is the endpoint deadline a test gives the lookup it serves: generous, since these
// tests are about the answers and the policy, not a loaded machine's speed.
const Deadline = 25 * time.Second

// Options say what the client evaluates and which provider answers it.
type Options struct {
	// Root is the repository root; Template a template file relative to it (required).
	Root, Template string
	// Deps are the provider's endpoints; Resolve and Mutate, when unset, answer every key
	// `unavailable:` (required: the endpoint the template asks).
	Deps server.Deps
	// Providers maps each Provider object's name to its URL path, e.g. "imagetrust-scan":
	// "/v1/scan" (required).
	Providers map[string]string
}

// Client is Gatekeeper's constraint client (audit enforcement point) with o.Template added and
// o.Providers served over mTLS by the provider's handler; the server stops with the test.
func Client(t testing.TB, ctx context.Context, o Options) *constraintclient.Client {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := apis.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	tmpl, err := reader.ReadTemplate(scheme, os.DirFS(o.Root), o.Template)
	if err != nil {
		t.Fatalf("ReadTemplate(%s) = %v", o.Template, err)
	}
	ca, err := pki.NewCA("gatekeepertest CA")
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
	deps := o.Deps
	if deps.Resolve.Lookup == nil {
		deps.Resolve = server.Endpoint{Lookup: NotServed, Deadline: 2 * time.Second}
	}
	if deps.Mutate.Lookup == nil {
		deps.Mutate = server.Endpoint{Lookup: NotServed, Deadline: time.Second}
	}
	srv := httptest.NewUnstartedServer(server.NewServer(deps))
	srv.TLS = &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{cert}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: ca.Pool()}
	srv.StartTLS()
	t.Cleanup(srv.Close)

	urls := map[string]string{}
	for name, path := range o.Providers {
		urls[name] = srv.URL + path
	}
	gk, err := ca.ClientCert("gatekeeper-audit")
	if err != nil {
		t.Fatal(err)
	}
	return NewClient(t, ctx, ClientOptions{Template: tmpl, URLs: urls, CA: ca, Cert: gk})
}

// ClientOptions say how Gatekeeper's external-data client reaches a running provider.
type ClientOptions struct {
	// Template is added to the client (required).
	Template *templates.ConstraintTemplate
	// URLs maps each Provider object's name to its URL, e.g. "imagetrust-resolve":
	// "https://127.0.0.1:8443/v1/resolve" (required).
	URLs map[string]string
	// CA signed the provider's serving certificate: the Provider objects' caBundle (required).
	CA *pki.CA
	// Cert is Gatekeeper's client certificate, read through a certwatcher as Gatekeeper reads
	// it (required).
	Cert *pki.KeyPair
}

// NewClient is Gatekeeper's constraint client (audit enforcement point) with o.Template added,
// calling the Provider objects o.URLs names with o.Cert.
func NewClient(t testing.TB, ctx context.Context, o ClientOptions) *constraintclient.Client {
	t.Helper()
	pc := externaldata.NewCache()
	for name, url := range o.URLs {
		// Timeout generous: these tests are about the answers, not Gatekeeper's timeouts.
		if err := pc.Upsert(&unversioned.Provider{ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: unversioned.ProviderSpec{URL: url, Timeout: 30, CABundle: o.CA.CABundle()}}); err != nil {
			t.Fatalf("Upsert(%s) = %v", name, err)
		}
	}
	dir := t.TempDir()
	crt, key := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	if err := o.Cert.WriteFiles(crt, key); err != nil {
		t.Fatal(err)
	}
	cw, err := certwatcher.New(crt, key)
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
	if _, err := c.AddTemplate(ctx, o.Template); err != nil {
		t.Fatalf("AddTemplate(%s) = %v", o.Template.Name, err)
	}
	return c
}

// NotServed answers every key `unavailable:`: an endpoint a test does not serve.
func NotServed(_ context.Context, keys []string) ([]wire.Item, []wire.Class) {
	out := make([]wire.Item, len(keys))
	classes := make([]wire.Class, len(keys))
	for i, k := range keys {
		out[i] = wire.Item{Key: k, Error: wire.ClassUnavailable.Message("not served in this test")}
		classes[i] = wire.ClassUnavailable
	}
	return out, classes
}

// ReviewPod reviews a Pod in namespace default with one container per image (c0, c1, …) and
// returns the violation messages, sorted.
func ReviewPod(t testing.TB, ctx context.Context, c *constraintclient.Client, images ...string) []string {
	t.Helper()
	var containers []any
	for i, img := range images {
		containers = append(containers, map[string]any{"name": "c" + strconv.Itoa(i), "image": img})
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
