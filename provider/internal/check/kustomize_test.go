package check

import (
	"errors"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/imagetrust/imagetrust/provider/internal/manifests"
)

const kustBaseDeployment = `# The web tier.
# Its sidecar is retagged by the prod overlay.
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  template:
    spec:
      initContainers:
        - name: migrate
          image: registry.example/migrate:1.0
      containers:
        - name: app
          image: registry.example/web:latest
        - name: proxy
          image: "registry.example/proxy:2.0"
`

const kustBase = `apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - deployment.yaml
`

const kustOverlayPod = `apiVersion: v1
kind: Pod
metadata: {name: debug}
spec:
  containers:
    - name: shell
      image: docker.io/library/busybox:1.36
`

// kustOverlay renders the base into namespace shop with a name prefix, retags the proxy to
// latest and adds a Pod of its own.
const kustOverlay = `apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: shop
namePrefix: prod-
BUILDMETADATA
resources:
  - ../../base
  - pod.yaml
images:
  - name: registry.example/proxy
    newTag: latest
configMapGenerator:
  - name: settings
    literals: [mode=prod]
`

func kustTree(t *testing.T) (root string) {
	t.Helper()
	root = t.TempDir()
	writeFile(t, filepath.Join(root, "base", "deployment.yaml"), kustBaseDeployment)
	writeFile(t, filepath.Join(root, "base", "kustomization.yaml"), kustBase)
	for name, meta := range map[string]string{"prod": "buildMetadata: [originAnnotations]", "plain": ""} {
		writeFile(t, filepath.Join(root, "overlays", name, "kustomization.yaml"), strings.Replace(kustOverlay, "BUILDMETADATA", meta, 1))
		writeFile(t, filepath.Join(root, "overlays", name, "pod.yaml"), kustOverlayPod)
	}
	return root
}

const kustConstraint = `apiVersion: constraints.gatekeeper.sh/v1beta1
kind: K8sTrustedImageSource
metadata: {name: trusted}
spec:
  enforcementAction: deny
  match:
    kinds: [{apiGroups: ["", apps], kinds: [Pod, Deployment]}]
  parameters:
    allowedRegistries: [registry.example]
    bannedTags: [latest]
`

func findingsAt(fs []Finding, root string) []string {
	var out []string
	for _, f := range fs {
		rel, err := filepath.Rel(root, f.File)
		if err != nil {
			rel = f.File
		}
		out = append(out, strings.Join([]string{rel + ":" + strconv.Itoa(f.Line) + ":" + strconv.Itoa(f.Column), f.Object, f.Container, f.Image}, " "))
	}
	return out
}

// TestKustomizeOriginAnnotations: with buildMetadata: [originAnnotations] every finding points
// at the image scalar in the file kustomize read, under the rendered object's name and
// namespace and with the rendered image (the proxy retagged by the overlay's images:).
func TestKustomizeOriginAnnotations(t *testing.T) {
	root := kustTree(t)
	objs, err := LoadInputs(nil, []string{filepath.Join(root, "overlays", "prod")}, nil)
	if err != nil {
		t.Fatalf("LoadInputs -k: %v", err)
	}
	if len(objs) != 3 {
		t.Fatalf("rendered %d objects, want 3 (ConfigMap, Deployment, Pod)", len(objs))
	}
	rep, err := run(t, loadPolicy(t, kustConstraint), objs, nil)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	got := findingsAt(rep.Findings, root)
	want := []string{
		"base/deployment.yaml:16:18 Deployment shop/prod-web app registry.example/web:latest",
		"base/deployment.yaml:18:18 Deployment shop/prod-web proxy registry.example/proxy:latest",
		"overlays/prod/pod.yaml:7:14 Pod shop/prod-debug shell docker.io/library/busybox:1.36",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("findings:\n%s\nwant:\n%s\nall:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"), summary(rep.Findings))
	}
	for _, o := range objs {
		if o.Object.GetKind() == "ConfigMap" && o.File != filepath.Join(root, "overlays", "prod", "kustomization.yaml") {
			t.Errorf("generated ConfigMap placed at %s, want the kustomization", o.File)
		}
	}
}

// TestKustomizeWithoutOrigins: without origin annotations the findings point at the
// kustomization, still naming the rendered object, container and image.
func TestKustomizeWithoutOrigins(t *testing.T) {
	root := kustTree(t)
	dir := filepath.Join(root, "overlays", "plain")
	objs, err := LoadInputs([]string{dir}, nil, nil) // -f DIR holding a kustomization.yaml
	if err != nil {
		t.Fatalf("LoadInputs -f: %v", err)
	}
	rep, err := run(t, loadPolicy(t, kustConstraint), objs, nil)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	got := findingsAt(rep.Findings, root)
	want := []string{
		"overlays/plain/kustomization.yaml:1:1 Deployment shop/prod-web app registry.example/web:latest",
		"overlays/plain/kustomization.yaml:1:1 Deployment shop/prod-web proxy registry.example/proxy:latest",
		"overlays/plain/kustomization.yaml:1:1 Pod shop/prod-debug shell docker.io/library/busybox:1.36",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("findings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// A directory without a kustomization at its top is read file by file, as before.
	plain, err := LoadInputs([]string{filepath.Join(root, "base", "deployment.yaml")}, nil, nil)
	if err != nil || len(plain) != 1 || plain[0].Images[0].Line != 16 {
		t.Errorf("LoadInputs of a plain file = %v, %v", plain, err)
	}
}

func TestKustomizeErrors(t *testing.T) {
	root := kustTree(t)
	broken := filepath.Join(root, "broken")
	writeFile(t, filepath.Join(broken, "kustomization.yaml"), "resources:\n  - missing.yaml\n")
	_, err := LoadInputs(nil, []string{broken}, nil)
	var me *manifests.Error
	if !errors.As(err, &me) || me.File != filepath.Join(broken, "kustomization.yaml") || !strings.Contains(err.Error(), "missing.yaml") {
		t.Errorf("kustomization naming a missing file: err = %v, want a manifests.Error on the kustomization naming missing.yaml", err)
	}
	_, err = LoadInputs(nil, []string{filepath.Join(root, "base", "deployment.yaml")}, nil)
	if !errors.As(err, &me) || !strings.Contains(err.Error(), "not a directory holding a kustomization file") {
		t.Errorf("-k on a file: err = %v", err)
	}
	// A resource that is not a Kubernetes object: kustomize's own error, on the kustomization.
	bad := filepath.Join(root, "bad")
	writeFile(t, filepath.Join(bad, "kustomization.yaml"), "resources:\n  - notes.yaml\n")
	writeFile(t, filepath.Join(bad, "notes.yaml"), "name: build\nsteps: [a, b]\n")
	if _, err := LoadInputs([]string{bad}, nil, nil); !errors.As(err, &me) || me.File != filepath.Join(bad, "kustomization.yaml") {
		t.Errorf("kustomization of a non-object: err = %v, want an error on the kustomization", err)
	}
}
