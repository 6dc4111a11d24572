package verify

// The generated templates/verification.yaml, evaluated by Gatekeeper's own constraint framework
// and external-data client (caBundle, client certificate, TLS 1.3), against the real verify
// service behind the provider's HTTP handler, over images signed in the test. external_data is
// registered process-wide: nothing here runs in parallel.

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/imagetrust/imagetrust/provider/internal/policy/gatekeepertest"
	"github.com/imagetrust/imagetrust/provider/internal/server"
)

func TestVerificationTemplateThroughGatekeeper(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	release, rogue := newKey(t, "ecdsa"), newKey(t, "ed25519")
	s := newService(t, e, keyAuthorityCfg("release", release))

	// The provider's HTTP handler over mTLS, and Gatekeeper's side.
	c := gatekeepertest.Client(t, ctx, gatekeepertest.Options{
		Root: filepath.Join("..", "..", ".."), Template: "templates/verification.yaml",
		Deps:      server.Deps{Verify: server.Endpoint{Lookup: s.VerifyLookup, Deadline: gatekeepertest.Deadline}},
		Providers: map[string]string{"imagetrust-verify": "/v1/verify"},
	})
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

	got := gatekeepertest.ReviewPod(t, ctx, c, good, evil, rogueSigned, unsigned)
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
