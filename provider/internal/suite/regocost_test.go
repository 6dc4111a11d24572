package suite

// Rego cost per review: CPU per Pod of each template through the frameworks client (the
// engine Gatekeeper runs), on the workload of regocost_workload_test.go. `make bench-rego`
// runs it; docs/performance.md "Rego cost per review" has the figures.
//
//	IMAGETRUST_REGO_TEMPLATES=dir   templates to measure (default: templates/ of the repository)
//	IMAGETRUST_REGO_BASELINE=dir    also measure the templates in dir, each set right after the
//	                                current one, as <set>/baseline (same run, same machine)
//	IMAGETRUST_REGO_BENCH_FILES=a,b also measure these template and constraint files as "files"

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/open-policy-agent/frameworks/constraint/pkg/client/drivers/rego"
	"github.com/open-policy-agent/frameworks/constraint/pkg/externaldata"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/imagetrust/imagetrust/provider/internal/imageref"
	"github.com/imagetrust/imagetrust/provider/internal/policy"
)

// regoCostSet is what one sub-benchmark loads: templates and their constraints.
type regoCostSet struct {
	name  string
	files []string
}

// regoCostSets are the measured sets, the templates read from dir, each with its seed
// constraint.
func regoCostSets(dir string) []regoCostSet {
	t := func(name string) string { return filepath.Join(dir, name+".yaml") }
	c := func(p string) string { return filepath.Join(repoRoot, "constraints", p) }
	return []regoCostSet{
		{"base", []string{t("base"), c("base/bank.yaml")}},
		{"digest", []string{t("digest"), c("digest/production.yaml")}},
		{"base+digest", []string{t("base"), t("digest"), c("base/bank.yaml"), c("digest/production.yaml")}},
		{"verification", []string{t("verification"), c("verification/kms-signed.yaml")}},
		{"security", []string{t("security"), c("security/bank.yaml")}},
	}
}

func regoCostTemplates() string {
	if d := os.Getenv("IMAGETRUST_REGO_TEMPLATES"); d != "" {
		return d
	}
	return filepath.Join(repoRoot, "templates")
}

// regoCostCaches are the external-data caches every client of the process shares: the frameworks
// driver registers external_data process-wide, bound to the last driver created, so all drivers
// must see the same caches. No Provider object is registered: an image missing from the
// response cache fails its lookup (and TestRegoCostWorkload would say so).
type regoCostCaches struct {
	providers *externaldata.ProviderCache
	responses *externaldata.ProviderResponseCache
}

func newRegoCostClient(tb testing.TB, caches regoCostCaches, files []string) *policy.Client {
	tb.Helper()
	c, err := policy.New(policy.WithDriverArgs(
		rego.AddExternalDataProviderCache(caches.providers),
		rego.AddExternalDataProviderResponseCache(caches.responses),
	))
	if err != nil {
		tb.Fatal(err)
	}
	if err := c.AddFiles(context.Background(), files...); err != nil {
		tb.Fatal(err)
	}
	return c
}

// BenchmarkRegoCostPerPod reviews the workload's Pods one per operation (-benchtime=2000x is
// one pass) and reports process CPU per Pod (cpu-ms/pod: Rego evaluation, the frameworks
// client and the garbage collector, independent of how busy the machine is) and violations
// per Pod (equal before and after a change that keeps every decision).
func BenchmarkRegoCostPerPod(b *testing.B) {
	w := newRegoCostWorkload(b)
	caches := regoCostCaches{providers: externaldata.NewCache(), responses: w.responseCache(b)}
	current := regoCostSets(regoCostTemplates())
	var baseline []regoCostSet
	if d := os.Getenv("IMAGETRUST_REGO_BASELINE"); d != "" {
		baseline = regoCostSets(d)
	}
	for i, set := range current {
		b.Run(set.name, func(b *testing.B) { benchmarkRegoCost(b, w, caches, set.files) })
		if baseline != nil {
			b.Run(set.name+"/baseline", func(b *testing.B) { benchmarkRegoCost(b, w, caches, baseline[i].files) })
		}
	}
	if f := os.Getenv("IMAGETRUST_REGO_BENCH_FILES"); f != "" {
		b.Run("files", func(b *testing.B) { benchmarkRegoCost(b, w, caches, strings.Split(f, ",")) })
	}
}

