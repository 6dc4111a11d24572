//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestE2E brings up etcd, kube-apiserver, Gatekeeper, the provider and a registry on loopback,
// installs manifests/, templates/ and constraints/, and checks admission end to end.
func TestE2E(t *testing.T) {
	dir := t.TempDir()
	s := &stack{t: t, dir: dir, kubectl: os.Getenv("KUBECTL")} // KUBECTL: another kubectl, for debugging
	if s.kubectl == "" {
		s.kubectl = toolPath(t, "kubectl", kubeVersion)
	}
	if p := os.Getenv("E2E_REPORT"); p != "" {
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		s.report = f
		t.Cleanup(func() {
			if err := f.Close(); err != nil {
				t.Errorf("E2E_REPORT: %v", err)
			}
		})
	}
	// Keep the process logs of a failed run.
	t.Cleanup(func() {
		if keep := os.Getenv("E2E_KEEP_LOGS"); keep != "" && t.Failed() {
			_ = os.MkdirAll(keep, 0o755)
			for _, n := range []string{"etcd", "kube-apiserver", "gatekeeper", "imagetrust-provider"} {
				if b, err := os.ReadFile(filepath.Join(dir, n+".log")); err == nil {
					_ = os.WriteFile(filepath.Join(keep, n+".log"), b, 0o644)
				}
			}
		}
	})

	// The provider compiles while the control plane starts.
	built := make(chan error, 1)
	go func() { built <- s.buildProvider() }()

	start := time.Now()
	s.certs = newCerts(t, dir)
	s.startRegistry(sampleImages...)
	s.signingKey = s.signImage("demo/signed:1.0.0")
	s.providerExtra = s.setupScan()
	s.setupAttestations()
	s.startEtcd()
	s.startAPIServer()
	s.mark("etcd + kube-apiserver ready", start)
	s.createNamespaces()
	s.applyGatekeeperCRDs()
	s.mark("Gatekeeper CRDs established", start)
	s.startGatekeeper()
	lat := map[string]latency{}
	lat["no admission webhook"] = s.measure("no admission webhook")
	s.registerWebhooks()
	s.mark("Gatekeeper ready, webhooks registered (stack up)", start)

	static := s.checkManifests()

	lat["webhook, no policies"] = s.measure("webhook, no policies")

	if err := <-built; err != nil {
		t.Fatal(err)
	}
	dogfood := s.startDogfood() // the provider image, signed and attested, while the stack is set up
	pstart := time.Now()
	s.startProvider()
	s.mark("provider ready", pstart)
	s.applyRendered(static, "Provider")
	s.applyPolicies()
	s.mark("templates, constraints, Providers enforced", pstart)
	s.checkChart()
	lat["our templates + constraints"] = s.measure("templates + constraints")
	mstart := time.Now()
	s.applyRendered(static, "Assign")
	s.waitPinning()
	s.mark("Assign mutators pinning", mstart)
	wstart := time.Now()
	s.warmProvider("demo/app:v1", "demo/app:v2", "demo/init:1.0.0", "demo/debug:1.0.0", "demo/signed:1.0.0")
	s.mark("provider answers the scenario images (caches warm)", wstart)

	s.scenarios(t)
	s.scanScenario(t, static)
	s.attestScenario(t, static)
	s.operatorScenario(t)
	s.sameDecision(t)
	s.dogfoodScenario(t, dogfood)

	lat["our templates + constraints + mutators"] = s.measure("policies")
	lat["... + signature verification (K8sImageSignature)"] = s.measurePod("signature", &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "latency", Namespace: "signed"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: s.regHost + "/demo/signed:1.0.0"}}},
	})
	for _, n := range []string{"no admission webhook", "webhook, no policies", "our templates + constraints",
		"our templates + constraints + mutators",
		"... + signature verification (K8sImageSignature)"} {
		l := lat[n]
		s.logf("latency: %-40s n=%d p50=%v p99=%v mean=%v", n, l.n, l.p50, l.p99, l.mean)
	}
	s.logf("latency added by Gatekeeper with our policies over the webhook alone: p50 %+v, p99 %+v",
		lat["our templates + constraints + mutators"].p50-lat["webhook, no policies"].p50,
		lat["our templates + constraints + mutators"].p99-lat["webhook, no policies"].p99)

	s.auditScenario(t)
	s.reportScenario(t)
	s.providerDownScenario(t)
	for _, tm := range s.timings {
		s.logf("timing summary: %-55s %v", tm.What, tm.D.Round(time.Millisecond))
	}
}

