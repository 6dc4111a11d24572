package resolve_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/imagetrust/imagetrust/provider/internal/batch"
	"github.com/imagetrust/imagetrust/provider/internal/cache"
	"github.com/imagetrust/imagetrust/provider/internal/cache/cachetest"
	"github.com/imagetrust/imagetrust/provider/internal/config"
	"github.com/imagetrust/imagetrust/provider/internal/imageref"
	"github.com/imagetrust/imagetrust/provider/internal/registry"
	"github.com/imagetrust/imagetrust/provider/internal/registry/registrytest"
	"github.com/imagetrust/imagetrust/provider/internal/resolve"
	"github.com/imagetrust/imagetrust/provider/internal/verify"
	"github.com/imagetrust/imagetrust/provider/internal/wire"
)

// TestIndexReadOncePerDigest: 50 tags of one legal 190 KB index (1,000 platforms) cost 50
// HEADs and ONE index read; 50 more tags of it cost no read at all; the pushed two-platform
// index tagged 50 times in the real registry likewise costs one read.
func TestIndexReadOncePerDigest(t *testing.T) {
	const tags = 50
	f := newFixture(t, nil)
	f.reg.Hostile(registrytest.PathContains("/team/big/manifests/"), registrytest.Content(ociIndex, registrytest.BigIndex(1000)))
	batch := func(repo string, from int) []string {
		keys := make([]string, tags)
		for i := range keys {
			keys[i] = fmt.Sprintf("%s/%s:t%d", f.host, repo, from+i)
		}
		return keys
	}
	for i, keys := range [][]string{batch("team/big", 0), batch("team/big", tags)} {
		f.reg.ResetCounts()
		for _, it := range f.svc.Resolve(context.Background(), keys) {
			if v := decodeValue(t, it); *v.PlatformsTotal != 1000 || !*v.PlatformsTruncated {
				t.Fatalf("Resolve(%s): platformsTotal %d, truncated %v; want 1000, true", it.Key, *v.PlatformsTotal, *v.PlatformsTruncated)
			}
		}
		want := 1 - i // the second batch finds the list in memory
		if got := f.reg.Count(http.MethodGet, "manifests"); got != want {
			t.Errorf("batch %d: index GETs for %d tags of one index = %d, want %d", i+1, tags, got, want)
		}
		if got := f.reg.Count(http.MethodHead, "manifests"); got != tags {
			t.Errorf("batch %d: HEADs for %d tags = %d, want %d (each tag is resolved)", i+1, tags, got, tags)
		}
	}

	// The real registry: the pushed index under 50 tags.
	src, err := name.NewDigest(f.host + "/team/multi@" + f.index.String())
	if err != nil {
		t.Fatal(err)
	}
	desc, err := remote.Get(src)
	if err != nil {
		t.Fatal(err)
	}
	keys := batch("team/multi", 0)
	for _, k := range keys {
		tag, _ := name.NewTag(k)
		if err := remote.Tag(tag, desc); err != nil {
			t.Fatalf("remote.Tag(%s) = %v", tag, err)
		}
	}
	f.reg.ResetCounts()
	for _, it := range f.svc.Resolve(context.Background(), keys) {
		if v := decodeValue(t, it); len(v.Platforms) != 2 || !strings.Contains(render(it), f.index.String()) {
			t.Fatalf("Resolve(%s) = %s, want the index digest and its 2 platforms", it.Key, render(it))
		}
	}
	if got := f.reg.Count(http.MethodGet, "manifests"); got != 1 {
		t.Errorf("index GETs for %d tags of the pushed index = %d, want 1", tags, got)
	}
}

// waitPlatforms waits until n goroutines wait in Indexes.Platforms (for the read in flight) and
// returns how many it saw last.
func waitPlatforms(n int, bound time.Duration) int {
	return cachetest.WaitSelecting("resolve.(*Indexes).Platforms(", n, bound)
}

