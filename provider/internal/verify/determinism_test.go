package verify

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"reflect"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/imagetrust/imagetrust/provider/internal/registry/registrytest"
	"github.com/imagetrust/imagetrust/provider/internal/signing"
	"github.com/imagetrust/imagetrust/provider/internal/wire"
)

func slsaV1Predicate(builder, repo string) map[string]any {
	return map[string]any{
		"buildDefinition": map[string]any{
			"buildType":          "https://actions.github.io/buildtypes/workflow/v1",
			"externalParameters": map[string]any{"workflow": map[string]any{"repository": repo, "path": ".github/workflows/release.yml"}},
		},
		"runDetails": map[string]any{"builder": map[string]any{"id": builder}},
	}
}

func slsaV02Predicate(builder, repo string) map[string]any {
	return map[string]any{
		"builder":    map[string]any{"id": builder},
		"buildType":  "https://tekton.dev/chains/v2/slsa",
		"invocation": map[string]any{"configSource": map[string]any{"uri": repo}},
	}
}

func mustJSON(t testing.TB, v any) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// attestedManyWays signs d with cosign (tag scheme) and attaches, with real cosign code
// (provider/internal/signing), two SPDX and two CycloneDX SBOMs and SLSA v0.2 and v1
// provenance from four builders, as Sigstore bundle referrers and on the .att tag, signed by
// keys a and b, plus an attestation by an unknown key and two unsigned SBOM referrers.
func attestedManyWays(t *testing.T, d name.Digest, a, b, stranger *keyPair) {
	t.Helper()
	if err := signing.Sign(d, a.sv); err != nil {
		t.Fatal(err)
	}
	bundles := []struct {
		k         *keyPair
		pt        string
		predicate any
	}{
		{a, "https://spdx.dev/Document", map[string]any{"spdxVersion": "SPDX-2.3", "name": "app"}},
		{b, "https://spdx.dev/Document/v2.3", map[string]any{"spdxVersion": "SPDX-2.3", "name": "app-b"}},
		{a, "https://cyclonedx.org/bom", map[string]any{"bomFormat": "CycloneDX", "specVersion": "1.5"}},
		{a, slsaV1, slsaV1Predicate("https://github.com/actions/runner/github-hosted", "https://github.com/bank/payments")},
		{b, slsaV02, slsaV02Predicate("https://tekton.dev/chains/v2", "git+https://github.com/bank/payments@refs/heads/main")},
		{b, slsaV1, slsaV1Predicate("https://gitlab.com/bank/runner", "https://gitlab.com/bank/payments")},
		{stranger, slsaV1, slsaV1Predicate("https://evil.example/builder", "https://github.com/evil/payments")},
		{stranger, "https://spdx.dev/Document", map[string]any{"name": "stranger"}},
	}
	for _, x := range bundles {
		if err := signing.AttestBundle(d, x.k.sv, x.k.pub, x.pt, mustJSON(t, x.predicate)); err != nil {
			t.Fatal(err)
		}
	}
	if err := signing.Attest(d, a.sv, slsaV02, mustJSON(t, slsaV02Predicate("https://jenkins.bank.internal/job/payments", "https://github.com/bank/payments.git"))); err != nil {
		t.Fatal(err)
	}
	if err := signing.Attest(d, b.sv, "https://cyclonedx.org/bom/v1.6", mustJSON(t, map[string]any{"bomFormat": "CycloneDX"})); err != nil {
		t.Fatal(err)
	}
	attachReferrer(t, d, "application/spdx+json", []byte(`{"spdxVersion":"SPDX-2.3","name":"unsigned"}`))
	attachReferrer(t, d, "application/vnd.cyclonedx+json", []byte(`{"bomFormat":"CycloneDX"}`))
}

// TestVerifyDeterministicUnderShuffledReferrers: an image with several verified SBOMs and SLSA
// provenance statements, looked up again and again through a registry that lists referrers in
// a new order on each call, gets byte-identical answers that report every verified SBOM format
// and every provenance statement. With and without the referrers API (fallback tag).
func TestVerifyDeterministicUnderShuffledReferrers(t *testing.T) {
	for _, api := range []bool{true, false} {
		t.Run(map[bool]string{true: "referrers API", false: "fallback tag"}[api], func(t *testing.T) {
			var sh *registrytest.Shuffler
			e := newEnvWrapped(t, api, func(h http.Handler) http.Handler {
				sh = registrytest.Shuffle(h, 15)
				return sh
			})
			a, b, stranger := newKey(t, "ecdsa"), newKey(t, "ecdsa"), newKey(t, "ecdsa")
			d := e.push(t, "shuffled/app", "v1")
			attestedManyWays(t, d, a, b, stranger)
			s := newService(t, e, keyAuthorityCfg("ci-a", a), keyAuthorityCfg("ci-b", b))

			const lookups = 24
			var first []byte
			for i := range lookups {
				items := s.Verify(context.Background(), []string{d.String()})
				raw, ok := items[0].Value.(wire.Encoded)
				if !ok {
					t.Fatalf("lookup %d: value %T, error %q", i, items[0].Value, items[0].Error)
				}
				if i == 0 {
					first = raw
					continue
				}
				if !bytes.Equal(raw, first) {
					t.Fatalf("lookup %d differs from lookup 0:\n%s\nwant\n%s", i, raw, first)
				}
			}
			listing := "/v2/shuffled/app/referrers/" + d.DigestStr()
			if !api {
				listing = "/v2/shuffled/app/manifests/sha256-" + d.DigestStr()[len("sha256:"):]
			}
			if n := sh.Orders(listing); n < 2 {
				t.Fatalf("the registry served %d order(s) of %s, want several: the test proves nothing", n, listing)
			}

			var got map[string]any
			if err := json.Unmarshal(first, &got); err != nil {
				t.Fatal(err)
			}
			sbom, _ := got["sbom"].(map[string]any)
			if want := []any{"cyclonedx", "spdx"}; !reflect.DeepEqual(sbom["formats"], want) {
				t.Errorf("sbom.formats = %v, want %v (every verified SBOM, sorted): %s", sbom["formats"], want, first)
			}
			type prov struct{ builder, source, predicate, authority string }
			var provs []prov
			list, _ := got["provenance"].([]any)
			for _, x := range list {
				m, _ := x.(map[string]any)
				provs = append(provs, prov{str(m["builderId"]), str(m["sourceUri"]), str(m["predicateType"]), str(m["authority"])})
			}
			want := []prov{
				{"https://github.com/actions/runner/github-hosted", "https://github.com/bank/payments", slsaV1, "ci-a"},
				{"https://gitlab.com/bank/runner", "https://gitlab.com/bank/payments", slsaV1, "ci-b"},
				{"https://jenkins.bank.internal/job/payments", "https://github.com/bank/payments.git", slsaV02, "ci-a"},
				{"https://tekton.dev/chains/v2", "git+https://github.com/bank/payments@refs/heads/main", slsaV02, "ci-b"},
			}
			if !reflect.DeepEqual(provs, want) {
				t.Errorf("provenance = %v, want %v (every verified statement, sorted): %s", provs, want, first)
			}
			if rej, _ := got["rejected"].([]any); len(rej) != 2 {
				t.Errorf("rejected = %v, want the stranger's two bundles", rej)
			}
			if un, _ := sbom["unverified"].([]any); len(un) != 2 {
				t.Errorf("sbom.unverified = %v, want the two unsigned SBOM referrers", un)
			}
		})
	}
}

func str(v any) string {
	s, _ := v.(string)
	return s
}
