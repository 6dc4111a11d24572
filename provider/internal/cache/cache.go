// Package cache is a bounded LRU answer cache with a TTL for answers, a shorter TTL for
// negative answers ("not found"), singleflight for concurrent identical lookups and
// stale-if-error: during an outage an expired answer is served, reported as stale, for at most
// MaxStale after it expired. Transient failures are never cached.
package cache

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/singleflight"
)

// Options configures a Cache. MaxEntries and TTL are required.
type Options struct {
	// Name labels the metrics ("resolve", "verify", …).
	Name string
	// MaxEntries bounds the number of entries (answers and negative answers).
	MaxEntries int
	// MaxBytes bounds the memory the entries hold, as estimated by their sizes (see Sizer),
	// keys and bookkeeping included; the least recently used entries are evicted beyond it
	// (optional; 0: bounded by MaxEntries only).
	MaxBytes int64
	// TTL of an answer.
	TTL time.Duration
	// NotFoundTTL of a negative answer (an error for which Negative returns true).
	NotFoundTTL time.Duration
	// MaxStale is how long after expiry an answer may still be served when a refresh fails
	// with a transient error (0: never).
	MaxStale time.Duration
	// Negative reports whether an error is a final answer from the registry that may be cached
	// for NotFoundTTL (not found, denied). Every other error is transient and never cached.
	// Nil: no error is cached.
	Negative func(error) bool
	// Now is the clock (default time.Now); tests inject their own.
	Now func() time.Time
	// Registerer receives the cache metrics (nil: not registered).
	Registerer prometheus.Registerer
}

// Result is what Get returns with a value.
type Result[V any] struct {
	Value V
	// Stale is true when Value expired and was served because the refresh failed.
	Stale bool
	// Hit is true when no loader ran for this call.
	Hit bool
}

type entry[V any] struct {
	key        string
	val        V
	err        error // a negative answer
	expires    int64 // unix nanoseconds
	size       int64 // estimated bytes held (see entrySize)
	prev, next *entry[V]
}

// Sizer is implemented by values that know how many bytes they hold (their own allocations,
// not shared data); a value that does not implement it counts as entryOverhead bytes.
type Sizer interface {
	CacheBytes() int
}

// entryOverhead estimates the bytes of one entry besides its key and value: the entry (64
// bytes), its map slot and the map's spare capacity.
const entryOverhead = 112

func entrySize[V any](key string, v V, err error) int64 {
	n := entryOverhead + len(key)
	if err != nil {
		n += len(err.Error()) // a negative answer holds its error, not a value
	} else if s, ok := any(v).(Sizer); ok {
		n += s.CacheBytes()
	}
	return int64(n)
}

// Cache is safe for concurrent use.
type Cache[V any] struct {
	o   Options
	now func() time.Time

	mu         sync.Mutex
	items      map[string]*entry[V]
	head, tail *entry[V] // head: most recently used
	bytes      int64     // sum of the entries' sizes

	group singleflight.Group
	m     *metrics
}

// New returns an empty cache.
func New[V any](o Options) (*Cache[V], error) {
	if o.MaxEntries <= 0 {
		return nil, fmt.Errorf("cache %q: MaxEntries must be > 0, got %d", o.Name, o.MaxEntries)
	}
	if o.TTL <= 0 {
		return nil, fmt.Errorf("cache %q: TTL must be > 0, got %s", o.Name, o.TTL)
	}
	if o.MaxBytes < 0 {
		return nil, fmt.Errorf("cache %q: MaxBytes must not be negative, got %d", o.Name, o.MaxBytes)
	}
	if o.NotFoundTTL < 0 || o.MaxStale < 0 {
		return nil, fmt.Errorf("cache %q: NotFoundTTL and MaxStale must not be negative", o.Name)
	}
	// The map grows with use: sizing it for MaxEntries up front cost 3-4 MB per cache at idle
	// (measured with a heap profile), also for caches that stay empty.
	c := &Cache[V]{o: o, now: o.Now, items: make(map[string]*entry[V])}
	if c.now == nil {
		c.now = time.Now
	}
	m, err := newMetrics(o.Registerer, o.Name)
	if err != nil {
		return nil, err
	}
	c.m = m
	return c, nil
}

// TTL is the TTL of an answer (Options.TTL).
func (c *Cache[V]) TTL() time.Duration { return c.o.TTL }

// Bytes is the estimated memory the entries hold (see Options.MaxBytes).
func (c *Cache[V]) Bytes() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bytes
}

// Len is the number of entries, expired ones included.
func (c *Cache[V]) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.items)
}

// Fresh returns an unexpired answer or negative answer without loading. ok is false when the
// key must be loaded. It counts a hit when ok.
func (c *Cache[V]) Fresh(key string) (v V, err error, ok bool) { //nolint:revive // error-return: comma-ok form, ok last as in a map lookup; err is a cached negative answer
	return c.FreshAt(key, c.now())
}

// Now is the cache's clock (Options.Now).
func (c *Cache[V]) Now() time.Time { return c.now() }

// FreshAt is Fresh as of now, a time from Now: a caller looking up a batch of keys reads the
// clock once for all of them.
func (c *Cache[V]) FreshAt(key string, now time.Time) (v V, err error, ok bool) { //nolint:revive // error-return: as Fresh
	at := now.UnixNano()
	c.mu.Lock()
	e := c.items[key]
	if e == nil || at >= e.expires {
		c.mu.Unlock()
		return v, nil, false
	}
	c.moveToFront(e)
	v, err = e.val, e.err
	c.mu.Unlock()
	c.m.hits.Inc()
	return v, err, true
}

