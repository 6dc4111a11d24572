package verify

import (
	"bytes"
	"context"
	"fmt"
	"sort"
	"syscall"
	"testing"
	"time"

	"github.com/imagetrust/imagetrust/provider/internal/batch"
	"github.com/imagetrust/imagetrust/provider/internal/cache"
	"github.com/imagetrust/imagetrust/provider/internal/config"
	"github.com/imagetrust/imagetrust/provider/internal/imageref"
	"github.com/imagetrust/imagetrust/provider/internal/registry"
	"github.com/imagetrust/imagetrust/provider/internal/wire"
)

// benchImages pushes n images signed with one ECDSA P-256 key (cosign tag scheme) and returns
// their tag references and a service trusting the key.
func benchSetup(b *testing.B, n int, cached, sigOnly bool) (*Service, []string) {
	b.Helper()
	e := newEnv(b)
	k := newKey(b, "ecdsa")
	keys := make([]string, n)
	for i := range n {
		// One image per repository: ggcr's in-memory registry answers the referrers API by
		// scanning every manifest of the repository, which a real registry indexes.
		repo := fmt.Sprintf("bench/app%d", i)
		tag := fmt.Sprintf("v%d", i)
		d := e.push(b, repo, tag)
		signImage(b, d, k)
		keys[i] = e.host + "/" + repo + ":" + tag
	}
	pool, err := batch.NewPool(64, nil)
	if err != nil {
		b.Fatal(err)
	}
	o := Options{Authorities: nil, Registry: e.reg, Refs: imageref.NewMemo(config.ParseMemoEntries), Pool: pool, Deadline: 30 * time.Second}
	a := keyAuthorityCfg("release", k)
	if sigOnly {
		// An authority that publishes cosign signatures only: HEAD + 2 GETs per image.
		no := false
		a.Formats, a.Attestations = []string{"cosign"}, &no
	}
	o.Authorities = append(o.Authorities, a)
	if cached {
		c, err := cache.New[*Value](cache.Options{Name: "verify", MaxEntries: 100000, TTL: time.Hour, NotFoundTTL: time.Minute, Negative: registry.IsNegative})
		if err != nil {
			b.Fatal(err)
		}
		o.Cache, o.UnsignedTTL = c, config.DefaultUnsignedTTL
	}
	s, err := New(context.Background(), o)
	if err != nil {
		b.Fatal(err)
	}
	return s, keys
}

func runBench(b *testing.B, s *Service, keys []string, batchSize int) {
	runBenchWith(b, s.Verify, keys, batchSize)
}

// runBenchWith is runBench through verify (Service.Verify or Service.VerifySignatures).
func runBenchWith(b *testing.B, verify func(context.Context, []string) []wire.Item, keys []string, batchSize int) {
	ctx := context.Background()
	// One pass first so pullers (auth, /v2/ ping, connections) are warm, as in a running
	// provider; with a cache this also fills it.
	for i := 0; i+batchSize <= len(keys); i += batchSize {
		verify(ctx, keys[i:i+batchSize])
	}
	lat := make([]time.Duration, 0, b.N)
	cpu0 := cpuTime()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		off := (i * batchSize) % (len(keys) - batchSize + 1)
		start := time.Now()
		items := verify(ctx, keys[off:off+batchSize])
		lat = append(lat, time.Since(start))
		for _, it := range items {
			if raw, ok := it.Value.(wire.Encoded); it.Error != "" || !ok || !bytes.Contains(raw, []byte(`"signed":true`)) {
				b.Fatalf("Verify(%s) = %v / %s, want signed", it.Key, it.Value, it.Error)
			}
		}
	}
	b.StopTimer()
	cpu := cpuTime() - cpu0
	// CPU time of the whole process (provider code AND the in-process test registry) per
	// image: independent of how busy the machine is; 2 cores / this = images/s on an idle
	// 2-core machine.
	b.ReportMetric(float64(cpu.Microseconds())/1000/float64(batchSize*b.N), "cpu-ms/image")
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	p50 := lat[len(lat)/2]
	b.ReportMetric(float64(p50.Microseconds())/1000, "p50-ms/batch")
	b.ReportMetric(float64(p50.Microseconds())/1000/float64(batchSize), "p50-ms/image")
	b.ReportMetric(float64(batchSize)*float64(b.N)/b.Elapsed().Seconds(), "images/s")
}

// BenchmarkVerifyCold: no answer cache. reads=all: every image costs HEAD + .sig manifest +
// the listing of its digest's tags (no .att, no .sbom: not read) + referrers; reads=sig (authority formats [cosign], no
// attestations): HEAD + .sig manifest; reads=plan: the default authority through
// VerifySignatures (/v1/verify/signatures): HEAD + .sig manifest + referrers. One ECDSA P-256
// verification each (the default payload is never downloaded).
func BenchmarkVerifyCold(b *testing.B) {
	for _, reads := range []string{"all", "sig", "plan"} {
		for _, bs := range []int{1, 100} {
			b.Run(fmt.Sprintf("reads=%s/batch=%d", reads, bs), func(b *testing.B) {
				s, keys := benchSetup(b, 400, false, reads == "sig")
				if reads == "plan" {
					runBenchWith(b, s.VerifySignatures, keys, bs)
					return
				}
				runBench(b, s, keys, bs)
			})
		}
	}
}

// BenchmarkVerifyWarm: every answer cached.
func BenchmarkVerifyWarm(b *testing.B) {
	for _, bs := range []int{1, 100} {
		b.Run(fmt.Sprintf("batch=%d", bs), func(b *testing.B) {
			s, keys := benchSetup(b, 400, true, false)
			runBench(b, s, keys, bs)
		})
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
