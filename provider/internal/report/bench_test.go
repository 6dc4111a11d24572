package report

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/imagetrust/imagetrust/provider/internal/registry/registrytest"
)

// statusObjects renders a synthetic report back into constraint objects with the status the
// API server returns, so the benchmark parses what Collect parses.
func statusObjects(r *Report) []*unstructured.Unstructured {
	byCon := map[string][]any{}
	for _, v := range r.Violations {
		byCon[v.Constraint] = append(byCon[v.Constraint], map[string]any{"group": v.Group, "version": v.Version, "kind": v.Kind,
			"namespace": v.Namespace, "name": v.Name, "message": v.Message, "enforcementAction": v.EnforcementAction})
	}
	out := make([]*unstructured.Unstructured, 0, len(r.Constraints))
	for _, c := range r.Constraints {
		out = append(out, &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "constraints.gatekeeper.sh/v1beta1", "kind": c.Kind,
			"metadata": map[string]any{"name": c.Name, "generation": int64(1)},
			"spec":     map[string]any{"enforcementAction": "deny"},
			"status": map[string]any{"auditTimestamp": c.AuditTimestamp, "totalViolations": c.TotalViolations, "violations": byCon[c.ID()],
				"byPod": []any{map[string]any{"id": "gk", "enforced": true, "observedGeneration": int64(1)}}},
		}})
	}
	return out
}

// BenchmarkReport: 50 constraints, 5,000 violations (a --constraint-violations-limit of 100
// or more, or rows from --complete): parse status, roll up, check health, render every format.
// Wall time per op is ns/op; memory is B/op and the live heap after building (heap-MB).
func BenchmarkReport(b *testing.B) {
	objs := statusObjects(synthetic(50, 5000))
	for _, format := range Formats {
		b.Run(format, func(b *testing.B) {
			b.ReportAllocs()
			var r *Report
			for b.Loop() {
				r = &Report{Evidence: Evidence{GeneratedAt: testNow}}
				for _, u := range objs {
					c, rows := parseConstraint(u)
					r.Constraints = append(r.Constraints, c)
					r.Violations = append(r.Violations, rows...)
				}
				Finish(r, HealthOptions{})
				if err := Write(io.Discard, r, format); err != nil {
					b.Fatal(err)
				}
			}
			if r.Summary.Listed != 5000 || r.Summary.Constraints != 50 {
				b.Fatalf("summary %+v, want 5000 rows over 50 constraints", r.Summary)
			}
			var ms runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&ms)
			b.ReportMetric(float64(ms.HeapAlloc)/(1<<20), "heap-MB")
		})
	}
}

// BenchmarkComplete: --complete over 5,000 Pods (50 images, unsigned) with K8sImageSignature,
// K8sImageDigest and K8sTrustedImageSource constraints, external_data answered by the provider
// started in-process over mTLS, warm (one untimed pass first). Each op builds a new evaluator
// (templates compiled, Gatekeeper's 3-minute answer cache empty) and re-evaluates everything.
func BenchmarkComplete(b *testing.B) {
	ctx := context.Background()
	reg := registrytest.New()
	b.Cleanup(reg.Close)
	host := reg.Host
	var images []string
	for i := range 50 {
		img, err := random.Image(256, 1)
		if err != nil {
			b.Fatal(err)
		}
		ref := fmt.Sprintf("%s/bench/app%d:1.0.%d", host, i, i)
		tag, err := name.NewTag(ref, name.Insecure)
		if err != nil {
			b.Fatal(err)
		}
		if err := remote.Write(tag, img); err != nil {
			b.Fatal(err)
		}
		images = append(images, ref)
	}
	dir := b.TempDir()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		b.Fatal(err)
	}
	keyFile := filepath.Join(dir, "key.pub")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o600); err != nil {
		b.Fatal(err)
	}
	cfgFile := filepath.Join(dir, "provider.yaml")
	cfg := fmt.Sprintf("server:\n  tls: {certFile: x, keyFile: x, clientCAFile: x}\nregistries:\n- host: %q\n  insecure: true\nauthorities:\n- name: bench-key\n  key: {file: %q}\n", host, keyFile)
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		b.Fatal(err)
	}
	prov, err := StartProvider(ctx, InProcessOptions{ConfigFile: cfgFile, Dir: dir, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = prov.Stop() })

	providers, err := decode(`apiVersion: externaldata.gatekeeper.sh/v1beta1
kind: Provider
metadata: {name: imagetrust-verify}
spec: {url: "https://imagetrust-provider.gatekeeper-system.svc:8443/v1/verify", timeout: 10, caBundle: "set below"}
`)
	if err != nil {
		b.Fatal(err)
	}
	var objs objectList
	for i := range 5000 {
		objs = append(objs, podObj(fmt.Sprintf("ns-%02d", i%40), fmt.Sprintf("pod-%05d", i), images[i%len(images)]))
	}
	cons := []*unstructured.Unstructured{
		benchConstraint("K8sImageSignature", "signed", map[string]any{"authorities": []any{"bench-key"}}, int64(len(objs))),
		benchConstraint("K8sImageDigest", "digest", map[string]any{}, int64(len(objs))),
		benchConstraint("K8sTrustedImageSource", "source", map[string]any{"allowedRegistries": []any{"registry.example"}}, int64(len(objs))),
	}
	in := &Inputs{Templates: loadTemplates(b, "base.yaml", "digest.yaml", "verification.yaml"), Constraints: cons, Providers: providers}
	run := func() *Report {
		r := &Report{}
		for _, u := range cons {
			c, rows := parseConstraint(u)
			r.Constraints = append(r.Constraints, c)
			r.Violations = append(r.Violations, rows...)
		}
		ev, err := NewEvaluator(ctx, in, prov.ExternalData)
		if err != nil {
			b.Fatal(err)
		}
		if err := Complete(ctx, r, CompleteOptions{Reviewer: ev, Objects: objs}); err != nil {
			b.Fatal(err)
		}
		return r
	}
	r := run() // warm the provider's caches
	for _, c := range r.Constraints {
		if c.Reevaluated != len(objs) || c.Mismatch != "" {
			b.Fatalf("constraint %s: %d re-evaluated, mismatch %q; want %d rows", c.ID(), c.Reevaluated, c.Mismatch, len(objs))
		}
	}
	b.Run("complete", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			run()
		}
		b.ReportMetric(float64(len(objs)), "objects/op")
	})
	// Baseline: the same reviews, one object after another, straight through the frameworks
	// client (what any re-evaluation costs at least).
	b.Run("baseline-review", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			ev, err := NewEvaluator(ctx, in, prov.ExternalData)
			if err != nil {
				b.Fatal(err)
			}
			for _, u := range objs {
				if _, err := ev.Review(ctx, u); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.ReportMetric(float64(len(objs)), "objects/op")
	})
}

func benchConstraint(kind, name string, params map[string]any, total int64) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "constraints.gatekeeper.sh/v1beta1", "kind": kind,
		"metadata": map[string]any{"name": name},
		"spec": map[string]any{"enforcementAction": "deny", "parameters": params,
			"match": map[string]any{"kinds": []any{map[string]any{"apiGroups": []any{""}, "kinds": []any{"Pod"}}}}},
		"status": map[string]any{"auditTimestamp": "2026-03-01T11:59:50Z", "totalViolations": total},
	}}
}