// TestConcurrentTagsWaitForOneRead: keys for different tags of one index, looked up at once,
// wait for the one index read in flight (held until all of them wait).
func TestConcurrentTagsWaitForOneRead(t *testing.T) {
	const n = 4 // the registry's share of the fixture's 8 pool workers: every key's load runs at once
	f := newFixture(t, nil)
	content := registrytest.Content(ociIndex, registrytest.BigIndex(1000))
	f.reg.Hostile(registrytest.PathContains("/team/big/manifests/"), http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method == http.MethodGet {
			if got := waitPlatforms(n, time.Minute); got < n {
				t.Errorf("%d keys wait for the index read after a minute, want %d", got, n)
			}
		}
		content.ServeHTTP(w, req)
	}))
	var wg sync.WaitGroup
	results := make([]wire.Item, n)
	for i := range n {
		wg.Go(func() {
			results[i] = f.svc.Resolve(context.Background(), []string{fmt.Sprintf("%s/team/big:t%d", f.host, i)})[0]
		})
	}
	wg.Wait()
	for _, it := range results {
		if v := decodeValue(t, it); *v.PlatformsTotal != 1000 {
			t.Errorf("Resolve(%s): platformsTotal %d, want 1000", it.Key, *v.PlatformsTotal)
		}
	}
	if got := f.reg.Count(http.MethodGet, "manifests"); got != 1 {
		t.Errorf("index GETs for %d concurrent tags = %d, want 1", n, got)
	}
}

// newIndexes is an Indexes on a registry client for f's registry.
func newIndexes(t *testing.T, f *fixture) *resolve.Indexes {
	x, _ := newIndexesClient(t, f)
	return x
}

