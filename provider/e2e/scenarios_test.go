//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// bankImage is a compliant reference under the seed's bank registry. The provider in this test
// may contact only the loopback registry, so it is never pinned by the mutators.
const bankImage = "registry.bank.internal/payments/api:1.4.2"

const fakeDigest = "sha256:3b4f2a9c1d8e7f60a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2"

func pod(ns, name string, containers ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: v1\nkind: Pod\nmetadata: {name: %s, namespace: %s}\nspec:\n  containers:\n", name, ns)
	for i, img := range containers {
		fmt.Fprintf(&b, "  - {name: c%d, image: %s}\n", i, jsonString(img))
	}
	return b.String()
}

func deployment(ns, name, image string) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: %[2]s, namespace: %[1]s}
spec:
  selector: {matchLabels: {app: %[2]s}}
  template:
    metadata: {labels: {app: %[2]s}}
    spec:
      containers:
      - {name: app, image: %[3]s}
`, ns, name, jsonString(image))
}

// run runs kubectl for a named scenario and records the command and everything it printed.
func (s *stack) run(scenario, stdin string, args ...string) (string, error) {
	s.t.Helper()
	out, err := s.kubectlCmd(stdin, args...)
	s.logf("scenario %q: $ kubectl %s\n%s", scenario, strings.Join(args, " "), indent(out))
	return out, err
}

func indent(s string) string { return "    " + strings.ReplaceAll(s, "\n", "\n    ") }

// expectDenied creates obj with --dry-run=server and wants a denial by Gatekeeper whose message
// matches every pattern.
func (s *stack) expectDenied(t *testing.T, scenario, obj string, patterns ...string) {
	t.Helper()
	out, err := s.run(scenario, obj, "create", "--dry-run=server", "-f", "-")
	if err == nil {
		t.Errorf("%s: admitted, want denied:\n%s", scenario, out)
		return
	}
	if !strings.Contains(out, `admission webhook "validation.gatekeeper.sh" denied the request`) {
		t.Errorf("%s: failed, but not with a Gatekeeper denial:\n%s", scenario, out)
	}
	for _, p := range patterns {
		if !regexp.MustCompile(p).MatchString(out) {
			t.Errorf("%s: denial does not match %q:\n%s", scenario, p, out)
		}
	}
}

// expectAdmitted creates obj (dry run unless persist) and returns the admitted object's JSON.
func (s *stack) expectAdmitted(t *testing.T, scenario, obj string, persist bool) (string, map[string]any) {
	t.Helper()
	args := []string{"create", "-f", "-", "-o", "json"}
	if !persist {
		args = append(args, "--dry-run=server")
	}
	out, err := s.kubectlCmd(obj, args...)
	warn, js := splitWarnings(out)
	var shown string
	var m map[string]any
	if err == nil {
		if jerr := json.Unmarshal([]byte(js), &m); jerr != nil {
			t.Fatalf("%s: kubectl output is not JSON: %v\n%s", scenario, jerr, out)
		}
		shown = strings.TrimSpace(warn + "\n" + fmt.Sprintf("%s/%s created%s; images: %s",
			strings.ToLower(fmt.Sprint(m["kind"])), nested(m, "metadata", "name"), map[bool]string{true: "", false: " (server dry run)"}[persist],
			strings.Join(images(m), ", ")))
	} else {
		shown = out
	}
	s.logf("scenario %q: $ kubectl %s\n%s", scenario, strings.Join(args, " "), indent(strings.TrimSpace(shown)))
	if err != nil {
		t.Errorf("%s: denied, want admitted:\n%s", scenario, out)
		return warn, nil
	}
	return warn, m
}

// splitWarnings separates kubectl's "Warning: …" lines (stderr, printed after stdout by
// kubectlCmd) from the JSON document.
func splitWarnings(out string) (warnings, doc string) {
	i := strings.LastIndex(out, "\n}")
	if i < 0 || !strings.HasPrefix(strings.TrimSpace(out), "{") {
		return out, ""
	}
	return strings.TrimSpace(out[i+2:]), out[:i+2]
}

func nested(m map[string]any, path ...string) string {
	var cur any = m
	for _, p := range path {
		mm, ok := cur.(map[string]any)
		if !ok {
			return ""
		}
		cur = mm[p]
	}
	s, _ := cur.(string)
	return s
}

// images lists every image in an object (any depth), as "field=image".
func images(v any) []string {
	var out []string
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				if k == "image" {
					if s, ok := e.(string); ok {
						out = append(out, path+"="+s)
						continue
					}
				}
				walk(k, e)
			}
		case []any:
			for _, e := range x {
				walk(path, e)
			}
		}
	}
	walk("", v)
	return out
}

// applyPolicies applies templates/, the example constraints/ (allowing the loopback registry in
// addition to the bank's), and the test's warn and dryrun constraints, then waits until the
// webhook enforces them and the mutators pin tags.
func (s *stack) applyPolicies() {
	t := s.t
	out := s.kubectlOK("", "apply", "--server-side", "-f", filepath.Join(repoRoot, "templates"))
	s.logf("$ kubectl apply --server-side -f templates/\n%s", indent(out))
	s.kubectlOK("", "wait", "--for=jsonpath={.status.created}=true", "constrainttemplates", "--all", "--timeout=120s")

	// The seed's reference policies are applied as they are. The signature examples in
	// constraints/verification name authorities (KMS keys, CI identities) this test cannot
	// sign for and match every namespace, so they are only checked against the API server
	// (dry run); the signature scenario uses its own K8sImageSignature constraint.
	var files []string
	for _, d := range []string{"base", "digest"} {
		fs, err := filepath.Glob(filepath.Join(repoRoot, "constraints", d, "*.yaml"))
		if err != nil || len(fs) == 0 {
			t.Fatalf("no constraints/%s/*.yaml (%v)", d, err)
		}
		files = append(files, fs...)
	}
	if _, err := os.Stat(filepath.Join(repoRoot, "constraints", "verification")); err == nil {
		waitFor(t, 60*time.Second, "dry-run constraints/verification", func() error {
			out, err := s.kubectlCmd("", "apply", "--server-side", "--dry-run=server", "-f", filepath.Join(repoRoot, "constraints", "verification"))
			if err != nil {
				return fmt.Errorf("%w: %s", err, out)
			}
			s.logf("$ kubectl apply --server-side --dry-run=server -f constraints/verification\n%s", indent(out))
			return nil
		}, s.gatekeeper)
	}
	for _, f := range files {
		waitFor(t, 60*time.Second, "apply "+f, func() error {
			out, err := s.kubectlCmd("", "apply", "--server-side", "-f", f)
			if err != nil {
				return fmt.Errorf("%w: %s", err, out)
			}
			s.logf("$ kubectl apply --server-side -f %s\n%s", strings.TrimPrefix(f, repoRoot+"/"), indent(out))
			return nil
		}, s.gatekeeper)
	}
	// The loopback registry stands in for registry.bank.internal: add it to every allow-list.
	out = s.kubectlOK("", "get", "k8strustedimagesource", "-o", "name")
	for _, n := range strings.Fields(out) {
		s.kubectlOK("", "patch", n, "--type=json", "-p",
			fmt.Sprintf(`[{"op":"add","path":"/spec/parameters/allowedRegistries/-","value":%q}]`, s.regHost))
	}
	s.kubectlOK(`apiVersion: constraints.gatekeeper.sh/v1beta1
