package cache_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/imagetrust/imagetrust/provider/internal/cache"
	"github.com/imagetrust/imagetrust/provider/internal/cache/cachetest"
)

var errNotFound = errors.New("not found: x")

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newCache(t *testing.T, clk *clock, reg prometheus.Registerer) *cache.Cache[string] {
	t.Helper()
	c, err := cache.New[string](cache.Options{
		Name: "test", MaxEntries: 3, TTL: time.Minute, NotFoundTTL: 10 * time.Second, MaxStale: time.Hour,
		Negative: func(err error) bool { return errors.Is(err, errNotFound) }, Now: clk.Now, Registerer: reg,
	})
	if err != nil {
		t.Fatalf("cache.New() = %v", err)
	}
	return c
}

// loader returns a load function answering with the given results in turn and counting calls.
func loader(calls *atomic.Int32, results ...any) func(context.Context) (string, error) {
	return func(context.Context) (string, error) {
		i := int(calls.Add(1)) - 1
		switch r := results[min(i, len(results)-1)].(type) {
		case error:
			return "", r
		default:
			return r.(string), nil
		}
	}
}

func TestTTLs(t *testing.T) {
	errDown := errors.New("unavailable: down")
	tests := []struct {
		name    string
		results []any
		advance []time.Duration // before each of the following Gets
		want    []string        // value or "err:<msg>" or "stale:<value>"
		calls   int32
	}{
		{"answer cached for TTL", []any{"a", "b"}, []time.Duration{0, 59 * time.Second, 2 * time.Second}, []string{"a", "a", "b"}, 2},
		{"not found cached for NotFoundTTL", []any{errNotFound, "b"}, []time.Duration{0, 9 * time.Second, 2 * time.Second}, []string{"err:" + errNotFound.Error(), "err:" + errNotFound.Error(), "b"}, 2},
		{"transient never cached", []any{errDown, "b"}, []time.Duration{0, 0}, []string{"err:" + errDown.Error(), "b"}, 2},
		{"stale if error within MaxStale", []any{"a", errDown}, []time.Duration{0, 2 * time.Minute, 30 * time.Minute}, []string{"a", "stale:a", "stale:a"}, 3},
		{"no stale after MaxStale", []any{"a", errDown}, []time.Duration{0, time.Minute + time.Hour + time.Second}, []string{"a", "err:" + errDown.Error()}, 2},
		{"not found replaces answer, no stale", []any{"a", errNotFound}, []time.Duration{0, 2 * time.Minute}, []string{"a", "err:" + errNotFound.Error()}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := &clock{t: time.Unix(1000, 0)}
			c := newCache(t, clk, nil)
			var calls atomic.Int32
			load := loader(&calls, tt.results...)
			for i, want := range tt.want {
				clk.Advance(tt.advance[i])
				r, err := c.Get(context.Background(), "k", load)
				got := r.Value
				switch {
				case err != nil:
					got = "err:" + err.Error()
				case r.Stale:
					got = "stale:" + r.Value
				}
				if got != want {
					t.Errorf("Get #%d = %q, want %q", i, got, want)
				}
			}
			if got := calls.Load(); got != tt.calls {
				t.Errorf("loader calls = %d, want %d", got, tt.calls)
			}
		})
	}
}

func TestLRUEviction(t *testing.T) {
	clk := &clock{t: time.Unix(1000, 0)}
	reg := prometheus.NewRegistry()
	c := newCache(t, clk, reg)
	for _, k := range []string{"a", "b", "c"} {
		c.Put(k, k)
	}
	if _, _, ok := c.Fresh("a"); !ok { // a is now most recently used
		t.Fatalf("Fresh(a) ok = false, want true")
	}
	c.Put("d", "d") // evicts b, the least recently used
	for k, want := range map[string]bool{"a": true, "b": false, "c": true, "d": true} {
		if _, _, ok := c.Fresh(k); ok != want {
			t.Errorf("Fresh(%s) ok = %v, want %v", k, ok, want)
		}
	}
	if got := c.Len(); got != 3 {
		t.Errorf("Len() = %d, want 3", got)
	}
	if got := testutil.ToFloat64(mustVec(t, reg, "imagetrust_cache_evictions_total")); got != 1 {
		t.Errorf("evictions = %v, want 1", got)
	}
}

