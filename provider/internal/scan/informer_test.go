package scan

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
)

// operatorObject is a VulnerabilityReport (namespace set) or ClusterVulnerabilityReport about
// host/repo@digest ("" digest: a report that names no digest) with one CRITICAL finding.
func operatorObject(kind, namespace, objName, host, repo, digest, cve string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "aquasecurity.github.io/v1alpha1",
		"kind":       kind,
		"metadata":   map[string]any{"name": objName},
		"report": map[string]any{
			"registry":        map[string]any{"server": host},
			"artifact":        map[string]any{"repository": repo, "tag": "1", "digest": digest},
			"scanner":         map[string]any{"name": "Trivy", "version": "0.60.0"},
			"updateTimestamp": time.Now().Add(-time.Hour).UTC().Format(time.RFC3339),
			"vulnerabilities": []any{map[string]any{"vulnerabilityID": cve, "resource": "zlib",
				"installedVersion": "1.2", "severity": "CRITICAL"}},
		},
	}}
	if namespace != "" {
		u.SetNamespace(namespace)
	}
	return u
}

// waitScan polls the scan service until cond holds for key's value (the informer applies
// events asynchronously); the limit only stops a broken run.
func waitScan(t *testing.T, e *scanEnv, key, what string, cond func(*Value) bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		v := e.scanOne(t, key)
		if cond(v) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: last value %s", what, dump(v))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestWatchOperatorReports drives the informers with client-go's fake dynamic client (list
// and watch) and checks the real index through the real scan service on a loopback registry.
func TestWatchOperatorReports(t *testing.T) {
	e := newScanEnv(t, envOptions{operator: true})
	d := e.push(t, "op/app", "1")
	other := e.push(t, "op/app", "2")
	cd := e.push(t, "op/node-agent", "1")

	listed := operatorObject("VulnerabilityReport", "apps", "replicaset-app", e.host, "op/app", d.DigestStr(), "CVE-2024-1001")
	noDigest := operatorObject("VulnerabilityReport", "apps", "replicaset-nodigest", e.host, "op/app", "", "CVE-2024-1002")
	client := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), map[schema.GroupVersionResource]string{
		VulnerabilityReports:        "VulnerabilityReportList",
		ClusterVulnerabilityReports: "ClusterVulnerabilityReportList",
	}, listed, noDigest)

	var mu sync.Mutex
	var readErrs []string
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	err := WatchOperatorReports(ctx, OperatorWatchOptions{Client: client, Index: e.op, OnError: func(id string, err error) {
		mu.Lock()
		defer mu.Unlock()
		readErrs = append(readErrs, fmt.Sprintf("%s: %v", id, err))
	}})
	if err != nil {
		t.Fatal(err)
	}
	// Listed before the watch started: in the index once WatchOperatorReports returns.
	if n := e.op.Len(); n != 1 {
		t.Errorf("index holds %d reports after the first list, want 1 (the report without a digest is ignored)", n)
	}
	v := e.scanOne(t, d.String())
	if !v.Scanned || v.Source != SourceTrivyOperator || v.Authority != AuthorityTrivyOperator || v.Signed ||
		len(v.Findings) != 1 || v.Findings[0].ID != "CVE-2024-1001" {
		t.Errorf("listed report: %s", dump(v))
	}
	if v := e.scanOne(t, other.String()); v.Scanned {
		t.Errorf("report for %s answered for %s: %s", d.DigestStr(), other.DigestStr(), dump(v))
	}

	vr := client.Resource(VulnerabilityReports).Namespace("apps")
	// The report moves to the other digest (the workload was updated): the old one is unscanned.
	moved := operatorObject("VulnerabilityReport", "apps", "replicaset-app", e.host, "op/app", other.DigestStr(), "CVE-2024-1003")
	if _, err := vr.Update(ctx, moved, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitScan(t, e, other.String(), "updated report", func(v *Value) bool {
		return v.Scanned && len(v.Findings) == 1 && v.Findings[0].ID == "CVE-2024-1003"
	})
	if v := e.scanOne(t, d.String()); v.Scanned {
		t.Errorf("report moved away still answers for %s: %s", d.DigestStr(), dump(v))
	}

	// A cluster-scoped report (node components) is watched as well.
	cr := operatorObject("ClusterVulnerabilityReport", "", "node-agent", e.host, "op/node-agent", cd.DigestStr(), "CVE-2024-1004")
	if _, err := client.Resource(ClusterVulnerabilityReports).Create(ctx, cr, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitScan(t, e, cd.String(), "cluster report", func(v *Value) bool { return v.Scanned && v.Counts.Of("CRITICAL") == 1 })

	// A malformed report is reported and never stands for a scan; a deletion removes one.
	bad := operatorObject("VulnerabilityReport", "apps", "replicaset-bad", e.host, "op/app", d.DigestStr(), "")
	if _, err := vr.Create(ctx, bad, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := vr.Delete(ctx, "replicaset-app", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitScan(t, e, other.String(), "deleted report", func(v *Value) bool { return !v.Scanned })
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		got := strings.Join(readErrs, "\n")
		mu.Unlock()
		if strings.Contains(got, "VulnerabilityReport/apps/replicaset-bad") && strings.Contains(got, "vulnerabilityID") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("malformed report not reported: %q", got)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if v := e.scanOne(t, d.String()); v.Scanned {
		t.Errorf("malformed report counted: %s", dump(v))
	}
	if n := e.op.Len(); n != 1 {
		t.Errorf("index holds %d reports, want 1 (the cluster report)", n)
	}
}

func TestWatchOperatorReportsRequiresClient(t *testing.T) {
	if err := WatchOperatorReports(context.Background(), OperatorWatchOptions{Index: NewOperatorIndex()}); err == nil {
		t.Error("WatchOperatorReports without a client: no error")
	}
}