kind: K8sImageDigest
metadata: {name: e2e-warn-digest}
spec:
  enforcementAction: warn
  match:
    namespaces: [apps]
    kinds: [{apiGroups: [""], kinds: [Pod]}]
---
apiVersion: constraints.gatekeeper.sh/v1beta1
kind: K8sImageDigest
metadata: {name: e2e-dryrun-digest}
spec:
  enforcementAction: dryrun
  match:
    namespaces: [staging]
    kinds: [{apiGroups: [""], kinds: [Pod]}]
---
apiVersion: constraints.gatekeeper.sh/v1beta1
kind: K8sImageSignature
metadata: {name: e2e-signed-by-e2e-key}
spec:
  enforcementAction: deny
  match:
    namespaces: [signed]
    kinds: [{apiGroups: [""], kinds: [Pod]}]
  parameters:
    authorities: [e2e-key]
    failOpen: false
`, "apply", "-f", "-")

	// Enforced once an implicit-registry :latest Pod is denied.
	waitFor(t, 90*time.Second, "constraints enforced", func() error {
		out, err := s.kubectlCmd(pod("apps", "probe", "nginx:latest"), "create", "--dry-run=server", "-f", "-")
		if err == nil {
			return fmt.Errorf("nginx:latest still admitted")
		}
		if !strings.Contains(out, "denied the request") {
			return fmt.Errorf("%s", out)
		}
		return nil
	}, s.gatekeeper)
}

// waitPinning waits until the Assign mutators pin a tag to the registry's digest.
func (s *stack) waitPinning() {
	t := s.t
	want := s.pinned("demo/app:v1")
	waitFor(t, 90*time.Second, "mutators pin tags", func() error {
		out, err := s.kubectlCmd(pod("apps", "probe", s.regHost+"/demo/app:v1"), "create", "--dry-run=server", "-f", "-",
			"-o", "jsonpath={.spec.containers[0].image}")
		if err != nil {
			return fmt.Errorf("%w: %s", err, out)
		}
		if !strings.Contains(out, "@sha256:") {
			return fmt.Errorf("image %s not pinned yet", out)
		}
		if !strings.HasSuffix(out, want[strings.Index(want, "@"):]) {
			t.Fatalf("pinned to %s, want the registry's digest %s", out, want)
		}
		return nil
	}, s.gatekeeper, s.provider)
}

func (s *stack) scenarios(t *testing.T) {
	seed := func(path string) string {
		b, err := os.ReadFile(filepath.Join(repoRoot, path))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	t.Run("denied", func(t *testing.T) {
		s.expectDenied(t, "seed non-compliant Deployment (gator-tests/base/bank/disallowed_seed.yaml)",
			seed("gator-tests/base/bank/disallowed_seed.yaml"),
			`\[bank-trusted-image-source\] container <web> image <nginx:latest> (uses banned tag <latest>|does not name its registry)`)
		s.expectDenied(t, "public registry (Deployment)", deployment("apps", "public-nginx", "docker.io/library/nginx:1.27.1"),
			`\[bank-trusted-image-source\] container <app> image <docker\.io/library/nginx:1\.27\.1> comes from <docker\.io/library/nginx>, which is not an allowed registry`)
		s.expectDenied(t, ":latest tag (Pod)", pod("apps", "latest", "registry.bank.internal/payments/api:latest"),
			`\[bank-trusted-image-source\] container <c0> image <registry\.bank\.internal/payments/api:latest> uses banned tag <latest>`)
		s.expectDenied(t, "implicit registry (Pod)", pod("apps", "implicit", "payments/api:1.4.2"),
			`\[bank-trusted-image-source\] container <c0> image <payments/api:1\.4\.2> does not name its registry`)
		s.expectDenied(t, "seed: missing digest in production (gator-tests/digest/production/disallowed_seed.yaml)",
			seed("gator-tests/digest/production/disallowed_seed.yaml"),
			`\[production-image-digest\] container <api> image <registry\.bank\.internal/payments/api:2\.4\.1> is not pinned by digest`)
	})
	t.Run("admitted", func(t *testing.T) {
		// The provider may contact only the loopback registry: it answers these keys with a
		// per-key "registry not allowed" error, and the mutators (failurePolicy Ignore) leave
		// the images as written.
		_, m := s.expectAdmitted(t, "seed compliant Deployment (gator-tests/base/bank/allowed_seed.yaml)",
			seed("gator-tests/base/bank/allowed_seed.yaml"), false)
		if m != nil {
			s.wantImages(t, "Deployment", m, "containers", []string{"registry.bank.internal/payments/api:2.4.1",
				"quay.io/redhat-openshift-approved/ubi9/ubi-minimal:9.4"})
		}
		s.expectAdmitted(t, "seed compliant Deployment in production (gator-tests/digest/production/allowed_seed.yaml)",
			seed("gator-tests/digest/production/allowed_seed.yaml"), false)
		s.expectAdmitted(t, "pinned bank image in production (Pod)", pod("production", "pinned", bankImage+"@"+fakeDigest), false)
	})
	t.Run("mutated", func(t *testing.T) {
		// A real create: the stored Pod carries the pinned references.
		obj := fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: pinned-by-mutation, namespace: production}
spec:
  initContainers:
  - {name: init, image: %s}
  containers:
  - {name: app, image: %s}
`, s.regHost+"/demo/init:1.0.0", s.regHost+"/demo/app:v1")
		_, m := s.expectAdmitted(t, "tag-only images in production are pinned, then admitted (Pod)", obj, true)
		if m != nil {
			s.wantImages(t, "Pod", m, "initContainers", []string{s.pinned("demo/init:1.0.0")})
			s.wantImages(t, "Pod", m, "containers", []string{s.pinned("demo/app:v1")})
		}
		_, m = s.expectAdmitted(t, "tag-only image in a Deployment is pinned", deployment("apps", "web", s.regHost+"/demo/app:v2"), false)
		if m != nil {
			s.wantImages(t, "Deployment", m, "containers", []string{s.pinned("demo/app:v2")})
		}
		cron := fmt.Sprintf(`apiVersion: batch/v1
kind: CronJob
metadata: {name: nightly, namespace: apps}
spec:
  schedule: "0 3 * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          initContainers:
          - {name: init, image: %s}
          containers:
          - {name: job, image: %s}
`, s.regHost+"/demo/init:1.0.0", s.regHost+"/demo/app:v1")
		_, m = s.expectAdmitted(t, "tag-only images in a CronJob's jobTemplate are pinned", cron, false)
		if m != nil {
			s.wantImages(t, "CronJob", m, "initContainers", []string{s.pinned("demo/init:1.0.0")})
			s.wantImages(t, "CronJob", m, "containers", []string{s.pinned("demo/app:v1")})
		}
		// Ephemeral containers arrive through the pods/ephemeralcontainers subresource.
		ctx := context.Background()
		p, err := s.client.CoreV1().Pods("production").Get(ctx, "pinned-by-mutation", metav1.GetOptions{})
		if err != nil {
			t.Fatalf("get pod: %v", err)
		}
		p.Spec.EphemeralContainers = append(p.Spec.EphemeralContainers, corev1.EphemeralContainer{
			EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "debug", Image: s.regHost + "/demo/debug:1.0.0",
				TerminationMessagePolicy: corev1.TerminationMessageReadFile, ImagePullPolicy: corev1.PullIfNotPresent}})
		p, err = s.client.CoreV1().Pods("production").UpdateEphemeralContainers(ctx, p.Name, p, metav1.UpdateOptions{})
		if err != nil {
			t.Fatalf("UpdateEphemeralContainers: %v", err)
		}
		got := p.Spec.EphemeralContainers[0].Image
		s.logf("scenario %q: client-go UpdateEphemeralContainers(%s/demo/debug:1.0.0) stored image %s",
			"ephemeral container is pinned", s.regHost, got)
		if want := s.pinned("demo/debug:1.0.0"); got != want {
			t.Errorf("ephemeral container image = %s, want %s", got, want)
		}
	})
	t.Run("warn", func(t *testing.T) {
		warn, m := s.expectAdmitted(t, "warn constraint warns and admits", pod("apps", "warned", bankImage), false)
		if m != nil && (!strings.Contains(warn, "Warning:") || !strings.Contains(warn, "e2e-warn-digest")) {
			t.Errorf("warn constraint: kubectl printed no warning from e2e-warn-digest: %q", warn)
		}
	})
	t.Run("signature", func(t *testing.T) {
		_, m := s.expectAdmitted(t, "image signed by authority e2e-key (tag pinned, then verified)", pod("signed", "signed", s.regHost+"/demo/signed:1.0.0"), false)
		if m != nil {
			s.wantImages(t, "Pod", m, "containers", []string{s.pinned("demo/signed:1.0.0")})
		}
		s.expectDenied(t, "unsigned image", pod("signed", "unsigned", s.regHost+"/demo/app:v2"),
			`\[e2e-signed-by-e2e-key\] container <c0> image <`+regexp.QuoteMeta(s.pinned("demo/app:v2"))+`> is not signed by required authority <e2e-key>`)
	})
	t.Run("dryrun", func(t *testing.T) {
		warn, _ := s.expectAdmitted(t, "dryrun constraint admits silently", pod("staging", "dry", bankImage), true)
		if strings.Contains(warn, "e2e-dryrun-digest") {
			t.Errorf("dryrun constraint printed %q, want nothing", warn)
		}
	})
}

