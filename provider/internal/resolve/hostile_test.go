package resolve_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/imagetrust/imagetrust/provider/internal/batch"
	"github.com/imagetrust/imagetrust/provider/internal/cache"
	"github.com/imagetrust/imagetrust/provider/internal/config"
	"github.com/imagetrust/imagetrust/provider/internal/imageref"
	"github.com/imagetrust/imagetrust/provider/internal/registry"
	"github.com/imagetrust/imagetrust/provider/internal/registry/registrytest"
	"github.com/imagetrust/imagetrust/provider/internal/resolve"
	"github.com/imagetrust/imagetrust/provider/internal/wire"
)

const ociIndex = "application/vnd.oci.image.index.v1+json"

// resolveValue is the /v1/resolve value's platform fields.
type resolveValue struct {
	Platforms          []resolve.Platform `json:"platforms"`
	PlatformsTotal     *int               `json:"platformsTotal"`
	PlatformsTruncated *bool              `json:"platformsTruncated"`
}

func decodeValue(t *testing.T, it wire.Item) resolveValue {
	t.Helper()
	if it.Error != "" {
		t.Fatalf("Resolve(%q) error = %s, want a value", it.Key, it.Error)
	}
	var v resolveValue
	if err := json.Unmarshal(it.Value.(wire.Encoded), &v); err != nil {
		t.Fatalf("Resolve(%q) value %s: %v", it.Key, it.Value, err)
	}
	if v.PlatformsTotal == nil || v.PlatformsTruncated == nil {
		t.Fatalf("Resolve(%q) = %s, want platformsTotal and platformsTruncated", it.Key, it.Value)
	}
	return v
}

// TestPlatformListIsCapped: a legal index of 1,000 platforms (under the 256 KiB index cap) is
// answered with the first lookup.maxPlatforms of them, its total and a truncation flag, so one
// tenant's index cannot make an answer (and a cache entry) of megabytes; an index within the
// cap is listed whole.
func TestPlatformListIsCapped(t *testing.T) {
	const entries = 1000
	big := registrytest.BigIndex(entries)
	if len(big) > config.DefaultMaxIndexBytes {
		t.Fatalf("BigIndex(%d) is %d bytes, over the %d-byte index cap the test must stay under", entries, len(big), config.DefaultMaxIndexBytes)
	}
	tests := []struct {
		name      string
		max       int
		repo      string
		wantLen   int
		wantTotal int
	}{
		{"1,000-platform index, default cap", 0, "team/big:v1", config.DefaultMaxPlatforms, entries},
		{"two-platform index, cap 1", 1, "team/multi:v1", 1, 2},
		{"two-platform index, cap 2", 2, "team/multi:v1", 2, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, func(c *config.Config) { c.Lookup.MaxPlatforms = tt.max })
			f.reg.Hostile(registrytest.PathContains("/team/big/manifests/"), registrytest.Content(ociIndex, big))
			key := f.host + "/" + tt.repo
			items := f.svc.Resolve(context.Background(), []string{key})
			v := decodeValue(t, items[0])
			if len(v.Platforms) != tt.wantLen || *v.PlatformsTotal != tt.wantTotal || *v.PlatformsTruncated != (tt.wantTotal > tt.wantLen) {
				t.Errorf("Resolve(%s): %d platforms, platformsTotal %d, platformsTruncated %v; want %d, %d, %v",
					key, len(v.Platforms), *v.PlatformsTotal, *v.PlatformsTruncated, tt.wantLen, tt.wantTotal, tt.wantTotal > tt.wantLen)
			}
			if n := len(items[0].Value.(wire.Encoded)); n > 64<<10 {
				t.Errorf("Resolve(%s) answer is %d bytes, want at most 64 KiB", key, n)
			}
		})
	}
}

// TestHugePlatformFieldIsLimitExceeded: an index entry whose platform strings are longer than
// registry.MaxPlatformFieldBytes is not echoed: the key is "limit exceeded:".
func TestHugePlatformFieldIsLimitExceeded(t *testing.T) {
	f := newFixture(t, nil)
	idx := `{"schemaVersion":2,"mediaType":"` + ociIndex + `","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:` +
		strings.Repeat("b", 64) + `","size":1,"platform":{"os":"linux","architecture":"` + strings.Repeat("x", 128<<10) + `"}}]}`
	f.reg.Hostile(registrytest.PathContains("/team/big/manifests/"), registrytest.Content(ociIndex, []byte(idx)))
	items, classes := f.svc.ResolveLookup(context.Background(), []string{f.host + "/team/big:v1"})
	if !strings.HasPrefix(items[0].Error, "limit exceeded: a platform field of an index entry is larger than 128 bytes") || classes[0].Transient() {
		t.Errorf("Resolve(index with a 128 KiB architecture) = %+v, want a non-transient limit exceeded error naming the platform field cap", items[0])
	}
}

