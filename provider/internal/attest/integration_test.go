package attest

// The generated templates/attestations.yaml with the seed constraint
// constraints/attestations/slsa-source.yaml, evaluated by Gatekeeper's own constraint framework
// and external-data client (caBundle, client certificate, TLS 1.3), against the attestations
// service behind the provider's HTTP handler, over images whose statements are signed in the
// test. external_data is registered process-wide: nothing here runs in parallel.

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	constraintclient "github.com/open-policy-agent/frameworks/constraint/pkg/client"

	"github.com/imagetrust/imagetrust/provider/internal/policy"
	"github.com/imagetrust/imagetrust/provider/internal/policy/gatekeepertest"
	"github.com/imagetrust/imagetrust/provider/internal/server"
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
	got := gatekeepertest.ReviewPod(t, ctx, c, ref(good), ref(bundled), ref(wrong), ref(pending), ref(byCI), ref(rogue), ref(transplanted), ref(plain), e.host+"/it/good:v1")
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
	c := gatekeepertest.Client(t, ctx, gatekeepertest.Options{
		Root: repoRoot, Template: "templates/attestations.yaml",
		Deps:      server.Deps{Attestations: server.Endpoint{Lookup: s.AttestationsLookup, Deadline: gatekeepertest.Deadline}},
		Providers: map[string]string{"imagetrust-attestations": "/v1/attestations"},
	})
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
