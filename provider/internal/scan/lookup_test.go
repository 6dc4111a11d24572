package scan

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/imagetrust/imagetrust/provider/internal/cache/cachetest"
)

// rawIndex is an index manifest pushed as bytes.
type rawIndex []byte

func (r rawIndex) RawManifest() ([]byte, error)        { return r, nil }
func (r rawIndex) MediaType() (types.MediaType, error) { return types.OCIImageIndex, nil }

// pushWideIndex pushes to repo:tag an index listing child n times, each entry a different
// platform, and returns the index's reference.
func pushWideIndex(t *testing.T, e *scanEnv, repo, tag string, child name.Digest, n int) string {
	t.Helper()
	cd, err := v1.NewHash(child.DigestStr())
	if err != nil {
		t.Fatal(err)
	}
	idx := v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex}
	for i := range n {
		idx.Manifests = append(idx.Manifests, v1.Descriptor{
			MediaType: types.DockerManifestSchema2, Size: 1, Digest: cd,
			Platform: &v1.Platform{OS: "linux", Architecture: fmt.Sprintf("arch%d", i)},
		})
	}
	raw, err := json.Marshal(idx)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := name.NewTag(e.host + "/" + repo + ":" + tag)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Put(tr, rawIndex(raw)); err != nil {
		t.Fatalf("pushing the index: %v", err)
	}
	return tr.String()
}

// TestWideIndexScansPlatformsBounded: an index of 96 platforms (the platform cap raised to
// 96), each a signed, scanned image, is answered from every platform's scan by at most
// maxPlatformWorkers platform lookups at once — counted at the real loopback registry as
// concurrent .att tag reads, each held 5 ms — and the goroutines stay bounded; one platform over
// the cap is refused before any platform is read.
func TestWideIndexScansPlatformsBounded(t *testing.T) {
	const platforms = 96
	e := newScanEnv(t, envOptions{maxPlatforms: platforms})
	child := e.push(t, "wide", "child")
	e.attest(t, child, e.ci, PredicateCosignVuln, cosignVulnPredicate(t, []byte(cleanTrivy), time.Now().Add(-time.Hour)))
	key := pushWideIndex(t, e, "wide", "v1", child, platforms)

	var inflight, peakInflight, attReads atomic.Int64
	e.reg.Hostile(func(r *http.Request) bool {
		return r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/manifests/sha256-") && strings.HasSuffix(r.URL.Path, ".att")
	}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		attReads.Add(1)
		n := inflight.Add(1)
		for {
			p := peakInflight.Load()
			if n <= p || peakInflight.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(5 * time.Millisecond)
		inflight.Add(-1)
		e.reg.Next().ServeHTTP(w, r)
	}))
	t.Cleanup(func() { e.reg.Hostile(nil, nil) })

	var v *Value
	base, peak := cachetest.PeakGoroutines(func() { v = e.scanOne(t, key) })

	t.Logf("%d platforms: %d .att reads, at most %d at once; goroutines %d before, peak %d",
		platforms, attReads.Load(), peakInflight.Load(), base, peak)
	if !v.Scanned || len(v.Platforms) != platforms {
		t.Fatalf("value scanned=%v reason=%q with %d platforms, want scanned from all %d", v.Scanned, v.Reason, len(v.Platforms), platforms)
	}
	for i, pv := range v.Platforms {
		if want := fmt.Sprintf("linux/arch%d", i); pv.Platform != want || !pv.Scanned {
			t.Fatalf("platform %d = %q scanned=%v, want %q scanned", i, pv.Platform, pv.Scanned, want)
		}
	}
	if got := attReads.Load(); got != platforms+1 {
		t.Errorf(".att reads = %d, want %d (the index and each platform)", got, platforms+1)
	}
	if got := peakInflight.Load(); got > maxPlatformWorkers {
		t.Errorf("platform .att reads at once peaked at %d, want at most %d", got, maxPlatformWorkers)
	}
	// Each worker runs two branches (.att tag, referrers) over its own connections (three
	// goroutines each, client and server); one goroutine per platform would be 300 and more.
	if extra := peak - base; extra > 150 {
		t.Errorf("goroutines peaked %d above the %d before, want at most 150", extra, base)
	}

	over := pushWideIndex(t, e, "wide", "over", child, platforms+1)
	attReads.Store(0)
	items := e.svc.Scan(context.Background(), []string{over})
	if want := fmt.Sprintf("more than %d platform manifests", platforms); !strings.Contains(items[0].Error, want) {
		t.Errorf("index of %d platforms: error = %q, want it to say %q", platforms+1, items[0].Error, want)
	}
	if got := attReads.Load(); got > 1 {
		t.Errorf("index over the cap: %d .att reads, want only the index's own", got)
	}
}
