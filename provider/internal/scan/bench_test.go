package scan

import (
	"context"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/imagetrust/imagetrust/provider/internal/cache"
)

// benchImages pushes n images, each with one signed cosign vuln attestation carrying the
// ~20 KB Trivy report of the alpine sample, and returns their digest references.
func benchImages(b *testing.B, e *scanEnv, n int) []string {
	b.Helper()
	pred := cosignVulnPredicate(b, sample(b, "trivy-image-alpine-310.json"), time.Now().Add(-time.Hour))
	keys := make([]string, n)
	for i := range n {
		d := e.push(b, "bench/app", "v"+itoa(i))
		e.attest(b, d, e.ci, PredicateCosignVuln, pred)
		keys[i] = d.String()
	}
	return keys
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var buf [20]byte
	p := len(buf)
	for ; i > 0; i /= 10 {
		p--
		buf[p] = byte('0' + i%10)
	}
	return string(buf[p:])
}

// BenchmarkScanCold: batches of 100 keys, no cache: every key is a full lookup (statements
// read and verified, predicate decoded, value chosen and encoded) against the loopback registry.
func BenchmarkScanCold(b *testing.B) {
	e := newScanEnv(b, envOptions{})
	keys := benchImages(b, e, 200)
	ctx := context.Background()
	// One pass first so connections and the registry client are warm, as in a running
	// provider (no answer cache: the timed passes do every lookup again).
	e.svc.Scan(ctx, keys)
	b.ResetTimer()
	start, cpu0 := time.Now(), cpuTime()
	n := 0
	for i := 0; b.Loop(); i++ {
		off := (i * 100) % len(keys)
		items := e.svc.Scan(ctx, keys[off:off+100])
		for _, it := range items {
			if it.Error != "" {
				b.Fatal(it.Error)
			}
		}
		n += len(items)
	}
	b.ReportMetric(float64(n)/time.Since(start).Seconds(), "images/s")
	// CPU of the whole process (provider side and the loopback registry) per key: what the
	// machine's load does not change.
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(n), "cpu-µs/key")
}

// cpuTime is the user+system CPU time of this process.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkScanWarm: batches of 100 keys, every answer cached; reports the median batch.
func BenchmarkScanWarm(b *testing.B) {
	c, err := cache.New[*Value](cache.Options{Name: "scan-bench", MaxEntries: 1000, TTL: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	e := newScanEnv(b, envOptions{cache: c})
	keys := benchImages(b, e, 100)
	ctx := context.Background()
	for _, it := range e.svc.Scan(ctx, keys) {
		if it.Error != "" {
			b.Fatal(it.Error)
		}
	}
	var durs []time.Duration
	b.ResetTimer()
	cpu0 := cpuTime()
	for b.Loop() {
		t0 := time.Now()
		e.svc.Scan(ctx, keys)
		durs = append(durs, time.Since(t0))
	}
	slices.Sort(durs)
	b.ReportMetric(float64(durs[len(durs)/2].Microseconds()), "p50-µs/batch")
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(len(durs)*len(keys)), "cpu-µs/key")
}
