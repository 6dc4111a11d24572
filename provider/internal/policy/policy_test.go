package policy

import (
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

const repoRoot = "../../.."

func repoPath(p ...string) string { return filepath.Join(append([]string{repoRoot}, p...)...) }

// newClient loads templates and constraints (paths relative to the repository root).
func newClient(tb testing.TB, files ...string) *Client {
	tb.Helper()
	c, err := New()
	if err != nil {
		tb.Fatal(err)
	}
	paths := make([]string, len(files))
	for i, f := range files {
		paths[i] = repoPath(f)
	}
	if err := c.AddFiles(context.Background(), paths...); err != nil {
		tb.Fatal(err)
	}
	return c
}

type ctr struct{ name, image string }

// workload builds kind in namespace ns running containers (and init/ephemeral ones).
func workload(kind, ns string, containers, initContainers, ephemeral []ctr) *unstructured.Unstructured {
	list := func(cs []ctr) []any {
		out := make([]any, 0, len(cs))
		for _, c := range cs {
			out = append(out, map[string]any{"name": c.name, "image": c.image})
		}
		return out
	}
	spec := map[string]any{"containers": list(containers)}
	if len(initContainers) > 0 {
		spec["initContainers"] = list(initContainers)
	}
	if len(ephemeral) > 0 {
		spec["ephemeralContainers"] = list(ephemeral)
	}
	tmpl := map[string]any{"metadata": map[string]any{"labels": map[string]any{"app": "x"}}, "spec": spec}
	apiVersion := map[string]string{
		"Pod": "v1", "ReplicationController": "v1", "Job": "batch/v1", "CronJob": "batch/v1",
	}[kind]
	if apiVersion == "" {
		apiVersion = "apps/v1"
	}
	obj := map[string]any{
		"apiVersion": apiVersion,
		"kind":       kind,
		"metadata":   map[string]any{"name": strings.ToLower(kind) + "-x", "namespace": ns},
	}
	switch kind {
	case "Pod":
		obj["spec"] = spec
	case "CronJob":
		obj["spec"] = map[string]any{"schedule": "* * * * *", "jobTemplate": map[string]any{"spec": map[string]any{"template": tmpl}}}
	default:
		obj["spec"] = map[string]any{"template": tmpl}
	}
	return &unstructured.Unstructured{Object: obj}
}

func TestBankConstraint(t *testing.T) {
	ctx := context.Background()
	c := newClient(t, "templates/base.yaml", "templates/digest.yaml",
		"constraints/base/bank.yaml", "constraints/digest/production.yaml")
	dig := "@sha256:" + strings.Repeat("a", 64)
	for _, tc := range []struct {
		name string
		obj  *unstructured.Unstructured
		want []string // regexes, one per expected violation, in sorted message order
	}{
		{"compliant", workload("Deployment", "default", []ctr{{"app", "registry.bank.internal/payments/api:2.4.1"}}, nil, nil), nil},
		{"compliant production", workload("Deployment", "production", []ctr{{"app", "quay.io/redhat-openshift-approved/ubi9:9.4" + dig}}, nil, nil), nil},
		{"nginx:latest", workload("Deployment", "default", []ctr{{"web", "nginx:latest"}}, nil, nil), []string{
			`^container <web> image <docker.io/library/nginx:latest> comes from <docker.io/library/nginx>, which is not an allowed registry; allowed: <registry.bank.internal>, <quay.io/redhat-openshift-approved>$`,
			`^container <web> image <docker.io/library/nginx:latest> uses banned tag <latest>; pin a version or digest$`,
			`^container <web> image <nginx:latest> does not name its registry \(the node would pull <docker.io/library/nginx:latest>\); write the registry explicitly, allowed: `,
		}},
		{"host suffix", workload("Pod", "default", []ctr{{"a", "registry.bank.internal.evil.io/app:1.0"}}, nil, nil), []string{`comes from <registry.bank.internal.evil.io/app>, which is not an allowed registry`}},
		{"path boundary", workload("Pod", "default", []ctr{{"a", "quay.io/redhat-openshift-approved-evil/app:1.0"}}, nil, nil), []string{`comes from <quay.io/redhat-openshift-approved-evil/app>`}},
		{"invalid", workload("Pod", "default", []ctr{{"a", "docker://registry.bank.internal/app:1.0"}}, nil, nil), []string{`^container <a> image <docker://registry.bank.internal/app:1.0> is not a valid image reference: a transport or URL prefix`}},
		{"production needs digest", workload("StatefulSet", "production", []ctr{{"db", "registry.bank.internal/db:15.2"}}, nil, nil), []string{`^container <db> image <registry.bank.internal/db:15.2> is not pinned by digest; reference it as <registry.bank.internal/db@sha256:<hex>>`}},
		{"init and ephemeral", workload("Pod", "default", []ctr{{"a", "registry.bank.internal/a:1.0"}}, []ctr{{"init", "registry.bank.internal/a:dev"}}, []ctr{{"debug", "registry.bank.internal/busybox"}}), []string{
			`^container <debug> image <registry.bank.internal/busybox:latest> uses banned tag <latest> \(no tag given\)`,
			`^container <init> image <registry.bank.internal/a:dev> uses banned tag <dev>`,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := c.Review(ctx, tc.obj)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("Review() = %v, want %d violations", got, len(tc.want))
			}
			for i, re := range tc.want {
				if !regexp.MustCompile(re).MatchString(got[i].Msg) {
					t.Errorf("Review()[%d].Msg = %q, want match for %q", i, got[i].Msg, re)
				}
			}
		})
	}
}

