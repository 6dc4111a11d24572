package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const checkConstraint = `apiVersion: constraints.gatekeeper.sh/v1beta1
kind: K8sTrustedImageSource
metadata: {name: trusted}
spec:
  enforcementAction: %ACTION%
  match:
    kinds: [{apiGroups: [apps], kinds: [Deployment]}]
  parameters:
    allowedRegistries: [registry.example]
    bannedTags: [latest]
`

const checkDeployment = `apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  template:
    spec:
      containers:
        - name: web
          image: %IMAGE%
`

func checkSetup(t *testing.T, action, image string) (policy, manifest string) {
	t.Helper()
	dir := t.TempDir()
	policy = filepath.Join(dir, "constraint.yaml")
	manifest = filepath.Join(dir, "app.yaml")
	if err := os.WriteFile(policy, []byte(strings.ReplaceAll(checkConstraint, "%ACTION%", action)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(manifest, []byte(strings.ReplaceAll(checkDeployment, "%IMAGE%", image)), 0o644); err != nil {
		t.Fatal(err)
	}
	return policy, manifest
}

func runCheckCLI(stdin string, args ...string) (string, string, int) {
	var stdout, stderr strings.Builder
	err := checkCmd{stdin: strings.NewReader(stdin)}.run(context.Background(), args, func(string) string { return "" }, &stdout, &stderr)
	code := 0
	if err != nil {
		code = exitCode(err)
		if !errors.Is(err, errSilent) {
			stderr.WriteString(err.Error())
		}
	}
	return stdout.String(), stderr.String(), code
}

func TestCheckExitCodes(t *testing.T) {
	const templates = "../../../templates/base.yaml"
	for _, tc := range []struct {
		name, action, image string
		extra               []string
		code                int
		want                string
	}{
		{"clean", "deny", "registry.example/web:1.0", nil, 0, "1 object(s) checked: 0 deny, 0 warn, 0 dryrun"},
		{"deny", "deny", "registry.example/web:latest", nil, 1, "app.yaml:9:18: deny K8sTrustedImageSource/trusted: Deployment default/web container web: container <web> image <registry.example/web:latest> uses banned tag <latest>"},
		{"warn passes", "warn", "registry.example/web:latest", nil, 0, ": warn K8sTrustedImageSource/trusted"},
		{"warn fails with --fail-on-warn", "warn", "registry.example/web:latest", []string{"--fail-on-warn"}, 1, ": warn K8sTrustedImageSource/trusted"},
		{"dryrun", "dryrun", "registry.example/web:latest", nil, 0, ": dryrun K8sTrustedImageSource/trusted"},
		{"namespace flag", "deny", "registry.example/web:latest", []string{"--namespace", "shop"}, 1, "Deployment shop/web"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pol, app := checkSetup(t, tc.action, tc.image)
			args := append([]string{"-f", app, "--policy", templates, "--policy", pol}, tc.extra...)
			out, errOut, code := runCheckCLI("", args...)
			if code != tc.code || !strings.Contains(out, tc.want) {
				t.Errorf("imagetrust check %v = exit %d, want %d; stdout lacks %q?\n%s\nstderr:\n%s", args, code, tc.code, tc.want, out, errOut)
			}
		})
	}
}

// TestCheckMissingProviderSection: --provider-fixtures without the section of the provider a
// constraint asks reports each object that constraint reviewed as incomplete, naming the
// provider and the directory, and exits 3 (1 with --provider-failure=warn, as a deny would).
func TestCheckMissingProviderSection(t *testing.T) {
	const templates = "../../../templates/verification.yaml"
	dir := t.TempDir()
	pol := filepath.Join(dir, "constraint.yaml")
	app := filepath.Join(dir, "app.yaml")
	fixtures := filepath.Join(dir, "fixtures")
	for f, data := range map[string]string{
		pol: `apiVersion: constraints.gatekeeper.sh/v1beta1
kind: K8sImageSignature
metadata: {name: signed}
spec:
  match:
    kinds: [{apiGroups: [apps], kinds: [Deployment]}]
  parameters:
    authorities: [release]
`,
		app: strings.ReplaceAll(checkDeployment, "%IMAGE%", "registry.example/web:1.0"),
		filepath.Join(fixtures, "verify.yaml"): `apiVersion: test.imagetrust.dev/v1alpha1
kind: ProviderFixtures
providers:
  imagetrust-verify:
    keys:
      registry.example/web:1.0: {value: {signed: true}}
`,
	} {
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want := app + ":9:18: incomplete K8sImageSignature/signed: Deployment default/web container web: no fixture for provider imagetrust-verify-signatures in " + fixtures + "\n"
	for _, tc := range []struct {
		extra []string
		code  int
	}{{nil, 3}, {[]string{"--provider-failure", "warn"}, 1}} {
		args := append([]string{"-f", app, "--policy", templates, "--policy", pol, "--provider-fixtures", fixtures}, tc.extra...)
		out, errOut, code := runCheckCLI("", args...)
		if code != tc.code || !strings.Contains(out, want) || !strings.Contains(out, "0 deny, 0 warn, 0 dryrun, 1 incomplete") ||
			!strings.Contains(errOut, "no fixture for provider imagetrust-verify-signatures in "+fixtures+" (asked for registry.example/web:1.0)") {
			t.Errorf("imagetrust check %v = exit %d, want %d and %q\nstdout:\n%s\nstderr:\n%s", args, code, tc.code, want, out, errOut)
		}
	}
}

func TestCheckStdinAndBadInput(t *testing.T) {
	const templates = "../../../templates/base.yaml"
	pol, _ := checkSetup(t, "deny", "x")
	out, errOut, code := runCheckCLI(strings.ReplaceAll(checkDeployment, "%IMAGE%", "docker.io/library/nginx:latest"), "-f", "-", "--policy", templates, "--policy", pol, "-o", "github")
	if code != 1 || !strings.Contains(out, "::error file=<stdin>,line=9,col=18,") {
		t.Errorf("stdin check = exit %d:\n%s%s", code, out, errOut)
	}
	dir := t.TempDir()
	for _, tc := range []struct{ name, data, want string }{
		{"unparseable.yaml", "apiVersion: apps/v1\nkind: Deployment\nspec: [\n", "unparseable.yaml:3: not valid YAML"},
		{"unknown-kind.yaml", "apiVersion: apps/v1\nkind: Deploymnet\nmetadata: {name: x}\n", `unknown-kind.yaml:2:7: document 1: unknown kind "Deploymnet" in apps/v1`},
		{"not-kubernetes.yaml", "name: build\nsteps: [a, b]\n", "not-kubernetes.yaml:1:1: document 1 is not a Kubernetes object: no apiVersion"},
	} {
		f := filepath.Join(dir, tc.name)
		if err := os.WriteFile(f, []byte(tc.data), 0o644); err != nil {
			t.Fatal(err)
		}
		_, errOut, code := runCheckCLI("", "-f", f, "--policy", templates, "--policy", pol)
		if code != 3 || !strings.Contains(errOut, tc.want) {
			t.Errorf("check %s = exit %d, stderr %q; want exit 3 and %q", tc.name, code, errOut, tc.want)
		}
	}
	// A missing template: the constraint's file and line.
	_, app := checkSetup(t, "deny", "x")
	_, errOut, code = runCheckCLI("", "-f", app, "--policy", "../../../templates/digest.yaml", "--policy", pol)
	if code != 3 || !strings.Contains(errOut, pol+":1:1: constraint K8sTrustedImageSource/trusted: no ConstraintTemplate defines kind K8sTrustedImageSource") {
		t.Errorf("missing template = exit %d, stderr %q", code, errOut)
	}
	// Usage errors are exit 2.
	if _, _, code := runCheckCLI("", "--policy", pol); code != 2 {
		t.Errorf("check without -f = exit %d, want 2", code)
	}
	if _, _, code := runCheckCLI("", "-f", app, "-o", "xml"); code != 2 {
		t.Errorf("check -o xml = exit %d, want 2", code)
	}
}

func TestPinCheckCLI(t *testing.T) {
	in := strings.ReplaceAll(checkDeployment, "%IMAGE%", "registry.example/web:1.0")
	var stdout, stderr strings.Builder
	err := pinCmd{stdin: strings.NewReader(in)}.run(context.Background(), []string{"--check", "-f", "-"}, func(string) string { return "" }, &stdout, &stderr)
	if exitCode(err) != 1 || !strings.Contains(stdout.String(), "<stdin>:9:18: registry.example/web:1.0: not pinned to a digest") {
		t.Errorf("pin --check = %v (exit %d)\n%s%s", err, exitCode(err), stdout.String(), stderr.String())
	}
	pinned := strings.ReplaceAll(checkDeployment, "%IMAGE%", "registry.example/web:1.0@sha256:"+strings.Repeat("a", 64))
	stdout.Reset()
	err = pinCmd{stdin: strings.NewReader(pinned)}.run(context.Background(), []string{"--check", "-f", "-"}, func(string) string { return "" }, &stdout, &stderr)
	if err != nil {
		t.Errorf("pin --check on pinned input = %v", err)
	}
}

// TestCheckKustomize: -k DIR and -f DIR (holding a kustomization.yaml) render in-process; with
// origin annotations the finding is at the image line of the resource file.
func TestCheckKustomize(t *testing.T) {
	const templates = "../../../templates/base.yaml"
	pol, app := checkSetup(t, "deny", "registry.example/web:latest")
	dir := filepath.Dir(app)
	kust := "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: shop\nbuildMetadata: [originAnnotations]\nresources: [app.yaml]\n"
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(kust), 0o644); err != nil {
		t.Fatal(err)
	}
	// The constraint lives elsewhere: the kustomization renders only app.yaml.
	for _, args := range [][]string{{"-k", dir}, {"-f", dir}} {
		out, errOut, code := runCheckCLI("", append(args, "--policy", templates, "--policy", pol)...)
		want := app + ":9:18: deny K8sTrustedImageSource/trusted: Deployment shop/web container web:"
		if code != 1 || !strings.Contains(out, want) || !strings.Contains(out, "1 object(s) checked") {
			t.Errorf("check %v = exit %d, want 1 and %q\n%s\nstderr:\n%s", args, code, want, out, errOut)
		}
	}
	if _, errOut, code := runCheckCLI("", "-k", app, "--policy", templates, "--policy", pol); code != 3 || !strings.Contains(errOut, "not a directory holding a kustomization file") {
		t.Errorf("check -k FILE = exit %d, stderr %q; want 3", code, errOut)
	}
}