// TestInvalidIndexIsNotTransient: an index that is not valid JSON (or nests deeper than a
// decoder follows) is "invalid manifest:" — the bytes behind a digest never change, so it is
// not an outage failOpen may admit — and the answer is cached like other final answers.
func TestInvalidIndexIsNotTransient(t *testing.T) {
	for _, tt := range []struct {
		name string
		body []byte
	}{
		{"not JSON", []byte(`{"schemaVersion":2,"manifests":[{"mediaType":`)},
		{"nested 100,000 deep", registrytest.NestedJSON(100000)},
		{"wrong type", []byte(`{"schemaVersion":2,"manifests":"all of them"}`)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, nil)
			f.reg.Hostile(registrytest.PathContains("/team/bad/manifests/"), registrytest.Content(ociIndex, tt.body))
			key := f.host + "/team/bad:v1"
			items, classes := f.svc.ResolveLookup(context.Background(), []string{key})
			if !strings.HasPrefix(items[0].Error, "invalid manifest: "+key+": index sha256:") || classes[0] != wire.ClassInvalidManifest || classes[0].Transient() {
				t.Fatalf("Resolve(%s) = %+v (class %q), want a non-transient \"invalid manifest:\" error naming the index", key, items[0], classes[0])
			}
			f.reg.ResetCounts()
			f.svc.Resolve(context.Background(), []string{key})
			if n := f.reg.Total(); n != 0 {
				t.Errorf("registry requests for the same key again = %d, want 0 (a final answer, cached)", n)
			}
		})
	}
}

// TestResolveRequestBudget: a key that needs more registry requests than its budget is
// "limit exceeded:" (not "timed out:", which failOpen admits), and its requests stop at the
// budget.
func TestResolveRequestBudget(t *testing.T) {
	f := newFixture(t, nil)
	cfg := config.Config{Registries: []config.Registry{{Host: f.host, Insecure: true}}}
	cfg.ApplyDefaults()
	rc, err := registry.New(context.Background(), registry.Options{Registries: cfg.Registries, Timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rc.CloseIdleConnections)
	pool, err := batch.NewPool(8, nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := cache.New[resolve.Answer](cache.Options{Name: "resolve", MaxEntries: 100, TTL: time.Minute, NotFoundTTL: time.Second, Negative: registry.IsNegative})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := resolve.New(resolve.Options{
		Registry: rc, Refs: imageref.NewMemo(64), Pool: pool, Cache: c,
		ResolveDeadline: 30 * time.Second, MutateDeadline: 30 * time.Second, LoadTimeout: 30 * time.Second,
		// The first key's ping tries HTTPS, then plain HTTP (an insecure registry), then HEAD; the
		// ping is remembered after that: an index costs HEAD + GET.
		RequestBudget: 3,
	})
	if err != nil {
		t.Fatal(err)
	}
	// Warm the client's ping memo with an image (two pings + HEAD: within 3).
	f.reg.ResetCounts()
	if items := svc.Resolve(context.Background(), []string{f.host + "/team/app:v1"}); items[0].Error != "" {
		t.Fatalf("Resolve(team/app:v1) = %s, want a value within a budget of 3 (%d requests)", items[0].Error, f.reg.Total())
	}
	// An index costs HEAD + GET: within the budget.
	if items := svc.Resolve(context.Background(), []string{f.host + "/team/multi:v1"}); items[0].Error != "" {
		t.Fatalf("Resolve(team/multi:v1) = %s, want a value (HEAD + GET is within 3)", items[0].Error)
	}
	// A registry that answers every manifest request with a redirect to itself: each hop is
	// a request of the key's budget.
	loop := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		http.Redirect(w, req, req.URL.Path+"x", http.StatusTemporaryRedirect)
	})
	f.reg.Hostile(registrytest.PathContains("/team/loop/"), loop)
	f.reg.ResetCounts()
	items, classes := svc.ResolveLookup(context.Background(), []string{f.host + "/team/loop:v1"})
	if !strings.HasPrefix(items[0].Error, "limit exceeded: the image needs more than 3 registry requests") || classes[0].Transient() {
		t.Errorf("Resolve(redirect loop) = %+v, want a non-transient limit exceeded naming the budget of 3", items[0])
	}
	if n := f.reg.Total(); n > 3 {
		t.Errorf("registry requests for the redirect loop = %d, want at most the budget 3", n)
	}
}

// TestOversizedHeaders: a registry answering with a 2 MB Content-Type or a 2 MB header set is
// cut at registry.MaxResponseHeaderBytes: 16 keys answer "limit exceeded:" within the
// deadline, allocating a few MB (net/http alone would read 10 MiB of headers per response).
func TestOversizedHeaders(t *testing.T) {
	for _, tt := range []struct {
		name string
		h    func(*registrytest.Registry) http.Handler
	}{
		{"2 MB Content-Type", func(r *registrytest.Registry) http.Handler {
			return registrytest.HugeHeader("Content-Type", 2<<20, r.Next())
		}},
		{"2,000 headers of 1 KiB", func(r *registrytest.Registry) http.Handler {
			return registrytest.ManyHeaders(2000, 1024, r.Next())
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, func(c *config.Config) {
				c.Endpoints.Resolve.Deadline = config.Duration(5 * time.Second)
			})
			f.reg.Hostile(registrytest.PathContains("/manifests/"), tt.h(f.reg))
			keys := make([]string, 16)
			for i := range keys {
				keys[i] = fmt.Sprintf("%s/team/app%d:v1", f.host, i)
			}
			runtime.GC()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			start := time.Now()
			items, classes := f.svc.ResolveLookup(context.Background(), keys)
			took := time.Since(start)
			runtime.ReadMemStats(&after)
			for i, it := range items {
				if !strings.HasPrefix(it.Error, "limit exceeded: registry response headers") || classes[i].Transient() {
					t.Errorf("Resolve(%s) = %+v, want a non-transient limit exceeded naming the response headers", it.Key, it)
				}
			}
			if took > 5*time.Second {
				t.Errorf("Resolve(16 keys) took %v, want within the 5s deadline", took)
			}
			if grew := after.TotalAlloc - before.TotalAlloc; grew > 32<<20 {
				t.Errorf("TotalAlloc grew %d MB for 16 keys, want at most 32 MB (net/http alone: 50-190 MB)", grew>>20)
			}
		})
	}
}