func TestEveryWorkloadKind(t *testing.T) {
	ctx := context.Background()
	c := newClient(t, "templates/base.yaml", "constraints/base/bank.yaml")
	for _, kind := range []string{"Pod", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "ReplicationController", "Job", "CronJob"} {
		got, err := c.Review(ctx, workload(kind, "default", []ctr{{"app", "registry.bank.internal/app:stable"}}, nil, nil))
		if err != nil {
			t.Fatal(err)
		}
		want := "container <app> image <registry.bank.internal/app:stable> uses banned tag <stable>; pin a version or digest"
		if len(got) != 1 || got[0].Msg != want {
			t.Errorf("Review(%s) = %v, want [%q]", kind, got, want)
		}
	}
}

// benchPod is a Pod with three containers, one init and one ephemeral container.
func benchPod(ns string) *unstructured.Unstructured {
	dig := "@sha256:" + strings.Repeat("b", 64)
	return workload("Pod", ns,
		[]ctr{{"app", "registry.bank.internal/payments/api:2.4.1" + dig}, {"sidecar", "quay.io/redhat-openshift-approved/envoy:1.29.0"}, {"log", "nginx:latest"}},
		[]ctr{{"init", "registry.bank.internal/tools/migrate:3.1.0"}},
		[]ctr{{"debug", "registry.bank.internal/busybox"}})
}

func benchmarkReview(b *testing.B, files ...string) {
	ctx := context.Background()
	c := newClient(b, files...)
	pod := benchPod("production")
	if _, err := c.Review(ctx, pod); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := c.Review(ctx, pod); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReviewPodBase is Rego evaluation time per 5-container Pod for base.yaml.
func BenchmarkReviewPodBase(b *testing.B) {
	benchmarkReview(b, "templates/base.yaml", "constraints/base/bank.yaml")
}

// BenchmarkReviewPodDigest is Rego evaluation time per 5-container Pod for digest.yaml.
func BenchmarkReviewPodDigest(b *testing.B) {
	benchmarkReview(b, "templates/digest.yaml", "constraints/digest/production.yaml")
}

func ExampleClient_Review() {
	ctx := context.Background()
	c, err := New()
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := c.AddFiles(ctx, repoPath("templates/base.yaml"), repoPath("constraints/base/bank.yaml")); err != nil {
		fmt.Println(err)
		return
	}
	vs, err := c.Review(ctx, workload("Pod", "default", []ctr{{"app", "registry.bank.internal/app:latest"}}, nil, nil))
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, v := range vs {
		fmt.Println(v.Constraint, v.Msg)
	}
	// Output: K8sTrustedImageSource/bank-trusted-image-source container <app> image <registry.bank.internal/app:latest> uses banned tag <latest>; pin a version or digest
}

// TestEveryInvalidReferenceIsDenied reviews Pods holding every corpus and hostile reference
// through both templates: each reference distribution/reference rejects gets exactly one
// "is not a valid image reference" violation naming its container; valid ones get none.
func TestEveryInvalidReferenceIsDenied(t *testing.T) {
	ctx := context.Background()
	c := newClient(t, "templates/base.yaml", "templates/digest.yaml",
		"constraints/base/bank.yaml", "constraints/digest/production.yaml")
	refs := append(append(readCorpus(t), readCorpusFile(t, secondCorpusFile)...), hostile...)
	const perPod = 100
	var invalid int
	for start := 0; start < len(refs); start += perPod {
		batch := refs[start:min(start+perPod, len(refs))]
		cs := make([]ctr, len(batch))
		for i, s := range batch {
			cs[i] = ctr{fmt.Sprintf("c%d", start+i), s}
		}
		got, err := c.Review(ctx, workload("Pod", "production", cs, nil, nil))
		if err != nil {
			t.Fatal(err)
		}
		perContainer := map[string]map[string]int{} // container -> constraint kind -> count
		for _, v := range got {
			if !strings.Contains(v.Msg, "> is not a valid image reference: ") {
				continue
			}
			name := strings.TrimPrefix(v.Msg, "container <")
			name = name[:strings.Index(name, ">")]
			if perContainer[name] == nil {
				perContainer[name] = map[string]int{}
			}
			perContainer[name][strings.Split(v.Constraint, "/")[0]]++
		}
		for i, s := range batch {
			name := cs[i].name
			if oracle(s).Valid {
				if len(perContainer[name]) != 0 {
					t.Errorf("valid reference %q was reported invalid: %v", s, perContainer[name])
				}
				continue
			}
			invalid++
			for _, kind := range []string{"K8sTrustedImageSource", "K8sImageDigest"} {
				if perContainer[name][kind] != 1 {
					t.Errorf("invalid reference %q: %s reported it %d times, want 1", s, kind, perContainer[name][kind])
				}
			}
		}
	}
	t.Logf("%d references reviewed, %d invalid ones denied by both templates", len(refs), invalid)
}
