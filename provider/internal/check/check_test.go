package check

// No t.Parallel: each Run creates a frameworks rego driver (external_data is process-wide).

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/imagetrust/imagetrust/provider/internal/manifests"
)

const matchConstraints = `apiVersion: constraints.gatekeeper.sh/v1beta1
kind: K8sImageSignature
metadata: {name: signed}
spec:
  enforcementAction: deny
  match:
    kinds: [{apiGroups: [apps], kinds: [Deployment]}]
    namespaceSelector: {matchLabels: {env: prod}}
  parameters:
    authorities: [test-kms]
---
apiVersion: constraints.gatekeeper.sh/v1beta1
kind: K8sTrustedImageSource
metadata: {name: registry}
spec:
  enforcementAction: warn
  match:
    kinds: [{apiGroups: [apps], kinds: [Deployment]}]
    labelSelector: {matchLabels: {tier: web}}
  parameters:
    allowedRegistries: [HOST]
    bannedTags: [latest]
`

const matchObjects = `apiVersion: v1
kind: Namespace
metadata: {name: prod, labels: {env: prod}}
---
apiVersion: v1
kind: Namespace
metadata: {name: dev}
---
# signed, in prod, labelled web: nothing to report
apiVersion: apps/v1
kind: Deployment
metadata: {name: good, namespace: prod, labels: {tier: web}}
spec:
  template:
    spec:
      containers:
        - name: app
          image: HOST/bank/signed:1.0
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: bad, namespace: prod}
spec:
  template:
    spec:
      initContainers:
        - name: init
          image: "HOST/bank/signed:1.0"
      containers:
        - name: app
          image: HOST/bank/unsigned:1.0
---
# unsigned, but dev is not selected by the signature constraint; labelled web
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: dev, labels: {tier: web}}
spec:
  template:
    spec:
      containers:
        - name: nginx
          image: 'nginx:latest'
`

func keys(fs []Finding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.Object+" "+f.Container+" "+f.Constraint+" "+f.Action)
	}
	sort.Strings(out)
	return out
}

func lineOf(data, needle string) int {
	i := strings.Index(data, needle)
	if i < 0 {
		return -1
	}
	return strings.Count(data[:i], "\n") + 1
}

// TestCheckInProcessProvider runs the provider in-process against a registry with a signed
// and an unsigned image, then replays the recorded answers offline: the findings are the same.
func TestCheckInProcessProvider(t *testing.T) {
	w := newWorld(t)
	pol := loadPolicy(t, strings.ReplaceAll(matchConstraints, "HOST", w.host))
	data := strings.ReplaceAll(matchObjects, "HOST", w.host)
	objs := parseObjects(t, "k8s/app.yaml", data)

	prov, err := InProcessProviders(context.Background(), InProcessOptions{ConfigFile: w.configFile, WorkDir: t.TempDir()})
	if err != nil {
		t.Fatalf("InProcessProviders: %v", err)
	}
	defer func() { _ = prov.Close() }()
	rep, err := run(t, pol, objs, prov)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	want := []string{
		"Deployment dev/web nginx K8sTrustedImageSource/registry warn", // not an allowed registry
		"Deployment dev/web nginx K8sTrustedImageSource/registry warn", // banned tag
		"Deployment dev/web nginx K8sTrustedImageSource/registry warn", // implicit registry
		"Deployment prod/bad app K8sImageSignature/signed deny",
	}
	if got := keys(rep.Findings); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("findings:\n%s\nwant:\n%s\nall:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"), summary(rep.Findings))
	}
	for _, f := range rep.Findings {
		wantLine := lineOf(data, "image: "+f.Image)
		if f.Image == "nginx:latest" {
			wantLine = lineOf(data, "'nginx:latest'")
		}
		if f.File != "k8s/app.yaml" || f.Line != wantLine || f.Column != 18 {
			t.Errorf("%s at %s:%d:%d, want k8s/app.yaml:%d:18", f.Constraint, f.File, f.Line, f.Column, wantLine)
		}
	}
	if !strings.Contains(rep.Findings[0].Message, "bank/unsigned:1.0") {
		t.Errorf("deny message = %q, want it to name the unsigned image", rep.Findings[0].Message)
	}
	if rep.Summary != (Summary{Deny: 1, Warn: 3}) || rep.Objects != 5 {
		t.Errorf("summary = %+v over %d objects, want 1 deny 3 warn over 5", rep.Summary, rep.Objects)
	}
	if prov.Requests() == 0 {
		t.Error("the provider was never called")
	}

	// --record, then the same check offline from the fixtures.
	dir := t.TempDir()
	file, err := prov.Record(dir)
	if err != nil {
		t.Fatalf("Record: %v", err)
	}
	if b, _ := os.ReadFile(file); !strings.Contains(string(b), "bank/unsigned:1.0") || !strings.Contains(string(b), "kind: ProviderFixtures") {
		t.Errorf("recorded fixtures lack the unsigned image:\n%s", b)
	}
	fx, err := FixtureProviders(dir)
	if err != nil {
		t.Fatalf("FixtureProviders: %v", err)
	}
	defer func() { _ = fx.Close() }()
	w.reg.Fail(503) // the replay must not need the registry
	rep2, err := run(t, pol, objs, fx)
	if err != nil {
		t.Fatalf("Run with recorded fixtures: %v", err)
	}
	if a, b := summary(rep.Findings), summary(rep2.Findings); a != b {
		t.Errorf("replayed findings differ:\n%s\nlive:\n%s", b, a)
	}
}