// wantImages checks the images of one container list of an admitted object (Pod, workload or
// CronJob).
func (s *stack) wantImages(t *testing.T, kind string, obj map[string]any, field string, want []string) {
	t.Helper()
	spec, _ := obj["spec"].(map[string]any)
	switch kind {
	case "CronJob":
		spec = dig(spec, "jobTemplate", "spec", "template", "spec")
	case "Pod":
	default:
		spec = dig(spec, "template", "spec")
	}
	list, _ := spec[field].([]any)
	var got []string
	for _, c := range list {
		got = append(got, nested(c.(map[string]any), "image"))
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("%s %s images = %v, want %v", kind, field, got, want)
	}
}

func dig(m map[string]any, path ...string) map[string]any {
	for _, p := range path {
		m, _ = m[p].(map[string]any)
	}
	return m
}

// auditScenario: a Pod created in a namespace the webhook ignores before the policies existed is
// reported by audit in the constraints' status.
func (s *stack) auditScenario(t *testing.T) {
	t.Run("audit", func(t *testing.T) {
		start := time.Now()
		var last string
		waitFor(t, 90*time.Second, "audit violations in constraint status", func() error {
			out, err := s.kubectlCmd("", "get", "constraints", "-o", "json")
			if err != nil {
				return fmt.Errorf("%w: %s", err, out)
			}
			var list struct {
				Items []struct {
					Kind     string
					Metadata struct{ Name string }
					Status   struct {
						TotalViolations int `json:"totalViolations"`
						Violations      []struct {
							Kind, Name, Namespace, Message, EnforcementAction string
						}
					}
				}
			}
			if err := json.Unmarshal([]byte(out), &list); err != nil {
				return err
			}
			var b strings.Builder
			found, dry := false, false
			for _, c := range list.Items {
				fmt.Fprintf(&b, "%s/%s totalViolations=%d\n", c.Kind, c.Metadata.Name, c.Status.TotalViolations)
				for _, v := range c.Status.Violations {
					if v.Namespace == "legacy" && v.Name == "old-nginx" {
						found = true
						fmt.Fprintf(&b, "  [%s] %s %s/%s: %s\n", v.EnforcementAction, v.Kind, v.Namespace, v.Name, v.Message)
					}
					if c.Metadata.Name == "e2e-dryrun-digest" && v.Name == "dry" {
						dry = true
						fmt.Fprintf(&b, "  [%s] %s %s/%s: %s\n", v.EnforcementAction, v.Kind, v.Namespace, v.Name, v.Message)
					}
				}
			}
			last = b.String()
			if !found || !dry {
				return fmt.Errorf("legacy/old-nginx reported: %v, staging/dry reported by the dryrun constraint: %v\n%s", found, dry, last)
			}
			return nil
		}, s.gatekeeper)
		s.logf("scenario %q: audit reported after %v:\n%s", "audit", time.Since(start).Round(time.Second), indent(last))
	})
}

