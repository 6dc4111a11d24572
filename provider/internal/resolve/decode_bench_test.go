package resolve

import (
	"encoding/json"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/imagetrust/imagetrust/provider/internal/registry/registrytest"
)

// BenchmarkIndexDecode decodes a legal 20,000-platform index (3.8 MB) as the platform list
// needs it (platforms only) against the whole v1.IndexManifest.
func BenchmarkIndexDecode(b *testing.B) {
	raw := registrytest.BigIndex(20000)
	b.Run("platforms", func(b *testing.B) {
		b.SetBytes(int64(len(raw)))
		for b.Loop() {
			var im indexPlatforms
			if err := json.Unmarshal(raw, &im); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("IndexManifest", func(b *testing.B) {
		b.SetBytes(int64(len(raw)))
		for b.Loop() {
			var im v1.IndexManifest
			if err := json.Unmarshal(raw, &im); err != nil {
				b.Fatal(err)
			}
		}
	})
}
