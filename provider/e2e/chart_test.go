package e2e

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/imagetrust/imagetrust/provider/internal/config"
)

// Versions of the tools the chart and rule tests run; the Makefile builds them
// (HELM_VERSION, PROMTOOL_VERSION) and TestChartToolVersions keeps the two in step.
const (
	helmVersion     = "v4.3.2"
	promtoolVersion = "v0.316.0"
)

const (
	chartDir       = repoRoot + "/manifests/helm/imagetrust"
	chartNamespace = "gatekeeper-system"
	// chartTestsEnv, when set (make test-helm), turns a missing tool into a failure.
	chartTestsEnv = "IMAGETRUST_CHART_TESTS"
)

// chartTool returns the binary named by the environment variable env (HELM, KUBECTL). Without
// it the test skips, saying where it runs, unless chartTestsEnv is set.
func chartTool(t *testing.T, env string) string {
	t.Helper()
	p := os.Getenv(env)
	if p == "" {
		if os.Getenv(chartTestsEnv) != "" {
			t.Fatalf("%s is not set; make test-helm sets it to the pinned binary", env)
		}
		t.Skipf("%s is not set: the chart tests run in `make test-helm`", env)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("%s=%s: %v", env, p, err)
	}
	return p
}

// run runs bin with args and returns stdout; stderr is returned in the error.
func run(bin string, args ...string) (string, error) {
	cmd := exec.Command(bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		return stdout.String(), fmt.Errorf("%s %s: %w\n%s", filepath.Base(bin), strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String(), nil
}

// constraintAPIVersions are the --api-versions that stand in for the constraint CRDs Gatekeeper
// creates from templates/, so the seed constraints render with helm template.
func constraintAPIVersions(t *testing.T) []string {
	t.Helper()
	var args []string
	files, err := filepath.Glob(filepath.Join(repoRoot, "templates", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no templates/*.yaml (%v)", err)
	}
	for _, f := range files {
		for _, o := range readDocs(t, f) {
			kind, _, _ := unstructured.NestedString(o.Object, "spec", "crd", "spec", "names", "kind")
			args = append(args, "--api-versions", "constraints.gatekeeper.sh/v1beta1/"+kind)
		}
	}
	return args
}

// fullValues are the arguments that render every optional part (ci/full-values.yaml).
func fullValues(t *testing.T) []string {
	return append([]string{"-f", filepath.Join(chartDir, "ci", "full-values.yaml")}, constraintAPIVersions(t)...)
}

// helmTemplate renders the chart with extra helm template arguments.
func helmTemplate(t *testing.T, helm string, args ...string) []*unstructured.Unstructured {
	t.Helper()
	out, err := run(helm, append([]string{"template", "imagetrust", chartDir, "--namespace", chartNamespace}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	return splitDocs(t, "helm template", []byte(out))
}

func objectKey(o *unstructured.Unstructured) string {
	if ns := o.GetNamespace(); ns != "" {
		return o.GetKind() + " " + ns + "/" + o.GetName()
	}
	return o.GetKind() + " " + o.GetName()
}

// kindCounts lists the rendered objects as "Kind×n", sorted by kind.
func kindCounts(objs []*unstructured.Unstructured) string {
	n := map[string]int{}
	var kinds []string
	for _, o := range objs {
		if n[o.GetKind()] == 0 {
			kinds = append(kinds, o.GetKind())
		}
		n[o.GetKind()]++
	}
	sort.Strings(kinds)
	out := make([]string, len(kinds))
	for i, k := range kinds {
		out[i] = fmt.Sprintf("%s×%d", k, n[k])
	}
	return strings.Join(out, " ")
}

// trustDir is a directory holding release.pub, a real ECDSA public key, standing in for the
// authority keys the full values mount.
func trustDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "release.pub"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestChartToolVersions keeps the versions above in step with the Makefile's.
func TestChartToolVersions(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"HELM_VERSION": helmVersion, "PROMTOOL_VERSION": promtoolVersion} {
		m := regexp.MustCompile(`(?m)^` + name + `\s*:=\s*(\S+)`).FindSubmatch(b)
		if m == nil || string(m[1]) != want {
			t.Errorf("Makefile %s = %q, want %q (provider/e2e/chart_test.go)", name, m, want)
		}
	}
}

// TestChartLint runs helm lint (strict) on the default and the full values.
func TestChartLint(t *testing.T) {
	helm := chartTool(t, "HELM")
	// helm lint has no --api-versions, so the full values are linted without the constraints,
	// whose kinds only exist once Gatekeeper has the templates (TestChartRender renders them).
	full := []string{"-f", filepath.Join(chartDir, "ci", "full-values.yaml"), "--set", "constraints.enabled=false"}
	for name, args := range map[string][]string{"default": nil, "full": full} {
		out, err := run(helm, append([]string{"lint", "--strict", chartDir, "--namespace", chartNamespace}, args...)...)
		if err != nil {
			t.Errorf("helm lint (%s values): %v\n%s", name, err, out)
		}
	}
}

// TestChartRender renders the default and full values and checks the object list.
func TestChartRender(t *testing.T) {
	helm := chartTool(t, "HELM")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"default values", nil,
			"Assign×7 Certificate×1 ConfigMap×1 Deployment×1 Issuer×1 NetworkPolicy×1 PodDisruptionBudget×1 Provider×6 Role×1 RoleBinding×1 Secret×1 Service×1 ServiceAccount×1"},
		{"full values", fullValues(t),
			"Assign×7 ClusterRole×2 ClusterRoleBinding×2 ConfigMap×2 ConstraintTemplate×5 Deployment×1 K8sImageDigest×1 K8sTrustedImageSource×2 NetworkPolicy×1 PodDisruptionBudget×1 PrometheusRule×1 Provider×6 Role×1 RoleBinding×1 Service×1 ServiceAccount×1 ServiceMonitor×1"},
		{"mutation, PDB and NetworkPolicy off, no pull secrets", []string{"--set", "mutation.enabled=false", "--set", "podDisruptionBudget.enabled=false",
			"--set", "networkPolicy.enabled=false", "--set", "registryAuth.pullSecrets=null"},
			"Certificate×1 ConfigMap×1 Deployment×1 Issuer×1 Provider×6 Secret×1 Service×1 ServiceAccount×1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs := helmTemplate(t, helm, tt.args...)
			if got := kindCounts(objs); got != tt.want {
				t.Errorf("helm template (%s) renders\n  %s\nwant\n  %s", tt.name, got, tt.want)
			}
			var keys []string
			for _, o := range objs {
				keys = append(keys, objectKey(o))
			}
			t.Logf("helm template (%s): %d objects: %s", tt.name, len(objs), strings.Join(keys, ", "))
			for _, o := range objs {
				if o.GetKind() == "Provider" {
					if ca, _, _ := unstructured.NestedString(o.Object, "spec", "caBundle"); ca == "" {
						t.Errorf("Provider %s has no caBundle", o.GetName())
					}
				}
			}
			checkChartConfig(t, objs)
		})
	}
}

// checkChartConfig loads the rendered provider configuration with the provider's strict loader
// and checks each Provider's timeout against the provider's deadline for its endpoint.
func checkChartConfig(t *testing.T, objs []*unstructured.Unstructured) {
	t.Helper()
	var cfg *config.Config
	for _, o := range objs {
		if o.GetKind() == "ConfigMap" && o.GetName() == "imagetrust-provider-config" {
			s, _, _ := unstructured.NestedString(o.Object, "data", "config.yaml")
			// The full values mount authority keys at /etc/imagetrust/trust (extraVolumes); the
			// loader reads them, so stand in a real public key there.
			s = strings.ReplaceAll(s, "/etc/imagetrust/trust/", trustDir(t)+"/")
			c, err := config.Parse([]byte(s))
			if err != nil {
				t.Fatalf("config.Parse(rendered ConfigMap config.yaml) = %v, want nil\n%s", err, s)
			}
			cfg = c
		}
	}
	if cfg == nil {
		t.Fatal("no ConfigMap imagetrust-provider-config rendered")
	}
	deadlines := map[string]time.Duration{
		"resolve":           cfg.Endpoints.Resolve.Deadline.D(),
		"mutate":            cfg.Endpoints.Mutate.Deadline.D(),
		"verify":            cfg.Endpoints.Verify.Deadline.D(),
		"verify/signatures": cfg.Endpoints.VerifySignatures.Deadline.D(),
		"scan":              cfg.Scan.Deadline.D(),
		"attestations":      cfg.Attestations.Deadline.D(),
	}
	for _, o := range objs {
		if o.GetKind() != "Provider" {
			continue
		}
		url, _, _ := unstructured.NestedString(o.Object, "spec", "url")
		ep := url[strings.Index(url, "/v1/")+len("/v1/"):]
		d, ok := deadlines[ep]
		if !ok || o.GetName() != "imagetrust-"+strings.ReplaceAll(ep, "/", "-") {
			t.Errorf("Provider %s url %q names no provider endpoint or another one", o.GetName(), url)
			continue
		}
		tv, _, _ := unstructured.NestedFieldNoCopy(o.Object, "spec", "timeout")
		timeout, _ := tv.(float64)
		if d <= 0 || d >= time.Duration(timeout*float64(time.Second)) {
			t.Errorf("Provider %s timeout %vs, provider deadline %v: want 0 < deadline < timeout", o.GetName(), timeout, d)
		}
	}
}

// TestChartValuesSchema checks that values.schema.json and the chart's own checks turn a
// misspelt or wrong value into a failed render that names it.
func TestChartValuesSchema(t *testing.T) {
	helm := chartTool(t, "HELM")
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"unknown top-level key", []string{"--set", "replica=3"}, []string{"replica"}},
		{"misspelt config field", []string{"--set", "config.cache.tll=5m"}, []string{"config/cache", "tll"}},
		{"chart-owned config field", []string{"--set", "config.server.address=:9443"}, []string{"config/server", "address"}},
		{"wrong type", []string{"--set", "config.lookup.workers=many"}, []string{"config/lookup/workers", "integer"}},
		{"bad duration", []string{"--set", "config.cache.ttl=5 minutes"}, []string{"config/cache/ttl"}},
		{"unknown TLS mode", []string{"--set", "tls.mode=selfSigned"}, []string{"tls/mode"}},
		{"digest not sha256", []string{"--set", "image.digest=latest"}, []string{"image/digest"}},
		{"unknown Provider endpoint", []string{"--set", "providers.scna.timeout=3"}, []string{"providers", "scna"}},
		{"enforcement action", []string{"--set", "constraints.enforcementAction=block"}, []string{"constraints/enforcementAction"}},
		{"secret mode without a secret", []string{"--set", "tls.mode=secret"}, []string{"tls.existingSecret is required"}},
		{"secret mode without a CA", []string{"--set", "tls.mode=secret", "--set", "tls.existingSecret=mine"}, []string{"tls.caBundle is required with tls.mode=secret"}},
		{"own issuer without a CA", []string{"--set", "tls.certManager.issuerRef.name=corp"}, []string{"tls.caBundle is required with tls.mode=certManager and a custom tls.certManager.issuerRef"}},
		{"constraints before their kinds exist", []string{"--set", "constraints.enabled=true"}, []string{"install the templates first", "K8sTrustedImageSource"}},
		{"constraint file that does not exist", append([]string{"--set", "constraints.enabled=true", "--set", "constraints.include={base/nope.yaml}"}, constraintAPIVersions(t)...),
			[]string{`"base/nope.yaml" matches no file`}},
		{"template file that does not exist", []string{"--set", "constraintTemplates.enabled=true", "--set", "constraintTemplates.include={nope.yaml}"},
			[]string{"matches no file of templates/", "base.yaml"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := run(helm, append([]string{"template", "imagetrust", chartDir, "--namespace", chartNamespace}, tt.args...)...)
			if err == nil {
				t.Fatalf("helm template %v succeeded, want an error naming %q\n%.300s", tt.args, tt.want, out)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("helm template %v: error does not name %q:\n%v", tt.args, w, err)
				}
			}
		})
	}
}

// TestChartSchemaMatchesConfig checks that the config section of values.schema.json has
// exactly the fields of the provider's configuration (provider/internal/config), minus the
// ones the chart sets itself, so the schema cannot drift from the loader.
func TestChartSchemaMatchesConfig(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(chartDir, "values.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	var schema map[string]any
	if err := json.Unmarshal(b, &schema); err != nil {
		t.Fatalf("values.schema.json: %v", err)
	}
	props := func(s map[string]any) map[string]any {
		p, _ := s["properties"].(map[string]any)
		return p
	}
	cfgSchema, _ := props(schema)["config"].(map[string]any)
	if cfgSchema == nil {
		t.Fatal("values.schema.json has no config property")
	}
	chartOwned := map[string]bool{"server.address": true, "server.metricsAddress": true, "server.tls": true, "auth": true}
	got, want := map[string]bool{}, map[string]bool{}
	var walkSchema func(prefix string, s map[string]any)
	walkSchema = func(prefix string, s map[string]any) {
		if s["type"] == "object" && s["additionalProperties"] != false {
			t.Errorf("values.schema.json config%s: object without additionalProperties: false lets typos through", prefix)
		}
		if items, ok := s["items"].(map[string]any); ok {
			walkSchema(prefix+"[]", items)
		}
		for k, v := range props(s) {
			p := strings.TrimPrefix(prefix+"."+k, ".")
			got[p] = true
			if m, ok := v.(map[string]any); ok {
				walkSchema(p, m)
			}
		}
	}
	walkSchema("", cfgSchema)
	for _, p := range configFieldPaths("", configType()) {
		owned := false
		for o := range chartOwned {
			if p == o || strings.HasPrefix(p, o+".") {
				owned = true
			}
		}
		if !owned {
			want[p] = true
		}
	}
	for p := range want {
		if !got[p] {
			t.Errorf("values.schema.json config has no %s (a field of provider/internal/config)", p)
		}
	}
	for p := range got {
		if !want[p] {
			t.Errorf("values.schema.json config has %s, which provider/internal/config does not know or the chart sets", p)
		}
	}
}

// TestChartMatchesKustomize renders the chart and the kustomize base (with the Provider
// objects of components/providers) for the same certificate and compares the provider's
// objects. Normalised: the chart's extra Helm labels (instance, managed-by, version, chart; and
// part-of on the pod template), its checksum/config pod annotation (the provider reads its configuration only at start, so a
// changed ConfigMap must roll the pods), and the config as parsed YAML (key order and comments
// differ).
func TestChartMatchesKustomize(t *testing.T) {
	helm := chartTool(t, "HELM")
	kubectl := chartTool(t, "KUBECTL")
	const ca = "Y2EtYnVuZGxl" // any base64: both sides get the same
	chart := helmTemplate(t, helm, "--set", "tls.mode=secret", "--set", "tls.existingSecret=imagetrust-provider-tls", "--set", "tls.caBundle="+ca)

	out, err := run(kubectl, "kustomize", filepath.Join(repoRoot, "manifests", "base"))
	if err != nil {
		t.Fatal(err)
	}
	kust := splitDocs(t, "kubectl kustomize manifests/base", []byte(out))
	for _, p := range readDocs(t, filepath.Join(repoRoot, "manifests", "components", "providers", "providers.yaml")) {
		if err := unstructured.SetNestedField(p.Object, ca, "spec", "caBundle"); err != nil {
			t.Fatal(err)
		}
		labels := p.GetLabels()
		labels["app.kubernetes.io/part-of"] = "imagetrust" // the base's kustomization adds it
		p.SetLabels(labels)
		kust = append(kust, p)
	}
	compareObjects(t, "chart (tls.mode=secret)", chart, "kustomize base + providers", kust)

	// With cert-manager: the serving Certificate is the same; the CA differs by design (the
	// chart generates it, so the Providers' caBundle is known at install; the kustomize
	// component has cert-manager create it and needs a second step for the Providers).
	chartCM := helmTemplate(t, helm)
	out, err = run(kubectl, "kustomize", filepath.Join(repoRoot, "manifests"))
	if err != nil {
		t.Fatal(err)
	}
	kustCM := splitDocs(t, "kubectl kustomize manifests", []byte(out))
	pick := func(objs []*unstructured.Unstructured, kind string) []*unstructured.Unstructured {
		var r []*unstructured.Unstructured
		for _, o := range objs {
			if o.GetKind() == kind && o.GetName() == "imagetrust-provider-tls" {
				r = append(r, o)
			}
		}
		return r
	}
	kc := pick(kustCM, "Certificate")
	for _, o := range kc { // the component sits outside the base, whose kustomization adds part-of
		labels := o.GetLabels()
		labels["app.kubernetes.io/part-of"] = "imagetrust"
		o.SetLabels(labels)
	}
	compareObjects(t, "chart Certificate", pick(chartCM, "Certificate"), "kustomize Certificate", kc)
}

// TestChartShipsRepositoryFiles checks that the optional parts come unchanged from the files
// they are made of: templates/*.yaml, constraints/, manifests/monitoring/.
func TestChartShipsRepositoryFiles(t *testing.T) {
	helm := chartTool(t, "HELM")
	objs := helmTemplate(t, helm, fullValues(t)...)
	byKey := map[string]*unstructured.Unstructured{}
	for _, o := range objs {
		byKey[objectKey(o)] = o
	}
	files, _ := filepath.Glob(filepath.Join(repoRoot, "templates", "*.yaml"))
	for _, f := range files {
		for _, want := range readDocs(t, f) {
			got := byKey[objectKey(want)]
			if got == nil {
				t.Errorf("chart does not render %s from %s", objectKey(want), f)
				continue
			}
			for _, d := range diffValues("", normalise(t, got), want.Object) {
				t.Errorf("%s differs from %s: %s", objectKey(want), f, d)
			}
		}
	}
	for _, f := range []string{"base/bank.yaml", "base/edge.yaml", "digest/production.yaml"} {
		for _, want := range readDocs(t, filepath.Join(repoRoot, "constraints", f)) {
			got := byKey[objectKey(want)]
			if got == nil {
				t.Errorf("chart does not render %s from constraints/%s", objectKey(want), f)
				continue
			}
			// constraints.enforcementAction: dryrun in the full values; the chart's labels.
			if err := unstructured.SetNestedField(want.Object, "dryrun", "spec", "enforcementAction"); err != nil {
				t.Fatal(err)
			}
			labels := want.GetLabels()
			if labels == nil {
				labels = map[string]string{}
			}
			labels["app.kubernetes.io/part-of"] = "imagetrust"
			want.SetLabels(labels)
			for _, d := range diffValues("", normalise(t, got), normalise(t, want)) {
				t.Errorf("%s differs from constraints/%s: %s", objectKey(want), f, d)
			}
		}
	}
	rulesFile, err := os.ReadFile(filepath.Join(repoRoot, "manifests", "monitoring", "imagetrust.rules.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var rules map[string]any
	if err := yaml.Unmarshal(rulesFile, &rules); err != nil {
		t.Fatalf("imagetrust.rules.yaml: %v", err)
	}
	pr := byKey["PrometheusRule "+chartNamespace+"/imagetrust-provider"]
	if pr == nil {
		t.Fatal("no PrometheusRule rendered")
	}
	for _, d := range diffValues("groups", pr.Object["spec"].(map[string]any)["groups"], rules["groups"]) {
		t.Errorf("PrometheusRule differs from manifests/monitoring/imagetrust.rules.yaml: %s", d)
	}
	dash, err := os.ReadFile(filepath.Join(repoRoot, "manifests", "monitoring", "imagetrust-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	cm := byKey["ConfigMap "+chartNamespace+"/imagetrust-provider-dashboard"]
	if cm == nil {
		t.Fatal("no dashboard ConfigMap rendered")
	}
	if got, _, _ := unstructured.NestedString(cm.Object, "data", "imagetrust-dashboard.json"); strings.TrimSpace(got) != strings.TrimSpace(string(dash)) {
		t.Error("dashboard ConfigMap differs from manifests/monitoring/imagetrust-dashboard.json")
	}
}
