//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/imagetrust/imagetrust/provider/internal/check"
	"github.com/imagetrust/imagetrust/provider/internal/manifests"
	"github.com/imagetrust/imagetrust/provider/internal/pki"
)

// sameDecision runs one set of objects through admission (kubectl create --dry-run=server: the
// API server calls Gatekeeper's webhook, which calls the provider) and through `imagetrust
// check` (the templates of templates/, the constraints as the cluster holds them, the
// namespaces as the cluster holds them, the same running provider over mTLS with Gatekeeper's
// client certificate), and wants the same violations: constraint, object, message (which names
// the container and image). Every template in templates/ must be exercised.
//
// The objects only use references the Assign mutators leave as written (already pinned, or not
// resolvable by the provider), so admission validates what check reads.
func (s *stack) sameDecision(t *testing.T) {
	start := time.Now()
	missing := s.regHost + "/demo/missing:1.0.0" // no such tag: the mutator cannot pin it
	objs := []string{
		pod("production", "same-pinned", s.pinned("demo/app:v1")),
		pod("production", "same-docker-hub", "nginx:latest"),
		deployment("production", "same-deploy", "docker.io/library/redis:7"),
		pod("apps", "same-missing-tag", missing),
		pod("apps", "same-mixed", s.pinned("demo/sidecar:1.0.0"), "busybox"),
		pod("signed", "same-signed", s.pinned("demo/signed:1.0.0")),
		pod("signed", "same-unsigned", s.pinned("demo/app:v1")),
		pod("staging", "same-staging", missing),
		pod("vulns", "same-vulnerable", s.pinned(scanVulnerable)), // scan_e2e_test.go's constraints
		pod("attested", "same-forked", s.pinned(attestForked)),    // attest_e2e_test.go's constraint
	}

	// Admission.
	type violation struct{ object, constraint, action, msg string }
	var admitted []violation
	bracket := regexp.MustCompile(`^\[([^\]]+)\] (.*)$`)
	for _, obj := range objs {
		u, err := manifests.Parse(manifests.Source{Name: "obj.yaml", Data: []byte(obj)})
		if err != nil || len(u) != 1 {
			t.Fatalf("sample object: %v", err)
		}
		ref := u[0].Ref()
		out, err := s.kubectlCmd(obj, "create", "--dry-run=server", "-f", "-")
		s.logf("same decision: $ kubectl create --dry-run=server (%s)\n%s", ref, indent(strings.TrimSpace(out)))
		for _, line := range strings.Split(out, "\n") {
			line = strings.TrimSpace(line)
			action := "deny"
			if w, ok := strings.CutPrefix(line, "Warning: "); ok {
				line, action = w, "warn"
			} else if i := strings.Index(line, "denied the request: "); i >= 0 {
				line = line[i+len("denied the request: "):]
			}
			if m := bracket.FindStringSubmatch(line); m != nil {
				admitted = append(admitted, violation{ref, m[1], action, m[2]})
			}
		}
		if err != nil && !strings.Contains(out, "denied the request") {
			t.Fatalf("same decision: %s failed without a Gatekeeper denial:\n%s", ref, out)
		}
	}

	// imagetrust check: policy and namespaces as the cluster holds them.
	dir := t.TempDir()
	write := func(name, data string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	constraints := write("constraints.json", specOnly(t, s.kubectlOK("", "get", "constraints", "-o", "json")))
	namespaces := write("namespaces.json", s.kubectlOK("", "get", "namespaces", "-o", "json"))
	objects := write("objects.yaml", strings.Join(objs, "---\n"))
	pol, err := check.LoadPolicy([]string{filepath.Join(repoRoot, "templates"), constraints})
	if err != nil {
		t.Fatalf("same decision: LoadPolicy: %v", err)
	}
	srcs, err := manifests.Collect([]string{namespaces, objects}, nil)
	if err != nil {
		t.Fatal(err)
	}
	in, err := manifests.ParseAll(srcs)
	if err != nil {
		t.Fatal(err)
	}
	c := s.certs
	prov, err := check.URLProviders(fmt.Sprintf("https://127.0.0.1:%d", s.providerPort), check.ClientTLS{
		CertFile: filepath.Join(c.gatekeeperDir, pki.CertFile), KeyFile: filepath.Join(c.gatekeeperDir, pki.KeyFile),
		CAFile: filepath.Join(c.providerDir, pki.CAFile),
	}, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = prov.Close() }()
	rep, err := check.Run(context.Background(), check.Options{Policy: pol, Objects: in, Providers: prov})
	if err != nil {
		t.Fatalf("same decision: imagetrust check: %v", err)
	}
	var checked []violation
	for _, f := range rep.Findings {
		if f.Action == check.ActionDryRun {
			continue // admission does not show dryrun violations
		}
		_, name, _ := strings.Cut(f.Constraint, "/")
		checked = append(checked, violation{f.Object, name, f.Action, f.Message})
	}

	render := func(vs []violation) []string {
		out := make([]string, 0, len(vs))
		for _, v := range vs {
			out = append(out, fmt.Sprintf("%s | %s | %s | %s", v.object, v.action, v.constraint, v.msg))
		}
		slices.Sort(out)
		return out
	}
	a, b := render(admitted), render(checked)
	s.logf("same decision: %d violations at admission, %d from imagetrust check (%d objects, %d provider calls, %v)",
		len(a), len(b), len(objs), prov.Requests(), time.Since(start).Round(time.Millisecond))
	if !slices.Equal(a, b) {
		t.Errorf("same decision: admission and imagetrust check disagree\nadmission:\n  %s\ncheck:\n  %s",
			strings.Join(a, "\n  "), strings.Join(b, "\n  "))
	}
	// Every template must have spoken.
	kinds := map[string]bool{}
	for _, f := range rep.Findings {
		k, _, _ := strings.Cut(f.Constraint, "/")
		kinds[k] = true
	}
	for _, tm := range pol.Templates {
		k, _, _ := unstructuredKind(tm)
		if !kinds[k] {
			t.Errorf("same decision: no violation of template %s (%s): the objects do not exercise it", tm.Object.GetName(), k)
		}
	}
}

// specOnly keeps what a user writes of each object of a kubectl List (apiVersion, kind, name,
// labels, annotations, spec): the constraints as applied, without status.
func specOnly(t *testing.T, list string) string {
	t.Helper()
	var l struct {
		Items []map[string]any `json:"items"`
	}
	if err := json.Unmarshal([]byte(list), &l); err != nil {
		t.Fatalf("kubectl get -o json: %v", err)
	}
	items := make([]map[string]any, 0, len(l.Items))
	for _, it := range l.Items {
		md, _ := it["metadata"].(map[string]any)
		meta := map[string]any{"name": md["name"]}
		for _, k := range []string{"labels", "annotations"} {
			if v, ok := md[k].(map[string]any); ok {
				delete(v, "kubectl.kubernetes.io/last-applied-configuration")
				meta[k] = v
			}
		}
		items = append(items, map[string]any{"apiVersion": it["apiVersion"], "kind": it["kind"], "spec": it["spec"], "metadata": meta})
	}
	b, err := json.Marshal(map[string]any{"apiVersion": "v1", "kind": "List", "items": items})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func unstructuredKind(o manifests.Object) (string, bool, error) {
	spec, _ := o.Object.Object["spec"].(map[string]any)
	crd, _ := spec["crd"].(map[string]any)
	cs, _ := crd["spec"].(map[string]any)
	names, _ := cs["names"].(map[string]any)
	k, ok := names["kind"].(string)
	return k, ok, nil
}
