//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/imagetrust/imagetrust/provider/internal/signing"
)

// The attestations scenario's images, each with an SLSA v1 provenance signed by authority
// e2e-key (DSSE on the .att tag, as `cosign attest --tlog-upload=false` writes it).
const (
	attestAllowed = "demo/attest-allowed:1.0.0" // built from https://github.com/bank/payments
	attestForked  = "demo/attest-forked:1.0.0"  // built from https://github.com/bank/payments-fork
)

const predicateSLSAv1 = "https://slsa.dev/provenance/v1"

// setupAttestations pushes the scenario's images with their signed provenance. It needs the
// e2e-key signer (signImage) and no provider configuration of its own: statements verify
// against the provider's authorities.
func (s *stack) setupAttestations() {
	t := s.t
	for ref, uri := range map[string]string{
		attestAllowed: "git+https://github.com/bank/payments@refs/heads/main",
		attestForked:  "git+https://github.com/bank/payments-fork@refs/heads/main",
	} {
		s.pushRandom(ref, 1)
		pred, err := json.Marshal(map[string]any{
			"buildDefinition": map[string]any{
				"buildType":          "https://slsa-framework.github.io/github-actions-buildtypes/workflow/v1",
				"externalParameters": map[string]any{"source": map[string]any{"uri": uri}},
			},
			"runDetails": map[string]any{"builder": map[string]any{"id": "https://github.com/actions/runner/github-hosted"}},
		})
		if err != nil {
			t.Fatal(err)
		}
		dr, err := name.NewDigest(s.pinnedNoTag(ref), name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		if err := signing.Attest(dr, s.signer, predicateSLSAv1, pred); err != nil {
			t.Fatalf("attesting %s: %v", ref, err)
		}
	}
}

// attestScenario uses the imagetrust-attestations Provider of the static overlay and a deny
// K8sImageAttestations constraint (templates/attestations.yaml, the example of
// docs/write-your-own-policy.md) in namespace attested, and checks the user-written rule over
// the decoded predicate on the real stack: the image built from the allowed repository is
// admitted, the one built from a fork is denied naming the fork.
func (s *stack) attestScenario(t *testing.T, static []*unstructured.Unstructured) {
	start := time.Now()
	found := false
	for _, o := range static {
		if o.GetKind() == "Provider" && o.GetName() == "imagetrust-attestations" {
			u, _, _ := unstructured.NestedString(o.Object, "spec", "url")
			found = strings.HasSuffix(u, "/v1/attestations")
		}
	}
	if !found {
		t.Fatal("static-tls overlay has no imagetrust-attestations Provider for /v1/attestations")
	}
	s.kubectlOK("apiVersion: v1\nkind: Namespace\nmetadata: {name: attested}\n", "apply", "-f", "-")
	s.kubectlOK(`apiVersion: constraints.gatekeeper.sh/v1beta1
kind: K8sImageAttestations
metadata: {name: e2e-slsa-source}
spec:
  enforcementAction: deny
  match:
    namespaces: [attested]
    kinds: [{apiGroups: [""], kinds: [Pod]}]
  parameters:
    authorities: [e2e-key]
    allowedSourceRepos: [https://github.com/bank/payments]
`, "apply", "-f", "-")

	forked := pod("attested", "forked", s.pinned(attestForked))
	waitFor(t, 60*time.Second, "K8sImageAttestations enforced", func() error {
		out, err := s.kubectlCmd(forked, "create", "--dry-run=server", "-f", "-")
		if err == nil || !strings.Contains(out, "denied the request") {
			return fmt.Errorf("image built from the fork not denied yet: %s", out)
		}
		return nil
	}, s.gatekeeper)
	s.expectDenied(t, "attestations: image built from another repository denied, naming it", forked,
		`\[e2e-slsa-source\]`, `was built from source <git\+https://github\.com/bank/payments-fork@refs/heads/main> \(SLSA provenance of <e2e-key>\)`,
		`not one of the allowed repositories <https://github\.com/bank/payments>`)
	if warn, _ := s.expectAdmitted(t, "attestations: image built from the allowed repository admitted",
		pod("attested", "allowed", s.pinned(attestAllowed)), false); warn != "" {
		t.Errorf("attestations: allowed image admitted with warnings:\n%s", warn)
	}
	s.mark("attestations scenario", start)
}
