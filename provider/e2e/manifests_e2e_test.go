//go:build e2e

package e2e

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/imagetrust/imagetrust/provider/internal/pki"
)

// copyTree copies src into dst (regular files only; symbolic links are left out).
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if d.Type()&fs.ModeSymlink != 0 {
			return nil
		}
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if d.Type()&fs.ModeSymlink != 0 {
			return nil // the Helm chart's links to templates/ and constraints/; kustomize needs none
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
}

// render runs `kubectl kustomize dir` and splits the output into objects.
func (s *stack) render(dir string) []*unstructured.Unstructured {
	s.t.Helper()
	out := s.kubectlOK("", "kustomize", dir)
	return splitDocs(s.t, dir, []byte(out))
}

func toYAML(objs []*unstructured.Unstructured) string {
	var docs []string
	for _, o := range objs {
		b, err := yaml.Marshal(o.Object)
		if err != nil {
			panic(err) // objects came from YAML
		}
		docs = append(docs, string(b))
	}
	return strings.Join(docs, "---\n")
}

// checkManifests renders manifests/ (cert-manager default) and the static-tls overlay (with
// this test's provider certificate), and sends every rendered object through the API server
// with --dry-run=server: schemas, Gatekeeper's own validation of Provider and Assign objects,
// and RBAC all run for real. cert-manager's kinds are skipped: its CRDs are not installed here.
// It returns the static-tls rendering for the test to apply.
func (s *stack) checkManifests() []*unstructured.Unstructured {
	t := s.t
	def := s.render(filepath.Join(repoRoot, "manifests"))
	kinds := map[string]int{}
	var dry []*unstructured.Unstructured
	for _, o := range def {
		kinds[o.GetKind()]++
		if strings.HasPrefix(o.GetAPIVersion(), "cert-manager.io/") {
			continue
		}
		dry = append(dry, o)
	}
	want := map[string]int{"Deployment": 1, "Service": 1, "ConfigMap": 1, "ServiceAccount": 1, "Role": 1,
		"RoleBinding": 1, "NetworkPolicy": 1, "PodDisruptionBudget": 1, "Assign": 7,
		"Certificate": 2, "Issuer": 2}
	for k, n := range want {
		if kinds[k] != n {
			t.Errorf("kubectl kustomize manifests: %d %s objects, want %d", kinds[k], k, n)
		}
	}
	out := s.kubectlOK(toYAML(dry), "apply", "--server-side", "--dry-run=server", "-f", "-")
	s.logf("kubectl apply --server-side --dry-run=server (kubectl kustomize manifests, %d objects without cert-manager's %d):\n%s",
		len(dry), len(def)-len(dry), out)

	// Step 2 of the cert-manager install (manifests/providers) and the overlay without
	// cert-manager, on a copy of manifests/ holding this test's provider CA and certificate.
	tmp := filepath.Join(s.dir, "manifests-copy")
	if err := copyTree(filepath.Join(repoRoot, "manifests"), tmp); err != nil {
		t.Fatal(err)
	}
	ov := filepath.Join(tmp, "overlays", "static-tls")
	copyFile := func(name, to string) {
		b, err := os.ReadFile(filepath.Join(s.certs.providerDir, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(to, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{pki.CertFile, pki.KeyFile, pki.CAFile} {
		copyFile(f, filepath.Join(ov, f))
	}
	copyFile(pki.CAFile, filepath.Join(tmp, "providers", pki.CAFile))
	checkProviders := func(what string, objs []*unstructured.Unstructured) {
		providers := 0
		for _, o := range objs {
			if o.GetKind() == "Secret" && what == "providers" {
				t.Errorf("%s: the CA secret must stay local to kustomize, got Secret %s", what, o.GetName())
			}
			if o.GetKind() != "Provider" {
				continue
			}
			providers++
			ca, _, _ := unstructured.NestedString(o.Object, "spec", "caBundle")
			if strings.Join(strings.Fields(ca), "") != s.certs.provider.CABundle() {
				t.Errorf("%s: Provider %s caBundle is not the provider CA from ca.crt", what, o.GetName())
			}
		}
		if providers != 6 {
			t.Errorf("%s: %d Providers, want 6", what, providers)
		}
	}
	provs := s.render(filepath.Join(tmp, "providers"))
	checkProviders("providers", provs)
	out = s.kubectlOK(toYAML(provs), "apply", "--server-side", "--dry-run=server", "-f", "-")
	s.logf("kubectl apply --server-side --dry-run=server (kubectl kustomize manifests/providers, with ca.crt):\n%s", out)

	static := s.render(ov)
	checkProviders("static-tls overlay", static)
	out = s.kubectlOK(toYAML(static), "apply", "--server-side", "--dry-run=server", "-f", "-")
	s.logf("kubectl apply --server-side --dry-run=server (static-tls overlay, %d objects):\n%s", len(static), out)

	// The provider pod must pass the "restricted" Pod Security Standard: create it (dry run)
	// from the Deployment's template in a namespace that enforces it.
	for _, o := range def {
		if o.GetKind() != "Deployment" {
			continue
		}
		tmpl, _, _ := unstructured.NestedMap(o.Object, "spec", "template")
		pod := &unstructured.Unstructured{Object: tmpl}
		pod.SetAPIVersion("v1")
		pod.SetKind("Pod")
		pod.SetName("imagetrust-provider-pss")
		pod.SetNamespace("e2e-pss")
		out, err := s.kubectlCmd(toYAML([]*unstructured.Unstructured{pod}), "create", "--dry-run=server", "-f", "-")
		s.logf("provider pod in a namespace enforcing pod-security restricted (dry run):\n%s", out)
		if err != nil || strings.Contains(out, "PodSecurity") {
			t.Errorf("provider pod template violates the restricted Pod Security Standard: %v\n%s", err, out)
		}
	}
	return static
}

// applyRendered applies the objects of one kind (Provider or Assign) exactly as the static-tls
// overlay renders them, except that the Providers' URLs point at the loopback provider.
func (s *stack) applyRendered(static []*unstructured.Unstructured, kind string) {
	t := s.t
	var objs []*unstructured.Unstructured
	for _, o := range static {
		if o.GetKind() != kind {
			continue
		}
		switch kind {
		case "Provider":
			o = o.DeepCopy()
			u, _, _ := unstructured.NestedString(o.Object, "spec", "url")
			i := strings.Index(u, "/v1/")
			if i < 0 {
				t.Fatalf("Provider %s url %q has no /v1/ path", o.GetName(), u)
			}
			if err := unstructured.SetNestedField(o.Object, fmt.Sprintf("https://127.0.0.1:%d%s", s.providerPort, u[i:]), "spec", "url"); err != nil {
				t.Fatal(err)
			}
			objs = append(objs, o)
		case "Assign":
			objs = append(objs, o)
		}
	}
	out := s.kubectlOK(toYAML(objs), "apply", "--server-side", "-f", "-")
	s.logf("kubectl apply --server-side (%s objects of the static-tls overlay):\n%s", kind, indent(out))
}