// createNamespaces creates the test namespaces before the webhooks exist (Gatekeeper refuses
// the admission.gatekeeper.sh/ignore label on namespaces it does not exempt).
func (s *stack) createNamespaces() {
	s.kubectlOK(`apiVersion: v1
kind: Namespace
metadata: {name: apps}
---
apiVersion: v1
kind: Namespace
metadata: {name: production}
---
apiVersion: v1
kind: Namespace
metadata: {name: staging}
---
apiVersion: v1
kind: Namespace
metadata: {name: payments}
---
apiVersion: v1
kind: Namespace
metadata: {name: signed}
---
apiVersion: v1
kind: Namespace
metadata:
  name: legacy
  labels: {admission.gatekeeper.sh/ignore: "true"}
---
apiVersion: v1
kind: Namespace
metadata:
  name: e2e-pss
  labels:
    admission.gatekeeper.sh/ignore: "true"
    pod-security.kubernetes.io/enforce: restricted
    pod-security.kubernetes.io/warn: restricted
`, "apply", "-f", "-")
	// Pre-existing violation for audit: the webhook never sees this namespace.
	s.kubectlOK(pod("legacy", "old-nginx", "nginx:latest"), "apply", "-f", "-")
}

type latency struct {
	n              int
	p50, p99, mean time.Duration
}

// measure creates the same compliant Pod 400 times with dryRun=All through client-go (the
// apiserver runs admission, webhooks included, and stores nothing) and reports the latency.
func (s *stack) measure(label string) latency {
	return s.measurePod(label, s.compliantPod())
}

func (s *stack) measurePod(label string, pod *corev1.Pod) latency {
	t := s.t
	ctx := context.Background()
	create := func() (time.Duration, error) {
		start := time.Now()
		_, err := s.client.CoreV1().Pods(pod.Namespace).Create(ctx, pod, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		return time.Since(start), err
	}
	for range 20 { // warm connections and caches
		if _, err := create(); err != nil {
			t.Fatalf("latency (%s): dry-run create: %v", label, err)
		}
	}
	const n = 400
	ds := make([]time.Duration, 0, n)
	var sum time.Duration
	for range n {
		d, err := create()
		if err != nil {
			t.Fatalf("latency (%s): dry-run create: %v", label, err)
		}
		ds = append(ds, d)
		sum += d
	}
	slices.Sort(ds)
	return latency{n: n, p50: ds[n/2], p99: ds[n*99/100], mean: sum / n}
}

// compliantPod is admitted by every example constraint, without warnings: images from the
// allowed (loopback) registry, one pinned by digest, one by tag (which the mutators pin).
func (s *stack) compliantPod() *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "latency", Namespace: "payments"},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{
				{Name: "app", Image: s.regHost + "/demo/app:v1"},
				{Name: "sidecar", Image: s.pinned("demo/sidecar:1.0.0")},
			},
		},
	}
}

// pinned returns the loopback reference repo:tag@digest.
func (s *stack) pinned(ref string) string {
	d, ok := s.digests[ref]
	if !ok {
		s.t.Fatalf("no sample image %s", ref)
	}
	return s.regHost + "/" + ref + "@" + d.String()
}

var sampleImages = []string{"demo/app:v1", "demo/app:v2", "demo/sidecar:1.0.0", "demo/init:1.0.0", "demo/debug:1.0.0", "demo/outage:1.0.0", "demo/signed:1.0.0"}

// jsonString quotes s for YAML/JSON.
func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
