package suite

// No t.Parallel: these tests create frameworks rego drivers (external_data is process-wide).

import (
	"context"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"testing"

	constraintclient "github.com/open-policy-agent/frameworks/constraint/pkg/client"
	"github.com/open-policy-agent/frameworks/constraint/pkg/client/drivers/rego"
	"github.com/open-policy-agent/frameworks/constraint/pkg/externaldata"
	"github.com/open-policy-agent/gatekeeper/v3/apis"
	"github.com/open-policy-agent/gatekeeper/v3/pkg/gator"
	"github.com/open-policy-agent/gatekeeper/v3/pkg/gator/reader"
	mutationtypes "github.com/open-policy-agent/gatekeeper/v3/pkg/mutation/types"
	"github.com/open-policy-agent/gatekeeper/v3/pkg/target"
	"k8s.io/apimachinery/pkg/runtime"
)

// repoRoot is the repository root, three levels above this package.
var repoRoot = filepath.Join("..", "..", "..")

func withProviderCache(pc *externaldata.ProviderCache) gator.Opt {
	return func() ([]constraintclient.Opt, []rego.Arg, error) {
		return nil, []rego.Arg{rego.AddExternalDataProviderCache(pc)}, nil
	}
}

// TestVerificationTemplateCompiles loads the generated templates/verification.yaml the way
// Gatekeeper does (frameworks client with an external-data provider cache), and every
// constraint in constraints/verification against its parameter schema.
func TestVerificationTemplateCompiles(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := apis.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	fsys := os.DirFS(repoRoot)
	tmpl, err := reader.ReadTemplate(scheme, fsys, "templates/verification.yaml")
	if err != nil {
		t.Fatalf("ReadTemplate(templates/verification.yaml) = %v", err)
	}
	if got, want := tmpl.Spec.CRD.Spec.Names.Kind, "K8sImageSignature"; got != want {
		t.Errorf("template kind = %q, want %q", got, want)
	}

	c, err := gator.NewOPAClient(false, withProviderCache(externaldata.NewCache()))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := c.AddTemplate(ctx, tmpl); err != nil {
		t.Fatalf("AddTemplate(verification.yaml) with a provider cache = %v, want nil", err)
	}

	constraints, err := filepath.Glob(filepath.Join(repoRoot, "constraints", "verification", "*.yaml"))
	if err != nil || len(constraints) == 0 {
		t.Fatalf("no constraints in constraints/verification (%v)", err)
	}
	testConstraints, _ := filepath.Glob(filepath.Join(repoRoot, "gator-tests", "verification", "*", "constraint.yaml"))
	for _, p := range append(constraints, testConstraints...) {
		rel, _ := filepath.Rel(repoRoot, p)
		u, err := reader.ReadConstraint(fsys, path.Clean(filepath.ToSlash(rel)))
		if err != nil {
			t.Errorf("ReadConstraint(%s) = %v", rel, err)
			continue
		}
		if _, err := c.AddConstraint(ctx, u); err != nil {
			t.Errorf("AddConstraint(%s) = %v, want nil", rel, err)
		}
	}
}