// TestFreshAt: FreshAt judges expiry at the time it is given (one clock reading for a batch),
// Now is the cache's clock, and Fresh is FreshAt(Now()).
func TestFreshAt(t *testing.T) {
	clk := &clock{t: time.Unix(1000, 0)}
	c := newCache(t, clk, nil)
	c.Put("a", "A")
	batch := c.Now()
	if !batch.Equal(clk.Now()) {
		t.Fatalf("Now() = %v, want the clock's %v", batch, clk.Now())
	}
	clk.Advance(time.Minute) // a expires now
	if v, err, ok := c.FreshAt("a", batch); !ok || err != nil || v != "A" {
		t.Errorf("FreshAt(a, before expiry) = %q, %v, %v; want A, nil, true", v, err, ok)
	}
	if _, _, ok := c.FreshAt("a", batch.Add(time.Minute)); ok {
		t.Errorf("FreshAt(a, at expiry) ok = true, want false")
	}
	if _, _, ok := c.Fresh("a"); ok {
		t.Errorf("Fresh(a) after the TTL ok = true, want false")
	}
	if _, _, ok := c.FreshAt("b", batch); ok {
		t.Errorf("FreshAt(never put) ok = true, want false")
	}
}

func mustVec(t *testing.T, reg *prometheus.Registry, name string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return constCollector{v: mf.GetMetric()[0].GetCounter().GetValue(), name: name}
		}
	}
	t.Fatalf("metric %s not found", name)
	return nil
}

type constCollector struct {
	v    float64
	name string
}

func (c constCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- prometheus.NewDesc(c.name, "x", nil, nil)
}

func (c constCollector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(prometheus.NewDesc(c.name, "x", nil, nil), prometheus.CounterValue, c.v)
}

func TestSingleflight(t *testing.T) {
	clk := &clock{t: time.Unix(1000, 0)}
	c := newCache(t, clk, nil)
	var calls atomic.Int32
	release := make(chan struct{})
	started := make(chan struct{})
	load := func(context.Context) (string, error) {
		if calls.Add(1) == 1 {
			close(started)
		}
		<-release
		return "v", nil
	}
	const n = 32
	var wg sync.WaitGroup
	errs := make(chan error, n)
	go func() { _, _ = c.Get(context.Background(), "k", load) }()
	<-started
	for range n {
		wg.Go(func() {
			r, err := c.Get(context.Background(), "k", load)
			if err != nil || r.Value != "v" || r.Hit {
				errs <- fmt.Errorf("Get() = %+v, %v, want v from the shared load (not a cache hit)", r, err) //nolint:errorlint // a got/want message; err may be nil
			}
		})
	}
	// Release the load only once every caller waits for it inside Get (seen in the goroutine
	// stacks), so each one has joined the in-flight load, however slowly the machine runs.
	waitGetters(t, n+1)
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := calls.Load(); got != 1 {
		t.Errorf("loader calls = %d, want 1", got)
	}
}

// waitGetters waits until n goroutines are blocked in Cache.Get's select (waiting for a load
// or their context), polling the goroutine stacks with a generous overall bound.
func waitGetters(t *testing.T, n int) {
	t.Helper()
	if waiting := cachetest.WaitGetters(n, time.Minute); waiting < n {
		t.Fatalf("%d goroutines wait in Cache.Get, want %d", waiting, n)
	}
}

func TestCallerDeadlineServesStale(t *testing.T) {
	clk := &clock{t: time.Unix(1000, 0)}
	c := newCache(t, clk, nil)
	c.Put("k", "old")
	clk.Advance(2 * time.Minute)
	hang := make(chan struct{})
	defer close(hang)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	r, err := c.Get(ctx, "k", func(context.Context) (string, error) { <-hang; return "", errors.New("never") })
	if err != nil || !r.Stale || r.Value != "old" {
		t.Errorf("Get(hanging loader) = %+v, %v, want stale \"old\"", r, err)
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel2()
	if _, err := c.Get(ctx2, "other", func(context.Context) (string, error) { <-hang; return "", nil }); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Get(hanging loader, nothing cached) = %v, want context.DeadlineExceeded", err)
	}
}

func TestNewValidates(t *testing.T) {
	for _, o := range []cache.Options{{MaxEntries: 0, TTL: time.Second}, {MaxEntries: 1}, {MaxEntries: 1, TTL: time.Second, MaxStale: -1}} {
		if _, err := cache.New[string](o); err == nil {
			t.Errorf("cache.New(%+v) = nil error, want an error", o)
		}
	}
}

func BenchmarkFreshHit(b *testing.B) {
	c, _ := cache.New[string](cache.Options{MaxEntries: 100000, TTL: time.Hour})
	keys := make([]string, 50000)
	for i := range keys {
		keys[i] = fmt.Sprintf("registry.example/team/app%d:v1", i)
		c.Put(keys[i], "sha256:0123")
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, _, ok := c.Fresh(keys[i%len(keys)]); !ok {
				b.Fatal("miss")
			}
			i++
		}
	})
}

func BenchmarkGetMissLoad(b *testing.B) {
	c, _ := cache.New[string](cache.Options{MaxEntries: 50000, TTL: time.Hour})
	load := func(context.Context) (string, error) { return "sha256:0123", nil }
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, err := c.Get(context.Background(), fmt.Sprintf("k%d", i), load); err != nil {
			b.Fatal(err)
		}
	}
}