func benchmarkRegoCost(b *testing.B, w *regoCostWorkload, caches regoCostCaches, files []string) {
	ctx := context.Background()
	c := newRegoCostClient(b, caches, files)
	for _, pod := range w.pods[:50] { // compiled regexes, the frameworks' caches
		if _, err := c.Review(ctx, pod); err != nil {
			b.Fatal(err)
		}
	}
	var violations int
	cpu0 := processCPU(b)
	b.ResetTimer()
	i := 0
	for b.Loop() {
		vs, err := c.Review(ctx, w.pods[i%len(w.pods)])
		if err != nil {
			b.Fatal(err)
		}
		violations += len(vs)
		i++
	}
	b.StopTimer()
	cpu := processCPU(b) - cpu0
	b.ReportMetric(float64(cpu.Microseconds())/1000/float64(b.N), "cpu-ms/pod")
	b.ReportMetric(float64(violations)/float64(b.N), "violations/pod")
}

func processCPU(tb testing.TB) time.Duration {
	tb.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestRegoCostWorkload checks that the benchmark measures what it says: on the first Pods of
// the workload every template decides from its answers in process (no lookup failed), bank
// images are compliant with all four seed constraints, and every real reference the runtime
// rejects is denied. With IMAGETRUST_REGO_BASELINE=dir it reviews all 2,000 Pods with the
// templates of dir and the current ones and requires the same violations for each Pod.
func TestRegoCostWorkload(t *testing.T) {
	w := newRegoCostWorkload(t)
	caches := regoCostCaches{providers: externaldata.NewCache(), responses: w.responseCache(t)}
	ctx := context.Background()
	pods := w.pods[:60]
	baselineDir := os.Getenv("IMAGETRUST_REGO_BASELINE")
	if baselineDir != "" {
		pods = w.pods
	}
	var baseline []regoCostSet
	if baselineDir != "" {
		baseline = regoCostSets(baselineDir)
	}
	for i, set := range regoCostSets(regoCostTemplates()) {
		if set.name == "base+digest" {
			continue
		}
		t.Run(set.name, func(t *testing.T) {
			c := newRegoCostClient(t, caches, set.files)
			var base *policy.Client
			if baseline != nil {
				base = newRegoCostClient(t, caches, baseline[i].files)
			}
			var total int
			for _, pod := range pods {
				got, err := c.Review(ctx, pod)
				if err != nil {
					t.Fatal(err)
				}
				total += len(got)
				checkRegoCostPod(t, w, pod, got)
				if base == nil {
					continue
				}
				want, err := base.Review(ctx, pod)
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(got, want) {
					t.Errorf("%s: %s templates give\n%v\nbaseline %s gives\n%v", pod.GetName(), set.name, got, baselineDir, want)
				}
			}
			if total == 0 {
				t.Errorf("no violation in %d Pods: the real references should give some", len(pods))
			}
			t.Logf("%d Pods, %d violations", len(pods), total)
		})
	}
}

// checkRegoCostPod checks the violations of one Pod against what its images are.
func checkRegoCostPod(t *testing.T, w *regoCostWorkload, pod *unstructured.Unstructured, vs []policy.Violation) {
	t.Helper()
	byContainer := map[string][]string{}
	for _, v := range vs {
		if strings.Contains(v.Msg, "could not be") || strings.Contains(v.Msg, "returned no answer") {
			t.Fatalf("%s: a lookup was not answered from the response cache: %s", pod.GetName(), v.Msg)
		}
		name, _, ok := strings.Cut(strings.TrimPrefix(v.Msg, "container <"), ">")
		if !ok {
			t.Fatalf("%s: violation %q names no container", pod.GetName(), v.Msg)
		}
		byContainer[name] = append(byContainer[name], v.Msg)
	}
	for _, field := range []string{"containers", "initContainers"} {
		list, _, _ := unstructured.NestedSlice(pod.Object, "spec", field)
		for _, x := range list {
			ctr, _ := x.(map[string]any)
			name, _ := ctr["name"].(string)
			ref, _ := ctr["image"].(string)
			img := w.images[ref]
			if img.bank && len(byContainer[name]) > 0 {
				t.Errorf("%s: compliant bank image %s got %v", pod.GetName(), ref, byContainer[name])
			}
			if !img.bank && !regoCostValid(ref) {
				found := slices.ContainsFunc(byContainer[name], func(m string) bool {
					return strings.Contains(m, "is not a valid image reference")
				})
				if !found {
					t.Errorf("%s: invalid reference %q was not denied: %v", pod.GetName(), ref, byContainer[name])
				}
			}
		}
	}
}

// regoCostValid is whether the runtime accepts ref (the provider's parser, which the
// differential tests hold to distribution/reference, as they hold the Rego one).
func regoCostValid(ref string) bool {
	_, err := imageref.Parse(ref)
	return err == nil
}
