package resolve

import (
	"fmt"
	"testing"
)

// The byte-bounded cache sees an index answer's platform list, not a fixed estimate.
func TestAnswerCacheBytesGrowsWithPlatforms(t *testing.T) {
	small := Answer{Digest: "sha256:abc", MediaType: "application/vnd.oci.image.manifest.v1+json"}
	big := small
	for i := range 256 {
		big.Platforms = append(big.Platforms, Platform{OS: "linux", Architecture: fmt.Sprintf("arch%d", i)})
	}
	if s, b := small.CacheBytes(), big.CacheBytes(); b < s+256*(3*16+len("linux")+len("arch0")) {
		t.Errorf("CacheBytes() = %d with 256 platforms, %d without; want the platforms counted", b, s)
	}
}