// providerDownScenario stops the provider: tag pinning is skipped (Assign failurePolicy Ignore),
// so a tag-only image is admitted unchanged where digests are optional and denied where they are
// required.
func (s *stack) providerDownScenario(t *testing.T) {
	t.Run("provider-down", func(t *testing.T) {
		s.provider.stop()
		s.logf("scenario %q: provider stopped", "provider down")
		img := s.regHost + "/demo/outage:1.0.0"
		_, m := s.expectAdmitted(t, "provider down: tag-only image outside production is admitted unpinned", pod("staging", "outage", img), false)
		if m != nil {
			s.wantImages(t, "Pod", m, "containers", []string{img})
		}
		s.expectDenied(t, "provider down: tag-only image in production is denied (digest required)", pod("production", "outage", img),
			`\[production-image-digest\] container <c0> image <`+regexp.QuoteMeta(img)+`> is not pinned by digest`)
		// Gatekeeper caches provider answers (3 min by default), so the image must be one it
		// never asked about.
		s.expectDenied(t, "provider down: signature cannot be verified, denied (failOpen false)", pod("signed", "outage", img),
			`\[e2e-signed-by-e2e-key\] container <c0> image <`+regexp.QuoteMeta(img)+`> could not be verified: provider <imagetrust-verify-signatures>`)
	})
}