// newIndexesClient is an Indexes on a registry client for f's registry, and that client.
func newIndexesClient(t *testing.T, f *fixture) (*resolve.Indexes, *registry.Client) {
	t.Helper()
	cfg := config.Config{Registries: []config.Registry{{Host: f.host, Insecure: true}}}
	cfg.ApplyDefaults()
	rc, err := registry.New(context.Background(), registry.Options{Registries: cfg.Registries, Timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rc.CloseIdleConnections)
	x, err := resolve.NewIndexes(resolve.IndexesOptions{Registry: rc, MaxBytes: 16 << 20})
	if err != nil {
		t.Fatal(err)
	}
	return x, rc
}

func mustParse(t *testing.T, s string) imageref.Ref {
	t.Helper()
	r, err := imageref.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestIndexSharedAcrossRepositories: the same index digest in two repositories is one content:
// the first key reads and decodes it, the keys of the other repository (which resolved the
// digest there with their own HEAD) use that list, through /v1/resolve and directly.
func TestIndexSharedAcrossRepositories(t *testing.T) {
	f := newFixture(t, nil)
	f.reg.Hostile(registrytest.PathContains("/team/big"), registrytest.Content(ociIndex, registrytest.BigIndex(100)))
	for _, key := range []string{f.host + "/team/big:v1", f.host + "/team/big2:v1", f.host + "/team/big:v2"} {
		f.reg.ResetCounts()
		it := f.svc.Resolve(context.Background(), []string{key})[0]
		if v := decodeValue(t, it); *v.PlatformsTotal != 100 {
			t.Fatalf("Resolve(%s): platformsTotal %d, want 100", key, *v.PlatformsTotal)
		}
		want := 0
		if strings.HasSuffix(key, "big:v1") {
			want = 1 // the first key
		}
		if got := f.reg.Count(http.MethodGet, "manifests"); got != want {
			t.Errorf("Resolve(%s): index GETs = %d, want %d", key, got, want)
		}
	}

	x := newIndexes(t, f)
	sum := sha256.Sum256(registrytest.BigIndex(100))
	digest := "sha256:" + hex.EncodeToString(sum[:])
	f.reg.ResetCounts()
	for _, repo := range []string{"team/big", "team/big2", "team/big", "team/big2"} {
		if _, err := x.Platforms(context.Background(), mustParse(t, f.host+"/"+repo+":v1"), digest); err != nil {
			t.Fatalf("Platforms(%s) = %v", repo, err)
		}
	}
	if got := f.reg.Count(http.MethodGet, "manifests"); got != 1 {
		t.Errorf("index GETs for one digest in two repositories, twice each = %d, want 1", got)
	}
}

// TestIndexErrorsAreNotCached: an index whose body does not hash to its digest, an outage, an
// index over the 256 KiB cap and an index that is not JSON each fail with their class and
// leave nothing in memory: the next lookup reads again, and once the registry serves the right
// content that is what is kept.
func TestIndexErrorsAreNotCached(t *testing.T) {
	digestOf := func(b []byte) string {
		sum := sha256.Sum256(b)
		return "sha256:" + hex.EncodeToString(sum[:])
	}
	good := registrytest.BigIndex(10)
	digest := digestOf(good)
	notJSON := []byte(`{"manifests":[`)
	tests := []struct {
		name   string
		digest string // what is asked for
		setup  func(*registrytest.Registry)
		class  wire.Class
		want   string
		// recovers: the registry then serves good under digest.
		recovers bool
	}{
		{"digest mismatch", digest, func(r *registrytest.Registry) {
			// The registry claims digest for a different body (a tenant's or mirror's swap).
			evil := registrytest.Content(ociIndex, registrytest.BigIndex(11))
			r.Hostile(registrytest.PathContains("/team/big/manifests/"), http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
				evil.ServeHTTP(&fixedDigest{ResponseWriter: w, digest: digest}, req)
			}))
		}, wire.ClassUnavailable, "content digest is", true},
		{"outage", digest, func(r *registrytest.Registry) { r.Fail(http.StatusServiceUnavailable) }, wire.ClassUnavailable, "503", true},
		{"over 256 KiB", digestOf(registrytest.BigIndex(2000)), func(r *registrytest.Registry) {
			r.Hostile(registrytest.PathContains("/team/big/manifests/"), registrytest.Content(ociIndex, registrytest.BigIndex(2000)))
		}, wire.ClassLimitExceeded, "(lookup.maxIndexBytes) is larger than 262144 bytes", false},
		{"not JSON", digestOf(notJSON), func(r *registrytest.Registry) {
			r.Hostile(registrytest.PathContains("/team/big/manifests/"), registrytest.Content(ociIndex, notJSON))
		}, wire.ClassInvalidManifest, "is not valid", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, nil)
			x := newIndexes(t, f)
			ref := mustParse(t, f.host+"/team/big:v1")
			tt.setup(f.reg)
			for range 2 {
				f.reg.ResetCounts()
				idx, err := x.Platforms(context.Background(), ref, tt.digest)
				if _, c := wire.ErrorMessage(registry.Classify(ref.Original, err)); err == nil || c != tt.class || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("Platforms() = %v, %v (class %q), want a %q error containing %q", idx, err, c, tt.class, tt.want)
				}
				if got := f.reg.Total(); got == 0 {
					t.Errorf("registry requests = 0, want the index asked for again (an error is not kept)")
				}
				if b := x.Bytes(); b != 0 {
					t.Errorf("Indexes.Bytes() after %s = %d, want 0", tt.name, b)
				}
			}
			if !tt.recovers {
				return
			}
			f.reg.Fail(0)
			f.reg.Hostile(registrytest.PathContains("/team/big/manifests/"), registrytest.Content(ociIndex, good))
			for _, want := range []int{1, 0} { // read once, then kept
				f.reg.ResetCounts()
				idx, err := x.Platforms(context.Background(), ref, digest)
				if err != nil || len(idx.Entries) != 10 {
					t.Fatalf("Platforms() after the registry recovered = %v, %v; want 10 entries", idx, err)
				}
				if got := f.reg.Count(http.MethodGet, "manifests"); got != want {
					t.Errorf("index GETs after recovery = %d, want %d", got, want)
				}
			}
		})
	}
}

// fixedDigest keeps the Docker-Content-Digest header its handler set first.
type fixedDigest struct {
	http.ResponseWriter
	digest string
	done   atomic.Bool
}

