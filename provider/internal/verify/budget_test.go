package verify

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/imagetrust/imagetrust/provider/internal/cache/cachetest"
	"github.com/imagetrust/imagetrust/provider/internal/wire"
)

// rawIndex is an index manifest pushed as bytes.
type rawIndex []byte

func (r rawIndex) RawManifest() ([]byte, error)        { return r, nil }
func (r rawIndex) MediaType() (types.MediaType, error) { return types.OCIImageIndex, nil }

// TestHugeIndexIsRejectedWithinBudget verifies a legal index of 1,000 platforms (under the
// 256 KiB index cap) for an authority with verifyPlatforms: the platforms are checked by a
// bounded number of goroutines, the key stops at its request budget and is answered
// "limit exceeded:" — not "timed out:", which failOpen would admit.
func TestHugeIndexIsRejectedWithinBudget(t *testing.T) {
	e := newEnv(t)
	k := newKey(t, "ecdsa")
	strict := keyAuthorityCfg("all-platforms", k)
	strict.VerifyPlatforms = true
	s := newService(t, e, strict)
	// The loopback registry decodes every manifest of the repository (the index included) on each referrers request; a smaller budget keeps the test quick and
	// exercises the same bound.
	const budget = 96
	s.lim.Requests = budget

	// One real platform manifest listed 1,000 times (the registry checks that sub-manifests
	// exist), each entry a different platform: far beyond the budget, and small enough that
	// the loopback registry's re-decoding of it on each request stays quick under -race.
	child := e.push(t, "bomb", "child")
	cd, err := v1.NewHash(child.DigestStr())
	if err != nil {
		t.Fatal(err)
	}
	const platforms = 1000
	idx := v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex}
	for i := range platforms {
		idx.Manifests = append(idx.Manifests, v1.Descriptor{
			MediaType: types.DockerManifestSchema2, Size: 1, Digest: cd,
			Platform: &v1.Platform{OS: "linux", Architecture: fmt.Sprintf("arch%d", i)},
		})
	}
	raw, err := json.Marshal(idx)
	if err != nil {
		t.Fatal(err)
	}
	tag, err := name.NewTag(e.host + "/bomb:v1")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Put(tag, rawIndex(raw)); err != nil {
		t.Fatalf("pushing the %d-byte index: %v", len(raw), err)
	}
	e.resetRequests()

	var items []wire.Item
	base, peak := cachetest.PeakGoroutines(func() { items = s.Verify(context.Background(), []string{tag.String()}) })

	total := 0
	for _, n := range e.resetRequests() {
		total += n
	}
	t.Logf("index %d bytes, %d platforms: %d registry requests, goroutines %d before, peak %d; answer %q",
		len(raw), platforms, total, base, peak, items[0].Error)
	if c, ok := wire.ClassOf(items[0].Error); !ok || c != wire.ClassLimitExceeded || c.Transient() {
		t.Errorf("error = %q, want a %q error (not transient)", items[0].Error, wire.ClassLimitExceeded)
	}
	if !strings.Contains(items[0].Error, fmt.Sprint(budget)) {
		t.Errorf("error = %q, want the budget %d named", items[0].Error, budget)
	}
	if total > budget+16 {
		t.Errorf("registry requests = %d, want at most the budget %d (+16 for the key's own reads)", total, budget)
	}
	if extra := peak - base; extra > 200 {
		t.Errorf("goroutines peaked %d above the %d before, want at most 200", extra, base)
	}
}