// TestCheckProviderFailure: a registry outage leaves the signature unknown; the check is
// incomplete (exit 3) and still reports what the templates decided.
func TestCheckProviderFailure(t *testing.T) {
	w := newWorld(t)
	pol := loadPolicy(t, strings.ReplaceAll(matchConstraints, "HOST", w.host))
	objs := parseObjects(t, "app.yaml", strings.ReplaceAll(matchObjects, "HOST", w.host))
	prov, err := InProcessProviders(context.Background(), InProcessOptions{ConfigFile: w.configFile, WorkDir: t.TempDir()})
	if err != nil {
		t.Fatalf("InProcessProviders: %v", err)
	}
	defer func() { _ = prov.Close() }()
	w.reg.Fail(503)
	rep, err := run(t, pol, objs, prov)
	if !errors.Is(err, ErrIncomplete) {
		t.Fatalf("Run error = %v, want ErrIncomplete", err)
	}
	if rep == nil || len(rep.Incomplete) == 0 || !strings.Contains(strings.Join(rep.Incomplete, "\n"), "unavailable") {
		t.Fatalf("report incomplete = %v, want the unavailable keys", rep)
	}
	if rep.Summary.Deny == 0 {
		t.Errorf("an outage must deny (fail closed), got %+v", rep.Summary)
	}
	if _, err := prov.Record(t.TempDir()); err == nil {
		t.Error("Record after failures succeeded, want a refusal")
	}
}

// TestCheckMissingFixture: a key no fixture answers makes the check incomplete.
func TestCheckMissingFixture(t *testing.T) {
	pol := loadPolicy(t, strings.ReplaceAll(matchConstraints, "HOST", "registry.example"))
	objs := parseObjects(t, "app.yaml", strings.ReplaceAll(matchObjects, "HOST", "registry.example"))
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "f.yaml"), `apiVersion: test.imagetrust.dev/v1alpha1
kind: ProviderFixtures
providers:
  imagetrust-verify-signatures: # what a constraint without attestation parameters asks
    keys:
      registry.example/bank/signed:1.0: {value: {signed: false, reads: signatures}}
`)
	fx, err := FixtureProviders(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = fx.Close() }()
	_, err = run(t, pol, objs, fx)
	if !errors.Is(err, ErrIncomplete) || !strings.Contains(err.Error(), "registry.example/bank/unsigned:1.0") {
		t.Fatalf("Run error = %v, want ErrIncomplete naming the unanswered key", err)
	}
}