// TestVerificationTemplateNeedsExternalData documents why imagetrust verify exists: without
// a provider cache (what gator does) the template does not compile (Gatekeeper issue #2826).
// It runs in a fresh process: once any driver with a provider cache has been created,
// external_data stays registered process-wide and every later driver compiles it.
func TestVerificationTemplateNeedsExternalData(t *testing.T) {
	if os.Getenv("IMAGETRUST_SUITE_FRESH_PROCESS") != "1" {
		cmd := exec.Command(os.Args[0], "-test.run=^TestVerificationTemplateNeedsExternalData$", "-test.count=1")
		cmd.Env = append(os.Environ(), "IMAGETRUST_SUITE_FRESH_PROCESS=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("fresh process: %v\n%s", err, out)
		}
		return
	}
	scheme := runtime.NewScheme()
	if err := apis.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	tmpl, err := reader.ReadTemplate(scheme, os.DirFS(repoRoot), "templates/verification.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c, err := gator.NewOPAClient(false)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.AddTemplate(context.Background(), tmpl)
	if err == nil || !strings.Contains(err.Error(), "external_data") {
		t.Errorf("AddTemplate(verification.yaml) without a provider cache = %v, want an undefined external_data error", err)
	}
}

// TestVerificationSuite runs one of the repository's suites end to end through Run, so that
// `go test` alone exercises the generated template against the fixture server.
func TestVerificationSuite(t *testing.T) {
	res, err := Run(context.Background(), os.DirFS(repoRoot), "gator-tests/verification/signatures.yaml", "gator-tests/verification/signatures.yaml", false, Options{})
	if err != nil {
		t.Fatalf("Run(signatures.yaml) = %v", err)
	}
	var out strings.Builder
	if err := Print(&out, res, false); err != nil {
		t.Fatalf("gator-tests/verification/signatures.yaml failed:\n%s", out.String())
	}
	if res.Requests == 0 {
		t.Error("the suite made no external_data requests")
	}
}

// BenchmarkVerificationTemplateReview measures one admission review of a Pod with 10
// containers by the generated template: Rego evaluation plus one batched external_data call
// over HTTPS to the fixture server (no Gatekeeper response cache).
func BenchmarkVerificationTemplateReview(b *testing.B) {
	scheme := runtime.NewScheme()
	if err := apis.AddToScheme(scheme); err != nil {
		b.Fatal(err)
	}
	fsys := os.DirFS(repoRoot)
	tmpl, err := reader.ReadTemplate(scheme, fsys, "templates/verification.yaml")
	if err != nil {
		b.Fatal(err)
	}
	cons, err := reader.ReadConstraint(fsys, "constraints/verification/kms-signed.yaml")
	if err != nil {
		b.Fatal(err)
	}
	set, err := loadFixtures(fsys, "gator-tests/verification")
	if err != nil {
		b.Fatal(err)
	}
	srv := newFixtureServer()
	defer srv.Close()
	srv.use(set)
	pc := externaldata.NewCache()
	if _, err := syncProviders(pc, srv, nil, set); err != nil {
		b.Fatal(err)
	}
	c, err := gator.NewOPAClient(false, withProviderCache(pc))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if _, err := c.AddTemplate(ctx, tmpl); err != nil {
		b.Fatal(err)
	}
	if _, err := c.AddConstraint(ctx, cons); err != nil {
		b.Fatal(err)
	}
	objs, err := reader.ReadK8sResources(strings.NewReader(benchPod))
	if err != nil || len(objs) != 1 {
		b.Fatalf("reading the benchmark pod: %v", err)
	}
	review := target.AugmentedUnstructured{Object: *objs[0], Source: mutationtypes.SourceTypeOriginal}
	b.ResetTimer()
	for b.Loop() {
		resp, err := c.Review(ctx, review)
		if err != nil {
			b.Fatal(err)
		}
		if got := len(resp.Results()); got != 4 {
			b.Fatalf("Review() gave %d violations, want 4", got)
		}
	}
}

const benchPod = `apiVersion: v1
kind: Pod
metadata: {name: bench, namespace: default}
spec:
  containers:
    - {name: c0, image: "registry.bank.internal/payments/api:1.0"}
    - {name: c1, image: "registry.bank.internal/payments/worker:1.0"}
    - {name: c2, image: "registry.bank.internal/payments/unsigned:1.0"}
    - {name: c3, image: "registry.bank.internal/payments/wrongkey:1.0"}
    - {name: c4, image: "registry.bank.internal/payments/tekton:1.0"}
    - {name: c5, image: "registry.bank.internal/payments/two-ci:1.0"}
    - {name: c6, image: "registry.bank.internal/payments/no-sbom:1.0"}
    - {name: c7, image: "registry.bank.internal/payments/scanned:1.0"}
    - {name: c8, image: "registry.bank.internal/payments/cyclonedx:1.0"}
    - {name: c9, image: "registry.bank.internal/payments/single:1.0"}
`
