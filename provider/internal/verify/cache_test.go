package verify

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/imagetrust/imagetrust/provider/internal/batch"
	"github.com/imagetrust/imagetrust/provider/internal/cache"
	"github.com/imagetrust/imagetrust/provider/internal/config"
	"github.com/imagetrust/imagetrust/provider/internal/imageref"
	"github.com/imagetrust/imagetrust/provider/internal/registry"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// TestCachedAnswers: signed answers are served from the cache for its TTL without registry
// requests; unsigned answers are looked up again after UnsignedTTL (a newly signed image is
// admitted soon); when that refresh finds the registry down, the old unsigned answer is served
// as stale, never turned into an error.
func TestCachedAnswers(t *testing.T) {
	e := newEnv(t)
	k := newKey(t, "ecdsa")
	clk := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	c, err := cache.New[*Value](cache.Options{Name: "verify", MaxEntries: 100, TTL: time.Hour, NotFoundTTL: 30 * time.Second,
		MaxStale: time.Hour, Negative: registry.IsNegative, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	pool, err := batch.NewPool(8, nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(context.Background(), Options{Authorities: []config.Authority{keyAuthorityCfg("release", k)},
		Registry: e.reg, Refs: imageref.NewMemo(1024), Pool: pool, Cache: c, UnsignedTTL: 30 * time.Second, Deadline: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	s.now = clk.Now

	signed := e.push(t, "cached-signed", "v1")
	signImage(t, signed, k)
	later := e.push(t, "cached-later", "v1")
	keys := []string{signed.String(), later.String()}

	items := s.Verify(context.Background(), keys)
	if !valueOf(t, items[0]).Signed || valueOf(t, items[1]).Signed {
		t.Fatalf("first lookup: signed = %v, %v, want true, false", valueOf(t, items[0]).Signed, valueOf(t, items[1]).Signed)
	}
	signImage(t, later, k)
	e.resetRequests()
	clk.Add(10 * time.Second)
	items = s.Verify(context.Background(), keys)
	if n := len(e.resetRequests()); n != 0 || valueOf(t, items[1]).Signed {
		t.Errorf("within UnsignedTTL: %d kinds of registry requests, signed = %v; want 0 and the cached unsigned answer", n, valueOf(t, items[1]).Signed)
	}

	clk.Add(25 * time.Second) // unsigned answer is 35s old, signed one still fresh
	items = s.Verify(context.Background(), keys)
	if !valueOf(t, items[1]).Signed {
		t.Errorf("after UnsignedTTL: signed = false, want true (the image was signed meanwhile): %s", dump(valueOf(t, items[1])))
	}
	got := e.resetRequests()
	if got["HEAD manifests"] != 1 {
		t.Errorf("after UnsignedTTL: registry requests = %v, want one image looked up again (1 HEAD)", got)
	}

	// Outage while an unsigned answer is refreshed: the unsigned answer is served as stale.
	unsigned := e.push(t, "cached-unsigned", "v1")
	if v := verifyOne(t, s, unsigned.String()); v.Signed {
		t.Fatalf("unsigned image: signed = true")
	}
	clk.Add(time.Minute)
	e.srv.Close()
	items = s.Verify(context.Background(), []string{unsigned.String(), signed.String()})
	if items[0].Error != "" || valueOf(t, items[0]).Signed || !valueOf(t, items[0]).Stale {
		t.Errorf("unsigned refresh during an outage = %+v, want the unsigned answer marked stale", items[0])
	}
	if items[1].Error != "" || !valueOf(t, items[1]).Signed {
		t.Errorf("signed answer during an outage = %+v, want the cached signed answer", items[1])
	}
}
