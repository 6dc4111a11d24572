package report

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/imagetrust/imagetrust/provider/internal/policy"
)

// objectList is a fixed set of objects (the cluster's list, as data).
type objectList []*unstructured.Unstructured

func (l objectList) Objects(_ context.Context, gk schema.GroupKind, each func(*unstructured.Unstructured) error) error {
	for _, u := range l {
		if u.GroupVersionKind().GroupKind() == gk {
			if err := each(u); err != nil {
				return err
			}
		}
	}
	return nil
}

func podObj(ns, name, image string) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "Pod",
		"metadata": map[string]any{"name": name, "namespace": ns},
		"spec":     map[string]any{"containers": []any{map[string]any{"name": "app", "image": image}}},
	}}
}

func loadTemplates(t testing.TB, files ...string) []*unstructured.Unstructured {
	t.Helper()
	var out []*unstructured.Unstructured
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join("..", "..", "..", "templates", f))
		if err != nil {
			t.Fatal(err)
		}
		objs, err := policy.DecodeYAML(b)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, objs...)
	}
	return out
}

// digestConstraint is K8sImageDigest over Pods in production and staging, with the status
// Gatekeeper's audit would write: total and the first stored rows.
func digestConstraint(total int64, stored ...Violation) *unstructured.Unstructured {
	vs := make([]any, 0, len(stored))
	for _, v := range stored {
		vs = append(vs, map[string]any{"group": "", "version": "v1", "kind": "Pod", "namespace": v.Namespace, "name": v.Name,
			"message": v.Message, "enforcementAction": "deny"})
	}
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "constraints.gatekeeper.sh/v1beta1", "kind": "K8sImageDigest",
		"metadata": map[string]any{"name": "prod", "generation": int64(1)},
		"spec": map[string]any{"enforcementAction": "deny", "match": map[string]any{
			"kinds":      []any{map[string]any{"apiGroups": []any{""}, "kinds": []any{"Pod"}}},
			"namespaces": []any{"production", "staging"},
		}},
		"status": map[string]any{"auditTimestamp": "2026-03-01T11:59:50Z", "totalViolations": total, "violations": vs,
			"byPod": []any{map[string]any{"id": "gk", "enforced": true, "observedGeneration": int64(1)}}},
	}}
}

func digestMsg(image string) string {
	return fmt.Sprintf("container <app> image <%s> is not pinned by digest", image)
}

func TestCompleteFindsWhatStatusDropped(t *testing.T) {
	ctx := context.Background()
	var objs objectList
	for i := range 5 {
		objs = append(objs, podObj("production", fmt.Sprintf("p%d", i), fmt.Sprintf("registry.example/app:%d", i)))
	}
	objs = append(objs, podObj("staging", "s0", "registry.example/app:s"), podObj("staging", "s1", "registry.example/app:s"),
		podObj("production", "pinned", "registry.example/app@sha256:"+strings.Repeat("a", 64)),
		podObj("other", "o0", "registry.example/app:o"))

	// Two stored rows, as Gatekeeper's audit stores them: the messages the template produces.
	probe, err := NewEvaluator(ctx, &Inputs{Templates: loadTemplates(t, "digest.yaml"), Constraints: []*unstructured.Unstructured{digestConstraint(0)}}, ExternalData{})
	if err != nil {
		t.Fatal(err)
	}
	var storedRows []Violation
	for _, u := range objs[:2] {
		vs, err := probe.Review(ctx, u)
		if err != nil || len(vs) != 1 {
			t.Fatalf("Review(%s) = %v, %v; want one violation", u.GetName(), vs, err)
		}
		storedRows = append(storedRows, Violation{Namespace: u.GetNamespace(), Name: u.GetName(), Message: truncateMessage(vs[0].Msg)})
	}
	stored := func() []Violation { return storedRows }
	for _, tc := range []struct {
		name         string
		total        int64
		objs         objectList
		reevaluated  int
		mismatchPart string
	}{
		{name: "reconciled", total: 7, objs: objs, reevaluated: 5},
		{name: "count differs", total: 9, objs: objs, reevaluated: 5, mismatchPart: "Gatekeeper counted 9 violations at 2026-03-01T11:59:50Z, re-evaluation found 7"},
		{name: "stored object deleted", total: 7, objs: objs[1:], reevaluated: 5, mismatchPart: "1 stored violations were not found again"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			con := digestConstraint(tc.total, stored()...)
			in := &Inputs{Templates: loadTemplates(t, "digest.yaml"), Constraints: []*unstructured.Unstructured{con}}
			c, rows := parseConstraint(con)
			r := &Report{Constraints: []Constraint{c}, Violations: rows}
			ev, err := NewEvaluator(ctx, in, ExternalData{})
			if err != nil {
				t.Fatal(err)
			}
			if err := Complete(ctx, r, CompleteOptions{Reviewer: ev, Objects: tc.objs, Workers: 3}); err != nil {
				t.Fatal(err)
			}
			got := r.Constraints[0]
			if got.Reevaluated != tc.reevaluated || !got.Completed || got.Listed != 2+tc.reevaluated {
				t.Errorf("constraint = %+v, want %d re-evaluated rows, completed", got, tc.reevaluated)
			}
			if (tc.mismatchPart == "") != (got.Mismatch == "") || !strings.Contains(got.Mismatch, tc.mismatchPart) {
				t.Errorf("Mismatch = %q, want %q", got.Mismatch, tc.mismatchPart)
			}
			names := map[string]string{}
			for _, v := range r.Violations {
				names[v.Namespace+"/"+v.Name] = v.Source
			}
			for _, want := range []string{"production/p2", "production/p3", "production/p4", "staging/s0", "staging/s1"} {
				if names[want] != SourceReevaluated {
					t.Errorf("row %s: source %q, want %q (rows %v)", want, names[want], SourceReevaluated, names)
				}
			}
			if names["production/p1"] != SourceStatus {
				t.Errorf("row production/p1: source %q, want %q", names["production/p1"], SourceStatus)
			}
			for _, never := range []string{"production/pinned", "other/o0"} {
				if _, ok := names[never]; ok {
					t.Errorf("row %s listed: pinned or unmatched objects do not violate", never)
				}
			}
			Finish(r, HealthOptions{})
			if hasCheck(r.Health, CheckCapped, "K8sImageDigest/prod") {
				t.Errorf("completed constraint still reported capped: %+v", r.Health)
			}
			if (tc.mismatchPart != "") != hasCheck(r.Health, CheckMismatch, "K8sImageDigest/prod") {
				t.Errorf("Health %+v: count-mismatch finding should be present iff there is a mismatch", r.Health)
			}
		})
	}
}

