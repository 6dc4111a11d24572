package verify

import (
	"context"
	"maps"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/imagetrust/imagetrust/provider/internal/batch"
	"github.com/imagetrust/imagetrust/provider/internal/cache"
	"github.com/imagetrust/imagetrust/provider/internal/config"
	"github.com/imagetrust/imagetrust/provider/internal/imageref"
	"github.com/imagetrust/imagetrust/provider/internal/registry"
)

// newCachedService is a Service with answer caches for both plans (TTL an hour).
func newCachedService(t *testing.T, e *env, auths ...config.Authority) (*Service, *cache.Cache[*Value]) {
	t.Helper()
	newCache := func(n string) *cache.Cache[*Value] {
		c, err := cache.New[*Value](cache.Options{Name: n, MaxEntries: 100, TTL: time.Hour, NotFoundTTL: 30 * time.Second, Negative: registry.IsNegative})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	pool, err := batch.NewPool(8, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := newCache("verify")
	s, err := New(context.Background(), Options{Authorities: auths, Registry: e.reg, Refs: imageref.NewMemo(1024), Pool: pool,
		Cache: c, UnsignedTTL: 30 * time.Second, Deadline: 30 * time.Second,
		Signatures: Endpoint{Cache: newCache("verify-signatures")}})
	if err != nil {
		t.Fatal(err)
	}
	return s, c
}

// tagAs points tag (in d's repository) at d.
func tagAs(t *testing.T, d name.Digest, tag string) {
	t.Helper()
	desc, err := remote.Get(d)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Tag(d.Context().Tag(tag), desc); err != nil {
		t.Fatal(err)
	}
}

// TestOneEntryPerDigest: the tags of one image, its digest form and name:tag@digest share one
// verification and one cached per-digest part. After the first tag is verified, a second tag
// costs one HEAD (the tag), the digest form no request at all, and name:tag@digest one HEAD (its
// tag, for drift); no signature is read again, and the cached values of the tag and digest keys
// are the one part. Each answer still names its own image and tagDigest, and drift is reported
// per key.
func TestOneEntryPerDigest(t *testing.T) {
	e := newEnv(t)
	k := newKey(t, "ecdsa")
	s, c := newCachedService(t, e, keyAuthorityCfg("release", k))

	d := e.push(t, "shared", "v1")
	signImage(t, d, k)
	tagAs(t, d, "v2")
	other := e.push(t, "shared", "v3") // v3 points at another image: drift for v3@d
	repo := d.Context().Name()
	v1Key, v2Key, digestKey := repo+":v1", repo+":v2", repo+"@"+d.DigestStr()
	pinnedKey, driftKey := repo+":v2@"+d.DigestStr(), repo+":v3@"+d.DigestStr()

	if v := verifyOne(t, s, v1Key); !v.Signed {
		t.Fatalf("%s: signed = false, want true", v1Key)
	}
	first := e.resetRequests()

	for _, tc := range []struct {
		key       string
		requests  map[string]int
		tagDigest string
	}{
		{v2Key, map[string]int{"HEAD manifests": 1}, d.DigestStr()},
		{digestKey, map[string]int{}, ""},
		{pinnedKey, map[string]int{"HEAD manifests": 1}, d.DigestStr()},
		{driftKey, map[string]int{"HEAD manifests": 1}, other.DigestStr()},
	} {
		v := verifyOne(t, s, tc.key)
		got := e.resetRequests()
		if !maps.Equal(got, tc.requests) {
			t.Errorf("%s: registry requests %v, want %v (the first tag cost %v)", tc.key, got, tc.requests, first)
		}
		ref, err := imageref.Parse(tc.key)
		if err != nil {
			t.Fatal(err)
		}
		if !v.Signed || v.Image != ref.Normalized() || v.Digest != d.DigestStr() || v.TagDigest != tc.tagDigest || v.TagError != "" {
			t.Errorf("%s: image %q digest %q tagDigest %q tagError %q signed %v; want %q %q %q, no tagError, signed",
				tc.key, v.Image, v.Digest, v.TagDigest, v.TagError, v.Signed, ref.Normalized(), d.DigestStr(), tc.tagDigest)
		}
	}

	// The cache: one entry per key, the tag and digest keys holding the one per-digest part,
	// the name:tag@digest keys a per-key value pointing at it.
	parts := map[*Value]bool{}
	for _, key := range []string{v1Key, v2Key, digestKey, pinnedKey, driftKey} {
		ref, err := imageref.Parse(key)
		if err != nil {
			t.Fatal(err)
		}
		v, _, ok := c.Fresh(cacheKey(ref))
		if !ok || v == nil {
			t.Fatalf("%s: not cached", key)
		}
		parts[v.shared()] = true
	}
	if len(parts) != 1 || s.parts[true].Len() != 1 {
		t.Errorf("cached per-digest parts: %d distinct in the cache, %d in the table; want 1 and 1", len(parts), s.parts[true].Len())
	}
	if n := c.Len(); n != 5 {
		t.Errorf("cache entries = %d, want 5 (one per key)", n)
	}
}

// TestOneVerificationPerDigestInABatch: two tags of one image in one batch are verified once:
// the batch reads the signature manifests as often as one key of another image does.
func TestOneVerificationPerDigestInABatch(t *testing.T) {
	e := newEnv(t)
	k := newKey(t, "ecdsa")
	s, _ := newCachedService(t, e, keyAuthorityCfg("release", k))

	d := e.push(t, "pair", "a")
	signImage(t, d, k)
	tagAs(t, d, "b")
	single := e.push(t, "single", "a")
	signImage(t, single, k)
	e.resetRequests()

	items := s.Verify(context.Background(), []string{single.Context().Name() + ":a"})
	one := e.resetRequests()
	repo := d.Context().Name()
	items = append(items, s.Verify(context.Background(), []string{repo + ":a", repo + ":b"})...)
	two := e.resetRequests()
	for _, it := range items {
		if it.Error != "" || !valueOf(t, it).Signed {
			t.Errorf("%s: %+v, want signed", it.Key, it)
		}
	}
	if two["GET manifests"] != one["GET manifests"] || two["HEAD manifests"] != one["HEAD manifests"]+1 {
		t.Errorf("two tags of one image: requests %v; one key: %v; want the same GETs and one more HEAD", two, one)
	}
}

// TestSharedPartExpires: a signed part older than the cache TTL, and an unsigned one older than
// UnsignedTTL, is verified again when a new tag of the image arrives — sharing never serves an
// answer older than a per-key cache would.
func TestSharedPartExpires(t *testing.T) {
	e := newEnv(t)
	k := newKey(t, "ecdsa")
	s, _ := newCachedService(t, e, keyAuthorityCfg("release", k))
	clk := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	s.now = clk.Now

	d := e.push(t, "expiry", "v1")
	repo := d.Context().Name()
	if v := verifyOne(t, s, repo+":v1"); v.Signed {
		t.Fatal("unsigned image: signed = true")
	}
	signImage(t, d, k)
	tagAs(t, d, "v2")
	clk.Add(10 * time.Second)
	if v := verifyOne(t, s, repo+":v2"); v.Signed {
		t.Errorf("v2 within UnsignedTTL: signed = true, want the shared unsigned part")
	}
	tagAs(t, d, "v3")
	clk.Add(25 * time.Second)
	if v := verifyOne(t, s, repo+":v3"); !v.Signed {
		t.Errorf("v3 after UnsignedTTL: signed = false, want the image verified again (signed meanwhile)")
	}
	tagAs(t, d, "v4")
	e.resetRequests()
	clk.Add(2 * time.Hour)
	if v := verifyOne(t, s, repo+":v4"); !v.Signed {
		t.Errorf("v4: signed = false")
	}
	if got := e.resetRequests(); got["GET manifests"] == 0 {
		t.Errorf("v4 after the cache TTL: requests %v, want the signatures read again", got)
	}
}