// Get returns the answer for key, calling load at most once at a time per key when the key is
// missing or expired. load runs detached from ctx's cancellation (other callers may share it)
// and must bound its own duration. When ctx ends first, or load fails transiently, an expired
// answer within MaxStale is returned with Stale set; otherwise the error is returned.
func (c *Cache[V]) Get(ctx context.Context, key string, load func(context.Context) (V, error)) (Result[V], error) {
	if v, err, ok := c.Fresh(key); ok {
		return Result[V]{Value: v, Hit: true}, err
	}
	c.m.misses.Inc()
	ch := c.group.DoChan(key, func() (any, error) {
		v, err := load(context.WithoutCancel(ctx))
		c.store(key, v, err)
		return v, err
	})
	select {
	case r := <-ch:
		if r.Err == nil {
			return Result[V]{Value: r.Val.(V)}, nil
		}
		if c.negative(r.Err) {
			var zero V
			return Result[V]{Value: zero}, r.Err
		}
		if v, ok := c.stale(key); ok {
			return Result[V]{Value: v, Stale: true}, nil
		}
		var zero V
		return Result[V]{Value: zero}, r.Err
	case <-ctx.Done():
		if v, ok := c.stale(key); ok {
			return Result[V]{Value: v, Stale: true}, nil
		}
		var zero V
		return Result[V]{Value: zero}, context.Cause(ctx)
	}
}

func (c *Cache[V]) negative(err error) bool { return c.o.Negative != nil && c.o.Negative(err) }

// stale returns an expired answer (never a negative one) that is within MaxStale.
func (c *Cache[V]) stale(key string) (v V, ok bool) {
	if c.o.MaxStale <= 0 {
		return v, false
	}
	now := c.now().UnixNano()
	c.mu.Lock()
	e := c.items[key]
	if e == nil || e.err != nil || now >= e.expires+int64(c.o.MaxStale) {
		c.mu.Unlock()
		return v, false
	}
	v = e.val
	c.mu.Unlock()
	c.m.stale.Inc()
	return v, true
}

func (c *Cache[V]) store(key string, v V, err error) {
	ttl := c.o.TTL
	if err != nil {
		if !c.negative(err) || c.o.NotFoundTTL <= 0 {
			return // transient: never cached; an older answer stays for stale-if-error
		}
		ttl = c.o.NotFoundTTL
	}
	expires := c.now().Add(ttl).UnixNano()
	size := entrySize(key, v, err)
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.items[key]
	if e != nil {
		c.bytes += size - e.size
		e.val, e.err, e.expires, e.size = v, err, expires, size
		c.moveToFront(e)
	} else {
		e = &entry[V]{key: key, val: v, err: err, expires: expires, size: size}
		c.items[key] = e
		c.bytes += size
		c.pushFront(e)
	}
	// Evict the least recently used beyond either bound; the entry just stored stays, even
	// when it alone is over MaxBytes (the caller is using it).
	for c.tail != e && (len(c.items) > c.o.MaxEntries || (c.o.MaxBytes > 0 && c.bytes > c.o.MaxBytes)) {
		old := c.tail
		c.unlink(old)
		delete(c.items, old.key)
		c.bytes -= old.size
		c.m.evictions.Inc()
	}
	c.m.entries.Set(float64(len(c.items)))
	c.m.bytes.Set(float64(c.bytes))
}

// Put stores an answer (used to seed a cache and by tests).
func (c *Cache[V]) Put(key string, v V) { c.store(key, v, nil) }

func (c *Cache[V]) pushFront(e *entry[V]) {
	e.prev, e.next = nil, c.head
	if c.head != nil {
		c.head.prev = e
	}
	c.head = e
	if c.tail == nil {
		c.tail = e
	}
}

func (c *Cache[V]) unlink(e *entry[V]) {
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		c.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		c.tail = e.prev
	}
	e.prev, e.next = nil, nil
}

func (c *Cache[V]) moveToFront(e *entry[V]) {
	if c.head == e {
		return
	}
	c.unlink(e)
	c.pushFront(e)
}

type metrics struct {
	hits, misses, stale, evictions prometheus.Counter
	entries, bytes                 prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer, name string) (*metrics, error) {
	req := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "imagetrust_cache_requests_total",
		Help: "Cache lookups by result: hit (fresh answer), miss (loader ran or joined), stale (expired answer served during an outage).",
	}, []string{"cache", "result"})
	ev := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "imagetrust_cache_evictions_total",
		Help: "Entries evicted because the cache was full.",
	}, []string{"cache"})
	en := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "imagetrust_cache_entries",
		Help: "Entries in the cache, expired ones included.",
	}, []string{"cache"})
	by := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "imagetrust_cache_bytes",
		Help: "Estimated memory held by the cache's entries (keys, answers, bookkeeping), bounded by cache.maxBytes.",
	}, []string{"cache"})
	var err error
	if by, err = register(reg, by); err != nil {
		return nil, err
	}
	if req, err = register(reg, req); err != nil {
		return nil, err
	}
	if ev, err = register(reg, ev); err != nil {
		return nil, err
	}
	if en, err = register(reg, en); err != nil {
		return nil, err
	}
	return &metrics{
		hits:      req.WithLabelValues(name, "hit"),
		misses:    req.WithLabelValues(name, "miss"),
		stale:     req.WithLabelValues(name, "stale"),
		evictions: ev.WithLabelValues(name),
		entries:   en.WithLabelValues(name),
		bytes:     by.WithLabelValues(name),
	}, nil
}

// register registers c, returning the already registered collector when an identical one
// exists (several caches share one metric family, told apart by the "cache" label).
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if reg == nil {
		return c, nil
	}
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing, nil
			}
		}
		return c, fmt.Errorf("registering cache metrics: %w", err)
	}
	return c, nil
}