func TestCompleteSkipsUncappedConstraints(t *testing.T) {
	ctx := context.Background()
	con := digestConstraint(1, Violation{Namespace: "production", Name: "p0", Message: digestMsg("registry.example/app:0")})
	c, rows := parseConstraint(con)
	r := &Report{Constraints: []Constraint{c}, Violations: rows}
	ev, err := NewEvaluator(ctx, &Inputs{Templates: loadTemplates(t, "digest.yaml"), Constraints: []*unstructured.Unstructured{con}}, ExternalData{})
	if err != nil {
		t.Fatal(err)
	}
	objs := objectList{podObj("production", "p0", "registry.example/app:0"), podObj("production", "p9", "registry.example/app:9")}
	if err := Complete(ctx, r, CompleteOptions{Reviewer: ev, Objects: objs}); err != nil {
		t.Fatal(err)
	}
	if len(r.Violations) != 1 || r.Constraints[0].Completed {
		t.Errorf("uncapped constraint re-evaluated: rows %+v, constraint %+v", r.Violations, r.Constraints[0])
	}
}

func decode(y string) ([]*unstructured.Unstructured, error) { return policy.DecodeYAML([]byte(y)) }

func TestParseTemplateRecognisesImagetrust(t *testing.T) {
	for _, u := range loadTemplates(t, "base.yaml", "digest.yaml", "verification.yaml") {
		tm := parseTemplate(u)
		if !tm.Imagetrust || tm.Kind == "" || tm.Version == "" || len(tm.SHA256) != 64 {
			t.Errorf("parseTemplate(%s) = %+v, want an imagetrust template with kind, version and hash", u.GetName(), tm)
		}
	}
	other := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "templates.gatekeeper.sh/v1", "kind": "ConstraintTemplate",
		"metadata": map[string]any{"name": "k8srequiredlabels"},
		"spec":     map[string]any{"targets": []any{map[string]any{"rego": "package k8srequiredlabels", "libs": []any{"package lib.helpers"}}}}}}
	if parseTemplate(other).Imagetrust {
		t.Error("a template without lib.imagetrust is taken for an imagetrust template")
	}
}

func nsObj(name string, labels map[string]any) *unstructured.Unstructured {
	md := map[string]any{"name": name}
	if labels != nil {
		md["labels"] = labels
	}
	return &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": md}}
}

