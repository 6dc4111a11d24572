package report

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func row(con, ns, kind, name, msg, src string) Violation {
	v := Violation{Constraint: con, EnforcementAction: "deny", Version: "v1", Kind: kind, Namespace: ns, Name: name, Message: msg, Source: src}
	v.Container, v.Image = imageOf(msg)
	return v
}

func smallReport() *Report {
	ts := testNow.Add(-20 * time.Second).Format(time.RFC3339)
	pod := []PodStatus{{ID: "gk", Enforced: true, ObservedGeneration: 1}}
	return &Report{
		Evidence: Evidence{GeneratedAt: testNow},
		Constraints: []Constraint{
			{Kind: "K8sImageDigest", Name: "prod", EnforcementAction: "deny", Generation: 1, Audited: true, AuditTimestamp: ts, TotalViolations: 3, Stored: 3, ByPod: pod},
			{Kind: "K8sTrustedImageSource", Name: "bank", EnforcementAction: "deny", Generation: 1, Audited: true, AuditTimestamp: ts, TotalViolations: 2, Stored: 2, ByPod: pod},
		},
		Violations: []Violation{
			row("K8sImageDigest/prod", "b", "Pod", "p1", "container <app> image <nginx:1.25> is not pinned by digest", SourceStatus),
			row("K8sImageDigest/prod", "b", "Pod", "p2", "container <app> image <docker.io/library/nginx:1.25> is not pinned by digest", SourceStatus),
			row("K8sImageDigest/prod", "a", "Deployment", "d1", "container <web> image <quay.io/x/web:2> is not pinned by digest", SourceStatus),
			row("K8sTrustedImageSource/bank", "b", "Pod", "p1", "container <app> image <nginx:1.25> does not name its registry", SourceStatus),
			row("K8sTrustedImageSource/bank", "", "Namespace", "n", "constraint is misconfigured: x", SourceStatus),
		},
	}
}

func TestRollup(t *testing.T) {
	r := smallReport()
	Finish(r, HealthOptions{})
	got := r.Rollups
	wantCon := []Count{{Key: "K8sImageDigest/prod", Violations: 3, Objects: 3, Total: 3}, {Key: "K8sTrustedImageSource/bank", Violations: 2, Objects: 2, Total: 2}}
	if !reflect.DeepEqual(got.ByConstraint, wantCon) {
		t.Errorf("ByConstraint = %+v, want %+v", got.ByConstraint, wantCon)
	}
	wantNS := []Count{{Key: "b", Violations: 3, Objects: 2}, {Key: ClusterScope, Violations: 1, Objects: 1}, {Key: "a", Violations: 1, Objects: 1}}
	if !reflect.DeepEqual(got.ByNamespace, wantNS) {
		t.Errorf("ByNamespace = %+v, want %+v", got.ByNamespace, wantNS)
	}
	// nginx:1.25 and docker.io/library/nginx:1.25 are the same image to the runtime.
	if len(got.ByImage) != 2 {
		t.Fatalf("ByImage = %+v, want 2 images", got.ByImage)
	}
	ng := got.ByImage[0]
	if ng.Image != "docker.io/library/nginx:1.25" || ng.Violations != 3 || ng.Workloads != 2 ||
		!reflect.DeepEqual(ng.Namespaces, []string{"b"}) || !reflect.DeepEqual(ng.Constraints, []string{"K8sImageDigest/prod", "K8sTrustedImageSource/bank"}) {
		t.Errorf("ByImage[0] = %+v, want docker.io/library/nginx:1.25 with 3 violations in 2 workloads of namespace b, both constraints", ng)
	}
	if got.Worst[0].Object != "Pod b/p1" || got.Worst[0].Violations != 2 {
		t.Errorf("Worst[0] = %+v, want Pod b/p1 with 2", got.Worst[0])
	}
	s := r.Summary
	if s.TotalViolations != 5 || s.Listed != 5 || s.FromStatus != 5 || s.Unlisted != 0 || s.Namespaces != 3 || s.Images != 2 || s.Problems != 0 {
		t.Errorf("Summary = %+v", s)
	}
}

func TestSummaryUnlisted(t *testing.T) {
	r := smallReport()
	r.Constraints[0].TotalViolations = 40 // status kept 3 of 40
	Finish(r, HealthOptions{})
	if r.Summary.Unlisted != 37 || r.Summary.TotalViolations != 42 {
		t.Errorf("Summary = %+v, want 37 unlisted of 42", r.Summary)
	}
	if !hasCheck(r.Health, CheckCapped, "K8sImageDigest/prod") {
		t.Errorf("Health = %+v, want %s for the capped constraint", r.Health, CheckCapped)
	}
}

