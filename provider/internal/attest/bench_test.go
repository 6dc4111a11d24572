package attest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/imagetrust/imagetrust/provider/internal/batch"
	"github.com/imagetrust/imagetrust/provider/internal/cache"
	"github.com/imagetrust/imagetrust/provider/internal/config"
	"github.com/imagetrust/imagetrust/provider/internal/imageref"
	"github.com/imagetrust/imagetrust/provider/internal/registry"
	"github.com/imagetrust/imagetrust/provider/internal/verify"
)

// BenchmarkAttestations answers a batch of 32 images, each with an SLSA provenance (DSSE on the
// .att tag) and a change review (Sigstore bundle referrer) signed with ECDSA P-256: cold (every
// key read from the loopback registry and verified) and warm (from the endpoint's cache), with
// /v1/verify's warm batch over the same images in the same run as the baseline. ns/key is the
// batch time divided by its keys.
func BenchmarkAttestations(b *testing.B) {
	const n = 32
	e := newEnv(b)
	keys := make([]string, n)
	for i := range n {
		// One image per repository: ggcr's in-memory registry answers the referrers API by
		// scanning every manifest of the repository.
		d := e.push(b, fmt.Sprintf("bench/app%d", i), "v1")
		attest(b, d, e.release, slsaV1, provenance("git+https://github.com/bank/payments@refs/heads/main"))
		attestBundle(b, d, e.release, reviewType, review("approved", "alice", "bob"))
		keys[i] = d.Context().String() + ":v1"
	}
	newCache := func() *cache.Cache[*Value] {
		c, err := cache.New[*Value](cache.Options{Name: "attestations", MaxEntries: 1000, TTL: time.Hour, NotFoundTTL: time.Minute, Negative: registry.IsNegative})
		if err != nil {
			b.Fatal(err)
		}
		return c
	}
	run := func(b *testing.B, lookup func(context.Context, []string) int) {
		b.Helper()
		ctx := context.Background()
		if got := lookup(ctx, keys); got != n {
			b.Fatalf("%d of %d keys answered", got, n)
		}
		b.ResetTimer()
		for b.Loop() {
			lookup(ctx, keys)
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/key")
	}
	answered := func(s *Service) func(context.Context, []string) int {
		return func(ctx context.Context, keys []string) int {
			ok := 0
			for _, it := range s.Attestations(ctx, keys) {
				if it.Error == "" {
					ok++
				}
			}
			return ok
		}
	}
	b.Run("cold", func(b *testing.B) { run(b, answered(e.service(b, Limits{}, nil, nil))) })
	b.Run("warm", func(b *testing.B) { run(b, answered(e.service(b, Limits{}, newCache(), nil))) })
	b.Run("verify-warm-baseline", func(b *testing.B) {
		pool, err := batch.NewPool(64, nil)
		if err != nil {
			b.Fatal(err)
		}
		vc, err := cache.New[*verify.Value](cache.Options{Name: "verify", MaxEntries: 1000, TTL: time.Hour, NotFoundTTL: time.Minute, Negative: registry.IsNegative})
		if err != nil {
			b.Fatal(err)
		}
		vs, err := verify.New(context.Background(), verify.Options{
			Authorities: []config.Authority{e.release.Authority("release")}, Registry: e.client,
			Refs: imageref.NewMemo(1024), Pool: pool, Deadline: 30 * time.Second, Cache: vc, UnsignedTTL: time.Minute,
		})
		if err != nil {
			b.Fatal(err)
		}
		run(b, func(ctx context.Context, keys []string) int {
			ok := 0
			for _, it := range vs.Verify(ctx, keys) {
				if it.Error == "" {
					ok++
				}
			}
			return ok
		})
	})
}
