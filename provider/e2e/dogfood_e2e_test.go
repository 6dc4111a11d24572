//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/imagetrust/imagetrust/provider/internal/image"
)

// Dogfooding: the provider image, assembled by the same code as `make image` from the provider
// binary this test built, pushed to the in-test registry, signed and attested there (SPDX SBOM,
// SLSA v1 provenance naming this repository) with the key of authority e2e-key, is admitted by
// the real Gatekeeper stack through the real provider under the base (bank allow-list), digest
// and verification constraints; the same image pushed unsigned to another repository is denied.
//
// One platform (the host's) only, and the test's provider binary as it is (built by go build
// with the default cgo setting, so AllowDynamic): the image is admitted, never run. `make image`
// builds the static two-platform release image.

const (
	dogfoodSource  = "https://github.com/imagetrust/imagetrust"
	dogfoodBuilder = "https://github.com/imagetrust/imagetrust/blob/e2e/Makefile"
	dogfoodRepo    = "imagetrust/imagetrust-provider"
	dogfoodCopy    = "imagetrust/imagetrust-provider-unsigned"
	dogfoodTag     = "v0.0.0-e2e"
)

type dogfood struct {
	signed, unsigned string // name:tag@digest
	err              error
	took             time.Duration
}

// startDogfood builds, pushes, signs and attests the provider image in the background (the
// provider binary must be built); dogfoodScenario waits for it.
func (s *stack) startDogfood() <-chan dogfood {
	ch := make(chan dogfood, 1)
	bin, host, signer := s.providerBin, s.regHost, s.signer
	go func() {
		start := time.Now()
		d, err := buildDogfood(bin, host, signer)
		d.err, d.took = err, time.Since(start)
		ch <- d
	}()
	return ch
}

func buildDogfood(bin, host string, signer signature.Signer) (dogfood, error) {
	ctx := context.Background()
	o := image.Options{
		Binaries:     []image.Binary{{Platform: v1.Platform{OS: "linux", Architecture: runtime.GOARCH}, Path: bin}},
		Source:       dogfoodSource,
		Version:      dogfoodTag,
		Created:      time.Unix(1767225600, 0),
		AllowDynamic: true,
	}
	res, err := image.Build(o)
	if err != nil {
		return dogfood{}, err
	}
	sbom, err := image.SBOM(o)
	if err != nil {
		return dogfood{}, err
	}
	prov, err := image.ProvenanceFor(o, dogfoodBuilder)
	if err != nil {
		return dogfood{}, err
	}
	push := func(repo string) (name.Digest, error) {
		tag, err := name.NewTag(host+"/"+repo+":"+dogfoodTag, name.Insecure)
		if err != nil {
			return name.Digest{}, err
		}
		return image.Push(ctx, res.Index, tag)
	}
	signed, err := push(dogfoodRepo)
	if err != nil {
		return dogfood{}, err
	}
	unsigned, err := push(dogfoodCopy)
	if err != nil {
		return dogfood{}, err
	}
	err = image.Sign(ctx, image.SignOptions{Image: signed, Signer: signer, Attestations: []image.Attestation{
		{PredicateType: image.SBOMPredicateType, Predicate: sbom},
		{PredicateType: image.ProvenancePredicateType, Predicate: prov},
	}})
	if err != nil {
		return dogfood{}, err
	}
	ref := func(d name.Digest, repo string) string {
		return host + "/" + repo + ":" + dogfoodTag + "@" + d.DigestStr()
	}
	return dogfood{signed: ref(signed, dogfoodRepo), unsigned: ref(unsigned, dogfoodCopy)}, nil
}

// dogfoodScenario adds a verification constraint for Deployments in namespace production,
// where the seed's bank allow-list (constraints/base) and digest (constraints/digest) constraints
// already apply, then wants the signed provider Deployment
// admitted and the unsigned copy denied, naming the missing signature, SBOM and provenance.
func (s *stack) dogfoodScenario(t *testing.T, ch <-chan dogfood) {
	d := <-ch
	if d.err != nil {
		t.Fatalf("dogfood image: %v", d.err)
	}
	s.logf("timing: dogfood image built, pushed, signed and attested (in the background): %v", d.took.Round(time.Millisecond))
	start := time.Now()
	s.kubectlOK(fmt.Sprintf(`apiVersion: constraints.gatekeeper.sh/v1beta1
kind: K8sImageSignature
metadata: {name: dogfood-signed-sbom-provenance}
spec:
  enforcementAction: deny
  match:
    namespaces: [production]
    kinds: [{apiGroups: [apps], kinds: [Deployment]}]
  parameters:
    authorities: [e2e-key]
    requireSBOM: true
    sbomFormats: [spdx]
    requireProvenance: true
    allowedSourceRepos: [%s]
    allowedBuilders: ["https://github.com/imagetrust/imagetrust/blob/*/Makefile"]
    failOpen: false
`, dogfoodSource), "apply", "-f", "-")
	unsigned := deployment("production", "imagetrust-provider", d.unsigned)
	waitFor(t, 90*time.Second, "dogfood constraint enforced", func() error {
		out, err := s.kubectlCmd(unsigned, "create", "--dry-run=server", "-f", "-")
		if err == nil {
			return fmt.Errorf("unsigned copy still admitted")
		}
		if !strings.Contains(out, "[dogfood-signed-sbom-provenance]") {
			return fmt.Errorf("%s", out)
		}
		return nil
	}, s.gatekeeper, s.provider)

	_, obj := s.expectAdmitted(t, "dogfood: the signed, attested provider image pinned by digest", deployment("production", "imagetrust-provider", d.signed), false)
	if got := images(obj); obj != nil && (len(got) != 1 || !strings.HasSuffix(got[0], "="+d.signed)) {
		t.Errorf("dogfood: admitted Deployment images %v, want %s unchanged", images(obj), d.signed)
	}
	s.expectDenied(t, "dogfood: the same image, unsigned copy", unsigned,
		`\[dogfood-signed-sbom-provenance\] container <app> image <`+regexp.QuoteMeta(d.unsigned)+`> is not signed by required authority <e2e-key>`,
		`has no verified SBOM`,
		`has no verified SLSA provenance`)
	// Later scenarios (audit) run without the dogfood constraint.
	s.kubectlOK("", "delete", "k8simagesignature/dogfood-signed-sbom-provenance")
	s.mark("dogfood scenario (constraints applied, admitted, denied)", start)
}
