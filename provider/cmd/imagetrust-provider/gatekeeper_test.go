package main

// This test drives the provider through Gatekeeper's own external-data client: the frameworks
// rego driver with a provider cache, client authentication and a certwatcher client certificate,
// Provider objects with a caBundle, and a Rego v1 template calling external_data. It proves the
// wire format (request, response, per-key errors, system errors) against Gatekeeper's code.
// external_data is registered process-wide, so nothing here runs in parallel.

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	constraintclient "github.com/open-policy-agent/frameworks/constraint/pkg/client"
	"github.com/open-policy-agent/frameworks/constraint/pkg/core/templates"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/imagetrust/imagetrust/provider/internal/pki"
	"github.com/imagetrust/imagetrust/provider/internal/policy/gatekeepertest"
)

const templateYAML = `
apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata:
  name: k8simagetrustwire
spec:
  crd:
    spec:
      names:
        kind: K8sImagetrustWire
  targets:
    - target: admission.k8s.gatekeeper.sh
      code:
        - engine: Rego
          source:
            version: v1
            rego: |
              package k8simagetrustwire

              _images := [c.image | some c in input.review.object.spec.containers]

              violation contains {"msg": msg} if {
              	some provider in ["imagetrust-resolve", "imagetrust-mutate"]
              	resp := external_data({"provider": provider, "keys": _images})
              	resp.system_error != ""
              	msg := sprintf("%s system_error: %s", [provider, resp.system_error])
              }

              violation contains {"msg": msg} if {
              	some provider in ["imagetrust-resolve", "imagetrust-mutate"]
              	resp := external_data({"provider": provider, "keys": _images})
              	some e in resp.errors
              	msg := sprintf("%s error <%s>: %s", [provider, e[0], e[1]])
              }

              violation contains {"msg": msg} if {
              	resp := external_data({"provider": "imagetrust-resolve", "keys": _images})
              	some r in resp.responses
              	msg := sprintf("resolve <%s> digest <%s> image <%s>", [r[0], r[1].digest, r[1].image])
              }

              violation contains {"msg": msg} if {
              	resp := external_data({"provider": "imagetrust-mutate", "keys": _images})
              	some r in resp.responses
              	msg := sprintf("mutate <%s> -> <%s>", [r[0], r[1]])
              }
`

// newConstraintClient is Gatekeeper's client with the wire template and its constraint, calling
// imagetrust-resolve and imagetrust-mutate at apiAddr with clientKP.
func newConstraintClient(t *testing.T, ctx context.Context, apiAddr string, ca *pki.CA, clientKP *pki.KeyPair) *constraintclient.Client {
	t.Helper()
	var tmpl templates.ConstraintTemplate
	if err := yaml.UnmarshalStrict([]byte(templateYAML), &tmpl); err != nil {
		t.Fatal(err)
	}
	urls := map[string]string{}
	for _, p := range []string{"resolve", "mutate"} {
		urls["imagetrust-"+p] = "https://" + apiAddr + "/v1/" + p
	}
	c := gatekeepertest.NewClient(t, ctx, gatekeepertest.ClientOptions{Template: &tmpl, URLs: urls, CA: ca, Cert: clientKP})
	con := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "constraints.gatekeeper.sh/v1beta1",
		"kind":       "K8sImagetrustWire",
		"metadata":   map[string]any{"name": "wire"},
	}}
	if _, err := c.AddConstraint(ctx, con); err != nil {
		t.Fatalf("AddConstraint() = %v", err)
	}
	return c
}

func TestThroughGatekeeperExternalDataClient(t *testing.T) {
	f := newFixture(t)
	cfgPath := f.writeConfig(t, generousDeadlines)
	var stdout, stderr syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"imagetrust-provider", "-config", cfgPath}, noEnv, &stdout, &stderr) }()
	defer func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("run() = %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("run() did not stop")
		}
	}()
	apiAddr, _ := addresses(t, &stderr, done)

	gk, err := f.ca.ClientCert("gatekeeper-audit")
	if err != nil {
		t.Fatal(err)
	}
	c := newConstraintClient(t, ctx, apiAddr, f.ca, gk)

	good := f.host + "/demo/app:v1"
	missing := f.host + "/demo/missing:v1"
	pinned := f.host + "/demo/app@" + f.digest
	got := gatekeepertest.ReviewPod(t, ctx, c, good, "evil.example/x:1", "Not/Valid:1", missing, pinned, good)
	want := []string{
		fmt.Sprintf("imagetrust-mutate error <%s>: not found", missing),
		"imagetrust-mutate error <Not/Valid:1>: invalid reference",
		"imagetrust-mutate error <evil.example/x:1>: registry not allowed",
		fmt.Sprintf("imagetrust-resolve error <%s>: not found", missing),
		"imagetrust-resolve error <Not/Valid:1>: invalid reference",
		"imagetrust-resolve error <evil.example/x:1>: registry not allowed",
		fmt.Sprintf("mutate <%s> -> <%s@%s>", good, good, f.digest),
		fmt.Sprintf("mutate <%s> -> <%s>", pinned, pinned),
		fmt.Sprintf("resolve <%s> digest <%s> image <%s>", good, f.digest, good),
		fmt.Sprintf("resolve <%s> digest <%s> image <%s>", pinned, f.digest, pinned),
	}
	if len(got) != len(want) {
		t.Fatalf("Review() messages:\n  %s\nwant %d messages like:\n  %s", strings.Join(got, "\n  "), len(want), strings.Join(want, "\n  "))
	}
	for _, w := range want {
		if !slices.ContainsFunc(got, func(g string) bool { return strings.HasPrefix(g, w) }) {
			t.Errorf("Review() lacks a message starting %q; got:\n  %s", w, strings.Join(got, "\n  "))
		}
	}

	// A request over server.maxKeys (default 1000) reaches Rego as a system_error.
	many := make([]string, 1001)
	for i := range many {
		many[i] = fmt.Sprintf("%s/demo/many-%d:v1", f.host, i)
	}
	got = gatekeepertest.ReviewPod(t, ctx, c, many...)
	if len(got) != 2 {
		t.Fatalf("Review() of 1001 images = %d messages (%.300q…), want two system errors", len(got), got)
	}
	for _, g := range got {
		if !strings.Contains(g, "system_error: request has 1001 keys; the limit is 1000") {
			t.Errorf("Review() of 1001 images: %q, want the key-limit system_error", g)
		}
	}

	// A Gatekeeper whose client certificate comes from another CA is refused at the handshake,
	// and Rego sees a system_error (never a silent allow).
	other, err := pki.NewCA("another CA")
	if err != nil {
		t.Fatal(err)
	}
	intruder, err := other.ClientCert("intruder")
	if err != nil {
		t.Fatal(err)
	}
	// (Another URL host, so frameworks' per-provider HTTP client cache builds a new transport
	// instead of reusing the keep-alive connection made with the good certificate.)
	c2 := newConstraintClient(t, ctx, strings.Replace(apiAddr, "127.0.0.1", "localhost", 1), f.ca, intruder)
	got = gatekeepertest.ReviewPod(t, ctx, c2, good)
	if len(got) != 2 {
		t.Fatalf("Review() with a foreign client certificate = %q, want two system errors", got)
	}
	for _, g := range got {
		if !strings.Contains(g, "system_error: failed to send external data request") || !strings.Contains(g, "certificate") {
			t.Errorf("Review() with a foreign client certificate: %q, want a TLS certificate system_error", g)
		}
	}
}
