package check

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	gatortest "github.com/open-policy-agent/gatekeeper/v3/pkg/gator/test"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/imagetrust/imagetrust/provider/internal/manifests"
)

// benchObjects is 1,000 Deployments with 3 containers each over 200 distinct images of host.
func benchObjects(host string) string {
	var b strings.Builder
	for i := range 1000 {
		fmt.Fprintf(&b, `---
apiVersion: apps/v1
kind: Deployment
metadata: {name: app-%d, namespace: prod}
spec:
  template:
    spec:
      initContainers:
        - {name: init, image: %s/bank/img-%d:1.0}
      containers:
        - {name: app, image: %s/bank/img-%d:1.0}
        - {name: side, image: %s/bank/img-%d:1.0}
`, i, host, i%200, host, (i+67)%200, host, (i+133)%200)
	}
	return b.String()
}

const benchPure = `apiVersion: constraints.gatekeeper.sh/v1beta1
kind: K8sTrustedImageSource
metadata: {name: trusted}
spec:
  match: {kinds: [{apiGroups: [apps], kinds: [Deployment]}]}
  parameters: {allowedRegistries: [HOST], bannedTags: [latest]}
---
apiVersion: constraints.gatekeeper.sh/v1beta1
kind: K8sImageDigest
metadata: {name: digest}
spec:
  match: {kinds: [{apiGroups: [apps], kinds: [Deployment]}]}
`

const benchSigned = `---
apiVersion: constraints.gatekeeper.sh/v1beta1
kind: K8sImageSignature
metadata: {name: signed}
spec:
  match: {kinds: [{apiGroups: [apps], kinds: [Deployment]}]}
  parameters: {authorities: [test-kms]}
`

// cpuTime is the process's user+system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func reportPerObject(b *testing.B, start time.Duration, objects int) {
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*objects), "µs/object")
	b.ReportMetric(float64((cpuTime()-start).Microseconds())/float64(b.N*objects), "cpu-µs/object")
}

// BenchmarkCheck1000 is `imagetrust check` over 1,000 Deployments (3,000 containers, 200
// distinct images): pure templates only, and with K8sImageSignature answered by the in-process
// provider (warm: its caches hold the 200 answers). BenchmarkGatorTest1000 is gator's own
// `gator test` path on the same objects with the pure templates: the baseline.
func BenchmarkCheck1000(b *testing.B) {
	for _, withProvider := range []bool{false, true} {
		name := "pure-templates"
		if withProvider {
			name = "with-signature-provider-warm"
		}
		b.Run(name, func(b *testing.B) {
			host := "registry.example"
			var prov *Providers
			cons := benchPure
			if withProvider {
				w := newWorldN(b, 200)
				host = w.host
				cons += benchSigned
				var err error
				prov, err = InProcessProviders(context.Background(), InProcessOptions{ConfigFile: w.configFile, WorkDir: b.TempDir()})
				if err != nil {
					b.Fatal(err)
				}
				defer func() { _ = prov.Close() }()
			}
			var pol *Policy
			if withProvider {
				f := filepath.Join(b.TempDir(), "c.yaml")
				writeFile(b, f, strings.ReplaceAll(cons, "HOST", host))
				var err error
				if pol, err = LoadPolicy([]string{templatesDir, f}); err != nil {
					b.Fatal(err)
				}
			} else {
				pol = loadPolicyB(b, strings.ReplaceAll(cons, "HOST", host)) // the pure templates, as gator gets them
			}
			objs, err := manifests.Parse(manifests.Source{Name: "bench.yaml", Data: []byte(benchObjects(host))})
			if err != nil {
				b.Fatal(err)
			}
			// Warm: one full run fills the provider's caches.
			rep, err := Run(context.Background(), Options{Policy: pol, Objects: objs, Providers: prov})
			if err != nil {
				b.Fatal(err)
			}
			// Every container is tag-only (digest: 3,000 deny); every image is signed (no
			// signature finding).
			if rep.Summary.Deny != 3000 || len(rep.Findings) != 3000 {
				b.Fatalf("warm-up: %d deny of %d findings, want 3000 digest findings", rep.Summary.Deny, len(rep.Findings))
			}
			start := cpuTime()
			b.ResetTimer()
			for range b.N {
				if _, err := Run(context.Background(), Options{Policy: pol, Objects: objs, Providers: prov}); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			reportPerObject(b, start, len(objs))
		})
	}
}

func BenchmarkGatorTest1000(b *testing.B) {
	host := "registry.example"
	var objs []*unstructured.Unstructured
	pol := loadPolicyB(b, strings.ReplaceAll(benchPure, "HOST", host))
	for _, t := range pol.Templates {
		if k := nestedString(t.Object.Object, "spec", "crd", "spec", "names", "kind"); k == "K8sImageSignature" {
			continue // gator cannot compile external_data
		}
		objs = append(objs, t.Object)
	}
	for _, c := range pol.Constraints {
		objs = append(objs, c.Object)
	}
	in, err := manifests.Parse(manifests.Source{Name: "bench.yaml", Data: []byte(benchObjects(host))})
	if err != nil {
		b.Fatal(err)
	}
	for _, o := range in {
		objs = append(objs, o.Object)
	}
	start := cpuTime()
	b.ResetTimer()
	for range b.N {
		if _, err := gatortest.Test(objs); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	reportPerObject(b, start, len(in))
}

func loadPolicyB(b *testing.B, constraints string) *Policy {
	b.Helper()
	f := filepath.Join(b.TempDir(), "c.yaml")
	writeFile(b, f, constraints)
	var paths []string
	for _, n := range []string{"base.yaml", "digest.yaml"} {
		paths = append(paths, filepath.Join(templatesDir, n))
	}
	p, err := LoadPolicy(append(paths, f))
	if err != nil {
		b.Fatal(err)
	}
	return p
}