// TestCheckMissingProviderSection: a constraint whose template asks a provider the fixtures
// have no section for does not decide: its results for the objects it reviewed are
// ActionIncomplete naming the provider and the fixture directory (not Gatekeeper's opaque
// system error and a deny), and the check is incomplete. With failOpen the template admits, and
// the check is still incomplete.
func TestCheckMissingProviderSection(t *testing.T) {
	objs := parseObjects(t, "app.yaml", strings.ReplaceAll(matchObjects, "HOST", "registry.example"))
	dir := t.TempDir()
	// Only imagetrust-verify; a constraint without attestation parameters asks
	// imagetrust-verify-signatures.
	writeFile(t, filepath.Join(dir, "f.yaml"), `apiVersion: test.imagetrust.dev/v1alpha1
kind: ProviderFixtures
providers:
  imagetrust-verify:
    keys:
      registry.example/bank/signed:1.0: {value: {signed: true}}
`)
	want := "no fixture for provider imagetrust-verify-signatures in " + dir
	for _, tc := range []struct {
		name, constraints string
		findings          []string
	}{
		{"deny", matchConstraints, []string{
			"Deployment prod/bad app K8sImageSignature/signed incomplete",
			"Deployment prod/bad init K8sImageSignature/signed incomplete",
			"Deployment prod/good app K8sImageSignature/signed incomplete",
		}},
		{"failOpen", strings.Replace(matchConstraints, "authorities: [test-kms]", "authorities: [test-kms]\n    failOpen: true", 1), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pol := loadPolicy(t, strings.ReplaceAll(tc.constraints, "HOST", "registry.example"))
			fx, err := FixtureProviders(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = fx.Close() }()
			rep, err := run(t, pol, objs, fx)
			if !errors.Is(err, ErrIncomplete) || !strings.Contains(err.Error(), want) {
				t.Fatalf("Run error = %v, want ErrIncomplete with %q", err, want)
			}
			if !strings.Contains(strings.Join(rep.Incomplete, "\n"), want+" (asked for registry.example/bank/signed:1.0, registry.example/bank/unsigned:1.0)") {
				t.Errorf("report incomplete = %q, want %q and the keys asked", rep.Incomplete, want)
			}
			var got []Finding
			for _, f := range rep.Findings {
				if strings.HasPrefix(f.Constraint, "K8sImageSignature/") {
					got = append(got, f)
				}
			}
			if k := keys(got); strings.Join(k, "\n") != strings.Join(tc.findings, "\n") {
				t.Fatalf("K8sImageSignature findings:\n%s\nwant:\n%s", strings.Join(k, "\n"), strings.Join(tc.findings, "\n"))
			}
			for _, f := range got {
				if f.Message != want || f.Image == "" || f.Column <= 1 {
					t.Errorf("finding %+v: want message %q at its image scalar", f, want)
				}
			}
			if rep.Summary.Incomplete != len(tc.findings) || rep.Summary.Deny != 0 {
				t.Errorf("summary = %+v, want %d incomplete and no deny", rep.Summary, len(tc.findings))
			}
		})
	}
}

func TestPolicyErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, data, want string
		line             int
	}{
		{"missing template", "# a constraint without its template\napiVersion: constraints.gatekeeper.sh/v1beta1\nkind: K8sNoSuchTemplate\nmetadata: {name: x}\n", "no ConstraintTemplate defines kind K8sNoSuchTemplate", 2},
		{"not policy", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n", "neither a ConstraintTemplate nor a Constraint", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-")+".yaml")
			writeFile(t, f, tc.data)
			_, err := LoadPolicy([]string{templatesDir, f})
			var pe *manifests.Error
			if !errors.As(err, &pe) || pe.File != f || pe.Line != tc.line || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("LoadPolicy = %v, want an error at %s:%d containing %q", err, f, tc.line, tc.want)
			}
		})
	}
}

func TestEffectiveAction(t *testing.T) {
	for _, tc := range []struct {
		action string
		scoped []string
		want   string
	}{
		{"deny", nil, "deny"},
		{"warn", nil, "warn"},
		{"dryrun", nil, "dryrun"},
		{"scoped", []string{"warn", "deny"}, "deny"},
		{"scoped", []string{"dryrun", "warn"}, "warn"},
		{"scoped", nil, ""},
	} {
		if got := effectiveAction(tc.action, tc.scoped); got != tc.want {
			t.Errorf("effectiveAction(%q, %v) = %q, want %q", tc.action, tc.scoped, got, tc.want)
		}
	}
}

// TestCheckWithoutProvider: constraints whose template calls external_data, and no provider:
// the templates still compile, and the check says it is incomplete instead of passing.
func TestCheckWithoutProvider(t *testing.T) {
	pol := loadPolicy(t, strings.ReplaceAll(matchConstraints, "HOST", "registry.example"))
	objs := parseObjects(t, "app.yaml", strings.ReplaceAll(matchObjects, "HOST", "registry.example"))
	rep, err := run(t, pol, objs, nil)
	if !errors.Is(err, ErrIncomplete) || !strings.Contains(err.Error(), "K8sImageSignature call external_data") {
		t.Fatalf("Run error = %v, want ErrIncomplete naming K8sImageSignature", err)
	}
	if rep.Summary.Deny == 0 {
		t.Errorf("without a provider the signature constraint must deny (fail closed), got %+v", rep.Summary)
	}
}

// TestProviderPath: every shipped Provider object calls its own endpoint path.
func TestProviderPath(t *testing.T) {
	want := map[string]string{
		"imagetrust-resolve": "/v1/resolve", "imagetrust-mutate": "/v1/mutate", "imagetrust-verify": "/v1/verify",
		"imagetrust-verify-signatures": "/v1/verify/signatures", "imagetrust-scan": "/v1/scan", "imagetrust-attestations": "/v1/attestations",
	}
	if len(ProviderNames) != len(want) {
		t.Fatalf("ProviderNames = %v, want the %d names of %v", ProviderNames, len(want), want)
	}
	for _, n := range ProviderNames {
		if got := ProviderPath(n); got != want[n] {
			t.Errorf("ProviderPath(%q) = %q, want %q", n, got, want[n])
		}
	}
}
