package report

import (
	"fmt"
	"time"
)

var testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// synthetic builds a report of nCons constraints and nViol status rows spread over 40
// namespaces and 200 images, with every constraint capped at 20 stored rows... except that all
// rows are kept, as --complete would list them.
func synthetic(nCons, nViol int) *Report {
	r := &Report{Evidence: Evidence{GeneratedAt: testNow, Cluster: "bench", Context: "bench", Server: "https://127.0.0.1:6443",
		KubernetesVersion: "v1.36.3", GatekeeperVersion: "v3.23.1", AuditInterval: "1m0s", Complete: true}}
	for i := range nCons {
		kind := []string{"K8sImageDigest", "K8sTrustedImageSource", "K8sImageSignature"}[i%3]
		r.Constraints = append(r.Constraints, Constraint{Kind: kind, Name: fmt.Sprintf("c%03d", i), EnforcementAction: "deny",
			Generation: 1, Audited: true, AuditTimestamp: testNow.Add(-30 * time.Second).Format(time.RFC3339),
			ByPod: []PodStatus{{ID: "gatekeeper-audit", Enforced: true, ObservedGeneration: 1}}})
	}
	for i := range nViol {
		c := &r.Constraints[i%nCons]
		img := fmt.Sprintf("registry.example/team%d/app%d:1.%d", i%7, i%200, i%3)
		src := SourceStatus
		if c.Stored >= 20 {
			src = SourceReevaluated
			c.Reevaluated++
		} else {
			c.Stored++
		}
		c.TotalViolations++
		c.Completed = true
		v := Violation{Constraint: c.ID(), EnforcementAction: "deny", Version: "v1", Kind: "Pod",
			Namespace: fmt.Sprintf("ns-%02d", i%40), Name: fmt.Sprintf("pod-%05d", i), Container: "app",
			Message: fmt.Sprintf("container <app> image <%s> is not pinned by digest; reference it as <%s@sha256:<hex>>", img, img), Source: src}
		_, v.Image = imageOf(v.Message)
		r.Violations = append(r.Violations, v)
	}
	return r
}
