package resolve_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/imagetrust/imagetrust/provider/internal/config"
	"github.com/imagetrust/imagetrust/provider/internal/registry/registrytest"
)

// BenchmarkIndexTags resolves 50 keys of one 20,000-platform index (3.8 MB, lookup.maxIndexBytes
// raised to 4 MiB to allow it) with empty caches: as 50 tags of one repository and as 50
// repositories; both share one index read and decode now (before the lists were kept per
// digest, each repository read its own). Reported per key.
func BenchmarkIndexTags(b *testing.B) {
	const keys = 50
	reg := registrytest.New()
	b.Cleanup(reg.Close)
	reg.Hostile(registrytest.PathContains("/manifests/"), registrytest.Content(ociIndex, registrytest.BigIndex(20000)))
	cfg := config.Config{
		Registries: []config.Registry{{Host: reg.Host, Insecure: true}},
		Cache:      config.Cache{MaxEntries: 1000, TTL: config.Duration(time.Minute)},
		Lookup:     config.Lookup{Workers: 8, PerRegistryConcurrency: 8, RegistryTimeout: config.Duration(time.Minute), MaxIndexBytes: config.MaxIndexBytesLimit},
		Endpoints:  config.Endpoints{Resolve: config.Endpoint{Deadline: config.Duration(time.Minute)}, Mutate: config.Endpoint{Deadline: config.Duration(time.Minute)}},
	}
	for _, bc := range []struct {
		name string
		key  func(j int) string
	}{
		{"one repository", func(j int) string { return fmt.Sprintf("%s/team/big:t%d", reg.Host, j) }},
		{"50 repositories", func(j int) string { return fmt.Sprintf("%s/team/big%d:v1", reg.Host, j) }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			batch := make([]string, keys)
			for j := range batch {
				batch[j] = bc.key(j)
			}
			for b.Loop() {
				b.StopTimer()
				svc, err := newService(cfg, nil, nil) // empty answer and index caches
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				for _, it := range svc.Resolve(context.Background(), batch) {
					if it.Error != "" {
						b.Fatalf("Resolve(%s) = %s", it.Key, it.Error)
					}
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*keys), "ns/key")
		})
	}
}