func (w *fixedDigest) WriteHeader(code int) {
	if w.done.CompareAndSwap(false, true) {
		w.Header().Set("Docker-Content-Digest", w.digest)
	}
	w.ResponseWriter.WriteHeader(code)
}

// TestConcurrentTagsShareOneFailure: keys waiting for a read that finds an invalid index all
// fail "invalid manifest:" naming their own key, from that one read (nothing is kept: see
// TestIndexErrorsAreNotCached).
func TestConcurrentTagsShareOneFailure(t *testing.T) {
	const n = 4
	f := newFixture(t, nil)
	content := registrytest.Content(ociIndex, []byte(`{"manifests":"all of them"}`))
	f.reg.Hostile(registrytest.PathContains("/team/bad/manifests/"), http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method == http.MethodGet {
			if got := waitPlatforms(n, time.Minute); got < n {
				t.Errorf("%d keys wait for the index read after a minute, want %d", got, n)
			}
		}
		content.ServeHTTP(w, req)
	}))
	var wg sync.WaitGroup
	results := make([]wire.Item, n)
	classes := make([]wire.Class, n)
	for i := range n {
		wg.Go(func() {
			items, cs := f.svc.ResolveLookup(context.Background(), []string{fmt.Sprintf("%s/team/bad:t%d", f.host, i)})
			results[i], classes[i] = items[0], cs[0]
		})
	}
	wg.Wait()
	for i, it := range results {
		if !strings.HasPrefix(it.Error, "invalid manifest: "+it.Key+": index sha256:") || classes[i] != wire.ClassInvalidManifest {
			t.Errorf("Resolve(%s) = %+v (class %q), want \"invalid manifest:\" naming the key", it.Key, it, classes[i])
		}
	}
	if got := f.reg.Count(http.MethodGet, "manifests"); got != 1 {
		t.Errorf("index GETs for %d concurrent tags = %d, want 1", n, got)
	}
}

// TestIndexSharedWithVerify: /v1/verify and /v1/resolve on one Indexes (as the provider wires
// them) read an index once between them: verify lists the platforms of one tag, resolve
// answers another tag of the index without a GET.
func TestIndexSharedWithVerify(t *testing.T) {
	f := newFixture(t, nil)
	f.reg.Hostile(registrytest.PathContains("/team/big/manifests/"), registrytest.Content(ociIndex, registrytest.BigIndex(1000)))
	x, rc := newIndexesClient(t, f)
	pool, err := batch.NewPool(8, nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := cache.New[resolve.Answer](cache.Options{Name: "resolve", MaxEntries: 100, TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	refs := imageref.NewMemo(64)
	rs, err := resolve.New(resolve.Options{
		Registry: rc, Refs: refs, Pool: pool, Cache: c, Indexes: x,
		ResolveDeadline: time.Minute, MutateDeadline: time.Minute, LoadTimeout: time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	vs, err := verify.New(context.Background(), verify.Options{Registry: rc, Refs: refs, Pool: pool, Deadline: time.Minute, Indexes: x})
	if err != nil {
		t.Fatal(err)
	}
	f.reg.ResetCounts()
	v, err := vs.Lookup(context.Background(), mustParse(t, f.host+"/team/big:v1"))
	if err != nil || v.PlatformsTotal != 1000 {
		t.Fatalf("verify Lookup(team/big:v1) = %+v, %v; want 1000 platforms", v, err)
	}
	it := rs.Resolve(context.Background(), []string{f.host + "/team/big:v2"})[0]
	if rv := decodeValue(t, it); *rv.PlatformsTotal != 1000 {
		t.Fatalf("Resolve(team/big:v2): platformsTotal %d, want 1000", *rv.PlatformsTotal)
	}
	if got := f.reg.Count(http.MethodGet, "manifests"); got != 1 {
		t.Errorf("index GETs for verify of one tag and resolve of another = %d, want 1", got)
	}
}
