package e2e

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// trivyReportObjects are the RBAC objects of the Trivy Operator source: the ClusterRoles and
// bindings that name them.
func trivyReportObjects(objs []*unstructured.Unstructured) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, o := range objs {
		switch o.GetKind() {
		case "ClusterRole", "ClusterRoleBinding", "RoleBinding":
			if strings.Contains(o.GetName(), "-trivy-") {
				out = append(out, o)
			}
		}
	}
	return out
}

// grants lists "verb resource" for every rule of a ClusterRole, sorted.
func grants(t *testing.T, o *unstructured.Unstructured) []string {
	t.Helper()
	rules, _, _ := unstructured.NestedSlice(o.Object, "rules")
	var out []string
	for _, r := range rules {
		m := r.(map[string]any)
		for _, g := range m["apiGroups"].([]any) {
			for _, res := range m["resources"].([]any) {
				for _, v := range m["verbs"].([]any) {
					out = append(out, g.(string)+"/"+res.(string)+" "+v.(string))
				}
			}
		}
	}
	slices.Sort(out)
	return out
}

// TestChartTrivyOperatorRBAC: config.scan.trivyOperator.enabled gives the provider's
// ServiceAccount get, list and watch on VulnerabilityReports (every namespace, or one
// RoleBinding per listed namespace) and ClusterVulnerabilityReports, and nothing else; off,
// no such object is rendered. The kustomize component components/trivy-operator renders the
// same objects as the chart's cluster-wide form.
func TestChartTrivyOperatorRBAC(t *testing.T) {
	helm := chartTool(t, "HELM")
	if got := trivyReportObjects(helmTemplate(t, helm)); len(got) != 0 {
		t.Errorf("default values render %d Trivy Operator RBAC objects, want none", len(got))
	}

	all := trivyReportObjects(helmTemplate(t, helm, "--set", "config.scan.trivyOperator.enabled=true"))
	want := map[string][]string{
		"imagetrust-provider-trivy-reports":         {"aquasecurity.github.io/vulnerabilityreports get", "aquasecurity.github.io/vulnerabilityreports list", "aquasecurity.github.io/vulnerabilityreports watch"},
		"imagetrust-provider-trivy-cluster-reports": {"aquasecurity.github.io/clustervulnerabilityreports get", "aquasecurity.github.io/clustervulnerabilityreports list", "aquasecurity.github.io/clustervulnerabilityreports watch"},
	}
	var keys []string
	for _, o := range all {
		keys = append(keys, objectKey(o))
		switch o.GetKind() {
		case "ClusterRole":
			if g := grants(t, o); !slices.Equal(g, want[o.GetName()]) {
				t.Errorf("ClusterRole %s grants %v, want %v", o.GetName(), g, want[o.GetName()])
			}
		default:
			checkBinding(t, o, o.GetName())
		}
	}
	slices.Sort(keys)
	wantKeys := []string{
		"ClusterRole imagetrust-provider-trivy-cluster-reports", "ClusterRole imagetrust-provider-trivy-reports",
		"ClusterRoleBinding imagetrust-provider-trivy-cluster-reports", "ClusterRoleBinding imagetrust-provider-trivy-reports",
	}
	if !slices.Equal(keys, wantKeys) {
		t.Errorf("trivyOperator.enabled renders %v, want %v", keys, wantKeys)
	}

	ns := trivyReportObjects(helmTemplate(t, helm, "--set", "config.scan.trivyOperator.enabled=true",
		"--set", "config.scan.trivyOperator.namespaces={apps,payments}"))
	keys = keys[:0]
	for _, o := range ns {
		keys = append(keys, objectKey(o))
		if o.GetKind() != "ClusterRole" {
			checkBinding(t, o, o.GetName())
		}
	}
	slices.Sort(keys)
	wantKeys = []string{
		"ClusterRole imagetrust-provider-trivy-cluster-reports", "ClusterRole imagetrust-provider-trivy-reports",
		"ClusterRoleBinding imagetrust-provider-trivy-cluster-reports",
		"RoleBinding apps/imagetrust-provider-trivy-reports", "RoleBinding payments/imagetrust-provider-trivy-reports",
	}
	if !slices.Equal(keys, wantKeys) {
		t.Errorf("trivyOperator.namespaces [apps, payments] renders %v, want %v", keys, wantKeys)
	}

	comp := readDocs(t, filepath.Join(repoRoot, "manifests", "components", "trivy-operator", "rbac.yaml"))
	compareObjects(t, "chart (trivyOperator.enabled)", all, "components/trivy-operator", comp)
}

// checkBinding checks that a binding gives the provider's ServiceAccount the ClusterRole role.
func checkBinding(t *testing.T, o *unstructured.Unstructured, role string) {
	t.Helper()
	kind, _, _ := unstructured.NestedString(o.Object, "roleRef", "kind")
	name, _, _ := unstructured.NestedString(o.Object, "roleRef", "name")
	if kind != "ClusterRole" || name != role {
		t.Errorf("%s binds %s %s, want ClusterRole %s", objectKey(o), kind, name, role)
	}
	subjects, _, _ := unstructured.NestedSlice(o.Object, "subjects")
	if len(subjects) != 1 {
		t.Fatalf("%s has %d subjects, want the provider's ServiceAccount only", objectKey(o), len(subjects))
	}
	s := subjects[0].(map[string]any)
	if s["kind"] != "ServiceAccount" || s["name"] != "imagetrust-provider" || s["namespace"] != chartNamespace {
		t.Errorf("%s subject %v, want ServiceAccount %s/imagetrust-provider", objectKey(o), s, chartNamespace)
	}
}