func hasCheck(fs []Finding, check, obj string) bool {
	for _, f := range fs {
		if f.Check == check && f.Object == obj {
			return true
		}
	}
	return false
}

func TestHealth(t *testing.T) {
	r := smallReport()
	r.Constraints[0].AuditTimestamp = testNow.Add(-5 * time.Minute).Format(time.RFC3339)
	r.Constraints[1].ByPod = []PodStatus{{ID: "gk-1", Enforced: false, ObservedGeneration: 1, Errors: []string{"E1: boom"}}}
	r.Constraints[1].Generation = 2
	r.Constraints = append(r.Constraints, Constraint{Kind: "K8sImageDigest", Name: "new"})
	r.Templates = []Template{{Name: "k8simagedigest", Created: false, Errors: []string{"gk: parse: bad rego"}}}
	r.Providers = []Provider{{Name: "imagetrust-verify", Errors: []string{"gk: caBundle invalid"}}}
	fs := Health(r, HealthOptions{AuditInterval: time.Minute})
	for _, w := range []struct{ check, obj, msg string }{
		{CheckStaleAudit, "K8sImageDigest/prod", "5m0s old, more than twice the audit interval 1m0s"},
		{CheckPodError, "K8sTrustedImageSource/bank", "pod gk-1: E1: boom"},
		{CheckNotEnforced, "K8sTrustedImageSource/bank", "enforced: false"},
		{CheckGenerationLag, "K8sTrustedImageSource/bank", "generation 1 of 2"},
		{CheckNotAudited, "K8sImageDigest/new", "no audit"},
		{CheckNoPodStatus, "K8sImageDigest/new", "status.byPod is empty"},
		{CheckTemplate, "ConstraintTemplate/k8simagedigest", "not created"},
		{CheckTemplate, "ConstraintTemplate/k8simagedigest", "bad rego"},
		{CheckProvider, "Provider/imagetrust-verify", "caBundle invalid"},
	} {
		found := false
		for _, f := range fs {
			found = found || (f.Check == w.check && f.Object == w.obj && strings.Contains(f.Message, w.msg))
		}
		if !found {
			t.Errorf("Health: no %s finding for %s containing %q in %+v", w.check, w.obj, w.msg, fs)
		}
	}
}

func TestImageOf(t *testing.T) {
	for _, tc := range []struct{ msg, container, image string }{
		{"container <app> image <nginx> uses banned tag <latest>", "app", "docker.io/library/nginx:latest"},
		{"container <a> image <Bad_Ref:x> is invalid", "a", "Bad_Ref:x"},
		{"constraint is misconfigured: x", "", ""},
		{"something container <app> image <nginx>", "", ""},
	} {
		c, i := imageOf(tc.msg)
		if c != tc.container || i != tc.image {
			t.Errorf("imageOf(%q) = %q, %q, want %q, %q", tc.msg, c, i, tc.container, tc.image)
		}
	}
}

func TestCompare(t *testing.T) {
	old := smallReport()
	Finish(old, HealthOptions{})
	cur := smallReport()
	cur.Violations = cur.Violations[1:] // p1's digest violation fixed
	cur.Violations = append(cur.Violations, row("K8sImageDigest/prod", "c", "Pod", "p9", "container <app> image <nginx:1.26> is not pinned by digest", SourceStatus))
	Compare(cur, old, "old.json")
	d := cur.Diff
	if len(d.New) != 1 || d.New[0].Name != "p9" || len(d.Fixed) != 1 || d.Fixed[0].Name != "p1" || d.Unchanged != 4 || d.Unverifiable != 0 {
		t.Errorf("Diff = new %+v fixed %+v unchanged %d unverifiable %d", d.New, d.Fixed, d.Unchanged, d.Unverifiable)
	}
	// A constraint whose rows no longer cover its total: missing rows are unverifiable.
	cur = smallReport()
	cur.Violations = cur.Violations[1:]
	cur.Constraints[0].TotalViolations = 30
	Compare(cur, old, "old.json")
	if len(cur.Diff.Fixed) != 0 || cur.Diff.Unverifiable != 1 {
		t.Errorf("capped: fixed %+v unverifiable %d, want none fixed and 1 unverifiable", cur.Diff.Fixed, cur.Diff.Unverifiable)
	}
}
