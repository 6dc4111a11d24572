package verify

import (
	"context"
	"fmt"
	"testing"

	"github.com/imagetrust/imagetrust/provider/internal/server"
)

// BenchmarkVerifyWarmEncoded: every answer cached, each batch answered and encoded as the
// /v1/verify response body (server.EncodeResponse), which is what a warm request costs the
// provider besides TLS and HTTP.
func BenchmarkVerifyWarmEncoded(b *testing.B) {
	for _, bs := range []int{1, 100} {
		b.Run(fmt.Sprintf("batch=%d", bs), func(b *testing.B) {
			s, keys := benchSetup(b, 400, true, false)
			ctx := context.Background()
			for i := 0; i+bs <= len(keys); i += bs {
				s.Verify(ctx, keys[i:i+bs])
			}
			b.ReportAllocs()
			cpu0 := cpuTime()
			b.ResetTimer()
			var n int
			for i := 0; i < b.N; i++ {
				off := (i * bs) % (len(keys) - bs + 1)
				items := s.Verify(ctx, keys[off:off+bs])
				for _, it := range items {
					if it.Error != "" {
						b.Fatalf("Verify(%s) error = %s", it.Key, it.Error)
					}
				}
				body, err := server.EncodeResponse(items, false, "")
				if err != nil {
					b.Fatal(err)
				}
				n += len(body)
			}
			b.StopTimer()
			// CPU time is what matters on a shared machine: wall time follows the load.
			b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/batch")
			b.ReportMetric(float64(n)/float64(b.N*bs), "B-json/image")
		})
	}
}
