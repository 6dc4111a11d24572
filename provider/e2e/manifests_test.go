package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/imagetrust/imagetrust/provider/internal/config"
)

// repoRoot is the repository root as seen from this package's directory.
const repoRoot = "../.."

// readDocs splits a multi-document YAML file into unstructured objects.
func readDocs(t *testing.T, path string) []*unstructured.Unstructured {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return splitDocs(t, path, b)
}

func splitDocs(t *testing.T, name string, b []byte) []*unstructured.Unstructured {
	t.Helper()
	var out []*unstructured.Unstructured
	for i, doc := range strings.Split(string(b), "\n---") {
		if strings.TrimSpace(stripComments(doc)) == "" {
			continue
		}
		m := map[string]any{}
		if err := yaml.UnmarshalStrict([]byte(doc), &m); err != nil {
			t.Fatalf("%s: document %d: %v", name, i, err)
		}
		out = append(out, &unstructured.Unstructured{Object: m})
	}
	return out
}

func stripComments(s string) string {
	var b strings.Builder
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "#") || strings.TrimSpace(l) == "---" {
			continue
		}
		b.WriteString(l)
		b.WriteByte('\n')
	}
	return b.String()
}

// TestManifestConfig checks that the provider configuration shipped in manifests/ is accepted by
// the provider's strict loader, and that every Provider object gives Gatekeeper more time than
// the provider's own deadline for that endpoint.
func TestManifestConfig(t *testing.T) {
	var cm corev1.ConfigMap
	b, err := os.ReadFile(filepath.Join(repoRoot, "manifests/base/configmap.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict(b, &cm); err != nil {
		t.Fatalf("configmap.yaml: %v", err)
	}
	cfg, err := config.Parse([]byte(cm.Data["config.yaml"]))
	if err != nil {
		t.Fatalf("config.Parse(manifests/base/configmap.yaml config.yaml) = %v, want nil", err)
	}
	deadlines := map[string]time.Duration{
		"/v1/resolve":           cfg.Endpoints.Resolve.Deadline.D(),
		"/v1/mutate":            cfg.Endpoints.Mutate.Deadline.D(),
		"/v1/verify":            cfg.Endpoints.Verify.Deadline.D(),
		"/v1/verify/signatures": cfg.Endpoints.VerifySignatures.Deadline.D(),
		"/v1/scan":              cfg.Scan.Deadline.D(),
		"/v1/attestations":      cfg.Attestations.Deadline.D(),
	}
	providers := readDocs(t, filepath.Join(repoRoot, "manifests/components/providers/providers.yaml"))
	if len(providers) != len(deadlines) {
		t.Fatalf("providers.yaml has %d objects, want %d", len(providers), len(deadlines))
	}
	for _, p := range providers {
		url, _, _ := unstructured.NestedString(p.Object, "spec", "url")
		tv, _, _ := unstructured.NestedFieldNoCopy(p.Object, "spec", "timeout")
		timeout, _ := tv.(float64) // sigs.k8s.io/yaml decodes numbers as float64
		var path string
		for suffix := range deadlines {
			if strings.HasSuffix(url, suffix) {
				path = suffix
			}
		}
		if path == "" {
			t.Errorf("Provider %s url %q names no provider endpoint", p.GetName(), url)
			continue
		}
		if want := "imagetrust-" + strings.ReplaceAll(strings.TrimPrefix(path, "/v1/"), "/", "-"); p.GetName() != want {
			t.Errorf("Provider for %s is named %q, want %q", path, p.GetName(), want)
		}
		if d := deadlines[path]; d <= 0 || d >= time.Duration(timeout*float64(time.Second)) {
			t.Errorf("Provider %s timeout %vs, provider deadline %v: want 0 < deadline < timeout", p.GetName(), timeout, d)
		}
	}
	// The static-tls overlay replaces the config; it must load too.
	ov, err := os.ReadFile(filepath.Join(repoRoot, "manifests/overlays/static-tls/kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var k struct {
		Patches []struct{ Patch string } `json:"patches"`
	}
	if err := yaml.Unmarshal(ov, &k); err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, p := range k.Patches {
		var ops []struct {
			Op    string `json:"op"`
			Path  string `json:"path"`
			Value any    `json:"value"`
		}
		if err := yaml.UnmarshalStrict([]byte(p.Patch), &ops); err != nil {
			t.Fatalf("static-tls patch: %v", err)
		}
		for _, op := range ops {
			if op.Op != "replace" || op.Path != "/data/config.yaml" {
				continue
			}
			s, _ := op.Value.(string)
			if _, err := config.Parse([]byte(s)); err != nil {
				t.Errorf("config.Parse(static-tls overlay config) = %v, want nil", err)
			}
			checked++
		}
	}
	if checked != 1 {
		t.Errorf("static-tls overlay: found %d config.yaml replacements, want 1", checked)
	}
}

// TestManifestAssignCoverage checks that the Assign mutators pin every container list of Pods and
// of every pod-template workload.
func TestManifestAssignCoverage(t *testing.T) {
	want := map[string]string{ // kind -> location prefix
		"Pod":                   "spec",
		"Deployment":            "spec.template.spec",
		"StatefulSet":           "spec.template.spec",
		"DaemonSet":             "spec.template.spec",
		"ReplicaSet":            "spec.template.spec",
		"ReplicationController": "spec.template.spec",
		"Job":                   "spec.template.spec",
		"CronJob":               "spec.jobTemplate.spec.template.spec",
	}
	got := map[string]bool{}
	for _, a := range readDocs(t, filepath.Join(repoRoot, "manifests/base/assign.yaml")) {
		if a.GetKind() != "Assign" {
			t.Errorf("assign.yaml: unexpected kind %q", a.GetKind())
			continue
		}
		loc, _, _ := unstructured.NestedString(a.Object, "spec", "location")
		ed, _, _ := unstructured.NestedStringMap(a.Object, "spec", "parameters", "assign", "externalData")
		if ed["provider"] != "imagetrust-mutate" || ed["dataSource"] != "ValueAtLocation" {
			t.Errorf("Assign %s externalData = %v, want provider imagetrust-mutate, dataSource ValueAtLocation", a.GetName(), ed)
		}
		applyTo, _, _ := unstructured.NestedSlice(a.Object, "spec", "applyTo")
		for _, at := range applyTo {
			kinds, _, _ := unstructured.NestedStringSlice(at.(map[string]any), "kinds")
			for _, k := range kinds {
				got[k+" "+loc] = true
			}
		}
	}
	for kind, prefix := range want {
		fields := []string{"containers", "initContainers"}
		if kind == "Pod" {
			fields = append(fields, "ephemeralContainers")
		}
		for _, f := range fields {
			key := kind + " " + prefix + "." + f + "[name:*].image"
			if !got[key] {
				t.Errorf("no Assign mutates %s", key)
			}
		}
	}
}