// TestCompleteNamespaceSelector: a constraint selecting namespaces by label is re-evaluated
// with each object's Namespace, as Gatekeeper's audit reviews it: objects in labelled
// namespaces violate, the others do not, and nothing fails for want of the Namespace.
func TestCompleteNamespaceSelector(t *testing.T) {
	ctx := context.Background()
	objs := objectList{
		nsObj("payments", map[string]any{"env": "prod"}), nsObj("orders", map[string]any{"env": "prod"}),
		nsObj("sandbox", map[string]any{"env": "dev"}), nsObj("scratch", nil),
	}
	for _, ns := range []string{"payments", "orders", "sandbox", "scratch"} {
		for i := range 3 {
			objs = append(objs, podObj(ns, fmt.Sprintf("%s-%d", ns, i), fmt.Sprintf("registry.example/%s:%d", ns, i)))
		}
	}
	con := digestConstraint(0)
	con.SetName("prod-namespaces")
	spec := con.Object["spec"].(map[string]any)
	match := spec["match"].(map[string]any)
	delete(match, "namespaces")
	match["namespaceSelector"] = map[string]any{"matchLabels": map[string]any{"env": "prod"}}

	// The stored row, as the audit wrote it, and the total it counted: 6 Pods in env=prod.
	probe, err := NewEvaluator(ctx, &Inputs{Templates: loadTemplates(t, "digest.yaml"), Constraints: []*unstructured.Unstructured{con}}, ExternalData{})
	if err != nil {
		t.Fatal(err)
	}
	// Without the Namespace the frameworks client cannot match and answers with a violation
	// for every namespaced object, in any namespace: what re-evaluation must not do.
	vs, err := probe.Review(ctx, podObj("scratch", "scratch-0", "registry.example/scratch:0"))
	if err != nil || len(vs) != 1 || !strings.Contains(vs[0].Msg, "missing Namespace") {
		t.Fatalf("Review without the Namespace = %v, %v; want the frameworks' missing-Namespace violation", vs, err)
	}
	if err := unstructured.SetNestedField(con.Object, int64(6), "status", "totalViolations"); err != nil {
		t.Fatal(err)
	}
	if err := unstructured.SetNestedSlice(con.Object, []any{map[string]any{"group": "", "version": "v1", "kind": "Pod", "namespace": "orders", "name": "orders-0",
		"message": truncateMessage(digestMsgFull(t, probe, objs, "orders", "orders-0")), "enforcementAction": "deny"}}, "status", "violations"); err != nil {
		t.Fatal(err)
	}

	c, rows := parseConstraint(con)
	r := &Report{Constraints: []Constraint{c}, Violations: rows}
	ev, err := NewEvaluator(ctx, &Inputs{Templates: loadTemplates(t, "digest.yaml"), Constraints: []*unstructured.Unstructured{con}}, ExternalData{})
	if err != nil {
		t.Fatal(err)
	}
	if err := Complete(ctx, r, CompleteOptions{Reviewer: ev, Objects: objs, Workers: 2}); err != nil {
		t.Fatalf("Complete: %v", err)
	}
	got := r.Constraints[0]
	if got.Mismatch != "" || got.Reevaluated != 5 || got.Listed != 6 {
		t.Errorf("constraint after Complete = %+v, want 5 re-evaluated rows, 6 listed, no mismatch", got)
	}
	var names []string
	for _, v := range r.Violations {
		names = append(names, v.Namespace+"/"+v.Name+" "+v.Source)
	}
	sort.Strings(names)
	want := []string{
		"orders/orders-0 status", "orders/orders-1 reevaluated", "orders/orders-2 reevaluated",
		"payments/payments-0 reevaluated", "payments/payments-1 reevaluated", "payments/payments-2 reevaluated",
	}
	if strings.Join(names, "\n") != strings.Join(want, "\n") {
		t.Errorf("rows:\n%s\nwant:\n%s", strings.Join(names, "\n"), strings.Join(want, "\n"))
	}
}

// digestMsgFull is the message the template gives the Pod ns/name in its Namespace.
func digestMsgFull(t *testing.T, ev *policy.Client, objs objectList, ns, name string) string {
	t.Helper()
	var nsU, pod *unstructured.Unstructured
	for _, u := range objs {
		switch {
		case u.GetKind() == "Namespace" && u.GetName() == ns:
			nsU = u
		case u.GetKind() == "Pod" && u.GetNamespace() == ns && u.GetName() == name:
			pod = u
		}
	}
	n := &corev1.Namespace{}
	if err := k8sruntime.DefaultUnstructuredConverter.FromUnstructured(nsU.Object, n); err != nil {
		t.Fatal(err)
	}
	vs, err := ev.ReviewInNamespace(context.Background(), pod, n)
	if err != nil || len(vs) != 1 {
		t.Fatalf("ReviewInNamespace(%s/%s) = %v, %v; want one violation", ns, name, vs, err)
	}
	return vs[0].Msg
}
