package report

import (
	"fmt"
	"io"
	"sort"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/yaml"
)

// Flavour is a PolicyReport API: OpenReports or its predecessor wgpolicyk8s.io.
type Flavour struct {
	Group, Version       string
	Kind, ClusterKind    string
	Resource, ClusterRes string
	TopLevelSource       bool // the API has a report-level "source" field
}

// The two PolicyReport APIs Policy Reporter reads.
var (
	OpenReports = Flavour{Group: "openreports.io", Version: "v1alpha1", Kind: "Report", ClusterKind: "ClusterReport",
		Resource: "reports", ClusterRes: "clusterreports", TopLevelSource: true}
	WGPolicy = Flavour{Group: "wgpolicyk8s.io", Version: "v1alpha2", Kind: "PolicyReport", ClusterKind: "ClusterPolicyReport",
		Resource: "policyreports", ClusterRes: "clusterpolicyreports"}
)

// GVR returns the namespaced (cluster false) or cluster-scoped resource.
func (f Flavour) GVR(cluster bool) schema.GroupVersionResource {
	if cluster {
		return schema.GroupVersionResource{Group: f.Group, Version: f.Version, Resource: f.ClusterRes}
	}
	return schema.GroupVersionResource{Group: f.Group, Version: f.Version, Resource: f.Resource}
}

// Labels and names of the written reports.
const (
	ManagedByLabel = "app.kubernetes.io/managed-by"
	ManagedBy      = "imagetrust-report"
	ReportName     = "imagetrust-audit"
	// ReportSource is the results' source.
	ReportSource = "imagetrust"
	// maxResultsPerReport keeps each object far below etcd's object size limit.
	maxResultsPerReport = 1000
)

// PolicyReports renders the violations as one report per namespace (split every 1,000
// results: imagetrust-audit, imagetrust-audit-2, ...) and one cluster report for
// cluster-scoped objects.
func PolicyReports(r *Report, f Flavour) ([]*unstructured.Unstructured, error) {
	byNS := map[string][]any{}
	counts := map[string]map[string]int64{}
	audits := map[string]string{}
	for _, c := range r.Constraints {
		audits[c.ID()] = c.AuditTimestamp
	}
	for _, v := range r.Violations {
		res, sev := resultOf(v.EnforcementAction)
		ts := r.Evidence.GeneratedAt
		if t, err := time.Parse(time.RFC3339, audits[v.Constraint]); err == nil && v.Source == SourceStatus {
			ts = t
		}
		props := map[string]any{"enforcementAction": v.EnforcementAction, "origin": v.Source}
		if v.Container != "" {
			props["container"] = v.Container
		}
		if v.Image != "" {
			props["image"] = v.Image
		}
		ref := map[string]any{"apiVersion": schema.GroupVersion{Group: v.Group, Version: v.Version}.String(), "kind": v.Kind, "name": v.Name}
		if v.Namespace != "" {
			ref["namespace"] = v.Namespace
		}
		result := map[string]any{
			"source": ReportSource, "policy": v.Constraint, "rule": kindOf(v.Constraint), "category": "image policy",
			"result": res, "severity": sev, "scored": true, "message": v.Message,
			"timestamp":  map[string]any{"seconds": ts.Unix(), "nanos": int64(0)},
			"resources":  []any{ref},
			"properties": props,
		}
		byNS[v.Namespace] = append(byNS[v.Namespace], result)
		if counts[v.Namespace] == nil {
			counts[v.Namespace] = map[string]int64{}
		}
		counts[v.Namespace][res]++
	}
	var out []*unstructured.Unstructured
	for _, ns := range sortedKeys(byNS) {
		results := byNS[ns]
		for part := 0; part*maxResultsPerReport < len(results); part++ {
			chunk := results[part*maxResultsPerReport : min(len(results), (part+1)*maxResultsPerReport)]
			name := ReportName
			if part > 0 {
				name = fmt.Sprintf("%s-%d", ReportName, part+1)
			}
			out = append(out, newReport(f, ns, name, chunk, r))
		}
	}
	return out, nil
}

func newReport(f Flavour, ns, name string, results []any, r *Report) *unstructured.Unstructured {
	kind := f.Kind
	if ns == "" {
		kind = f.ClusterKind
	}
	summary := map[string]any{"pass": int64(0), "fail": int64(0), "warn": int64(0), "error": int64(0), "skip": int64(0)}
	for _, ri := range results {
		res := ri.(map[string]any)["result"].(string)
		summary[res] = summary[res].(int64) + 1
	}
	meta := map[string]any{
		"name":   name,
		"labels": map[string]any{ManagedByLabel: ManagedBy},
		"annotations": map[string]any{
			"imagetrust.dev/generated-at": r.Evidence.GeneratedAt.Format(time.RFC3339),
			"imagetrust.dev/complete":     fmt.Sprint(r.Evidence.Complete),
		},
	}
	if ns != "" {
		meta["namespace"] = ns
	}
	obj := map[string]any{
		"apiVersion": schema.GroupVersion{Group: f.Group, Version: f.Version}.String(),
		"kind":       kind,
		"metadata":   meta,
		"summary":    summary,
		"results":    results,
	}
	if f.TopLevelSource {
		obj["source"] = ReportSource
	}
	return &unstructured.Unstructured{Object: obj}
}

// resultOf maps an enforcement action to a PolicyReport result and severity: deny fails,
// warn and dryrun warn (they are reported, not enforced).
func resultOf(action string) (result, severity string) {
	switch action {
	case "warn":
		return "warn", "medium"
	case "dryrun":
		return "warn", "low"
	}
	return "fail", "high"
}

func kindOf(id string) string {
	for i := range len(id) {
		if id[i] == '/' {
			return id[:i]
		}
	}
	return id
}

func writeYAMLStream(w io.Writer, objs []*unstructured.Unstructured) error {
	sort.SliceStable(objs, func(i, j int) bool { return objs[i].GetNamespace() < objs[j].GetNamespace() })
	for i, u := range objs {
		b, err := yaml.Marshal(u.Object)
		if err != nil {
			return err
		}
		if i > 0 {
			if _, err := io.WriteString(w, "---\n"); err != nil {
				return err
			}
		}
		if _, err := w.Write(b); err != nil {
			return err
		}
	}
	return nil
}
