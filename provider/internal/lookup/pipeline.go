// Package lookup is the one path every external-data endpoint runs on:
//
//	keys → parse (memo) → allow-list → cache (singleflight, stale-if-error) → worker pool →
//	per-key deadline → error class → encoded item
//
// An endpoint supplies only how to load one parsed, allowed reference (Options.Load) and how to
// render its answer (Options.Render). The caller (the server) owns the request deadline; the
// pipeline stops its lookups batch.Margin before it, the one margin of the provider.
package lookup

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/imagetrust/imagetrust/provider/internal/batch"
	"github.com/imagetrust/imagetrust/provider/internal/cache"
	"github.com/imagetrust/imagetrust/provider/internal/config"
	"github.com/imagetrust/imagetrust/provider/internal/imageref"
	"github.com/imagetrust/imagetrust/provider/internal/registry"
	"github.com/imagetrust/imagetrust/provider/internal/wire"
)

// Allower is the allow-list: it returns a *registry.NotAllowedError for a reference the
// provider may not look up. *registry.Client is one.
type Allower interface {
	Allowed(ref imageref.Ref) (config.Registry, error)
}

// Options configure a Pipeline. V is the answer an endpoint loads and caches.
type Options[V any] struct {
	// Name of the endpoint ("resolve", "verify"), used in messages (required).
	Name string
	// Refs parses keys like the container runtime, remembering recent ones (required).
	Refs *imageref.Memo
	// Registries is the allow-list, checked for every key before the cache and the pool
	// (required).
	Registries Allower
	// Pool bounds the loads in flight across all endpoints (required).
	Pool *batch.Pool
	// Deadline of the endpoint (required, > 0): a batch ends by it, or earlier when the caller's
	// context ends earlier (the server's context carries the request deadline, counted from
	// the request's arrival).
	Deadline time.Duration
	// LoadTimeout bounds one load; a load runs detached from the batch that started it, because
	// other batches may be waiting for it (required, > 0).
	LoadTimeout time.Duration
	// Load loads the answer for one parsed, allowed reference (required). Its errors are
	// classified with registry.Classify.
	Load func(ctx context.Context, ref imageref.Ref) (V, error)
	// Render turns an answer into the item's value (required): q is the key's query as Query
	// parsed it (nil: the key had none); stale reports an answer served after it expired
	// because the registry gave none.
	Render func(ref imageref.Ref, q any, v V, stale bool) (any, error)

	// Query, when set, lets a key carry a query after its reference, "<reference>#<query>"
	// ('#' is never part of a reference), which shapes the answer but not what is loaded: the
	// reference is parsed, allowed, cached and loaded as a key of its own, and Render gets what
	// Query made of the query. A query Query refuses is the key's error (class "invalid
	// query"). Each distinct query of a batch is parsed once. Optional: without it, '#' makes
	// a key an invalid reference, as on every endpoint that takes no query.
	Query func(q string) (any, error)

	// Cache keeps answers by CacheKey (optional: nil looks every key up).
	Cache *cache.Cache[V]
	// CacheKey is the key of a reference in Cache; references with the same key are loaded once
	// per batch (optional; default: the pull reference, imageref.Ref.Pull).
	CacheKey func(ref imageref.Ref) string
	// Direct answers a reference without a lookup when it returns true (optional; the mutation
	// of a reference that already has a digest).
	Direct func(ref imageref.Ref) (any, bool)
	// Refresh reports a cached answer that must be looked up again although the cache still
	// holds it (optional; unsigned verification answers). If that lookup fails with anything
	// but a final registry answer, the old answer is served as stale.
	Refresh func(v V) bool
	// RequestBudget is how many registry requests one load may send (optional; 0:
	// DefaultRequestBudget). A load over it fails "limit exceeded:" (registry.BudgetError),
	// which failOpen never admits. Budgets an endpoint sets inside Load spend from this one too.
	RequestBudget int64
}

// DefaultRequestBudget is the registry request budget of one load: far above what an image with
// dozens of platforms, mirrors and authorities needs, far below what content a tenant controls
// (an index of thousands of platforms, a referrer bomb, a redirect or token dance) could ask for.
const DefaultRequestBudget = 1024

// Pipeline answers batches of keys for one endpoint. Safe for concurrent use.
type Pipeline[V any] struct {
	o       Options[V]
	refresh singleflight.Group
}

// New checks the options and returns a Pipeline.
func New[V any](o Options[V]) (*Pipeline[V], error) {
	var missing []string
	if o.Name == "" {
		missing = append(missing, "Name")
	}
	if o.Refs == nil {
		missing = append(missing, "Refs")
	}
	if o.Registries == nil {
		missing = append(missing, "Registries")
	}
	if o.Pool == nil {
		missing = append(missing, "Pool")
	}
	if o.Deadline <= 0 {
		missing = append(missing, "Deadline")
	}
	if o.LoadTimeout <= 0 {
		missing = append(missing, "LoadTimeout")
	}
	if o.Load == nil {
		missing = append(missing, "Load")
	}
	if o.Render == nil {
		missing = append(missing, "Render")
	}
	if len(missing) > 0 {
		return nil, &OptionsError{Name: o.Name, Missing: missing}
	}
	if o.CacheKey == nil {
		o.CacheKey = imageref.Ref.Pull
	}
	if o.RequestBudget <= 0 {
		o.RequestBudget = DefaultRequestBudget
	}
	return &Pipeline[V]{o: o}, nil
}

// OptionsError names the required options a Pipeline was built without.
type OptionsError struct {
	Name    string
	Missing []string
}

func (e *OptionsError) Error() string {
	return "lookup " + e.Name + ": required options missing or not positive: " + strings.Join(e.Missing, ", ")
}

// Items answers keys without the classes (for in-process callers: CLIs, tests).
func (p *Pipeline[V]) Items(ctx context.Context, keys []string) []wire.Item {
	items, _ := p.Lookup(ctx, keys)
	return items
}

// miss is a key that needs a load.
type miss struct {
	i   int
	ref imageref.Ref
	q   any
	key string
}

// Lookup answers one batch: one item per key, in order, with the class of each item's error
// ("" for a value). It has the shape of server.Lookup.
func (p *Pipeline[V]) Lookup(ctx context.Context, keys []string) ([]wire.Item, []wire.Class) {
	a := answers[V]{p: p, items: make([]wire.Item, len(keys))}
	var misses []miss
	var now time.Time // the batch's one clock reading for the cache
	if p.o.Cache != nil {
		now = p.o.Cache.Now()
	}
	for i, k := range keys {
		a.items[i].Key = k
		image, q, err := a.split(k)
		if err != nil {
			a.fail(i, err)
			continue
		}
		ref, err := p.o.Refs.Parse(image)
		if err != nil {
			a.fail(i, err)
			continue
		}
		if _, err := p.o.Registries.Allowed(ref); err != nil {
			a.fail(i, err)
			continue
		}
		if p.o.Direct != nil {
			if v, ok := p.o.Direct(ref); ok {
				a.items[i].Value = v
				continue
			}
		}
		key := p.o.CacheKey(ref)
		if p.o.Cache != nil {
			if v, err, ok := p.o.Cache.FreshAt(key, now); ok && (err != nil || p.o.Refresh == nil || !p.o.Refresh(v)) {
				a.answer(i, ref, q, v, false, err)
				continue
			}
		}
		misses = append(misses, miss{i: i, ref: ref, q: q, key: key})
	}
	if len(misses) == 0 {
		return a.items, a.classes // warm: no deadline, timer or goroutine needed
	}
	ctx, cancel := context.WithTimeout(ctx, p.o.Deadline)
	defer cancel()
	loadKeys := make([]string, len(misses))
	refs := make(map[string]int, len(misses)) // cache key → a miss with it
	for j, m := range misses {
		loadKeys[j] = m.key
		refs[m.key] = j
	}
	// batch.Run loads each distinct key once and ends the loads' context batch.Margin before
	// ctx, so an answer served stale because the registry is slow is in before it gives up.
	res := batch.Run(ctx, loadKeys, func(ctx context.Context, key string) (cache.Result[V], error) {
		return p.get(ctx, misses[refs[key]].ref, key)
	})
	for j, r := range res {
		m := misses[j]
		a.answer(m.i, m.ref, m.q, r.Value.Value, r.Value.Stale, r.Err)
	}
	return a.items, a.classes
}

// get answers one key that was not fresh in the cache.
func (p *Pipeline[V]) get(ctx context.Context, ref imageref.Ref, key string) (cache.Result[V], error) {
	if p.o.Cache == nil {
		v, err := p.load(ctx, ref)
		return cache.Result[V]{Value: v}, err
	}
	r, err := p.o.Cache.Get(ctx, key, func(ctx context.Context) (V, error) { return p.load(ctx, ref) })
	if err != nil || !r.Hit || p.o.Refresh == nil || !p.o.Refresh(r.Value) {
		return r, err
	}
	return p.refreshed(ctx, ref, key, r.Value)
}

// refreshed looks a cached answer up again (once at a time per key) and replaces it. If the
// registry gives no final answer, the old answer is served as stale: an outage must not turn an
// answer into an error that failOpen would admit.
func (p *Pipeline[V]) refreshed(ctx context.Context, ref imageref.Ref, key string, old V) (cache.Result[V], error) {
	ch := p.refresh.DoChan(key, func() (any, error) {
		v, err := p.load(context.WithoutCancel(ctx), ref)
		if err == nil {
			p.o.Cache.Put(key, v)
		}
		return v, err
	})
	select {
	case r := <-ch:
		if r.Err == nil {
			return cache.Result[V]{Value: r.Val.(V)}, nil
		}
		if registry.IsNegative(r.Err) {
			var zero V
			return cache.Result[V]{Value: zero}, r.Err
		}
	case <-ctx.Done():
	}
	return cache.Result[V]{Value: old, Stale: true}, nil
}

// load runs Load on a worker of the pool, bounded by LoadTimeout and RequestBudget, and
// classifies its error.
func (p *Pipeline[V]) load(ctx context.Context, ref imageref.Ref) (V, error) {
	ctx, cancel := context.WithTimeout(ctx, p.o.LoadTimeout)
	defer cancel()
	ctx = registry.WithRequestBudget(ctx, p.o.RequestBudget)
	var v V
	err := p.o.Pool.DoFor(ctx, strings.ToLower(ref.Domain), func() (err error) {
		v, err = p.o.Load(ctx, ref)
		return err
	})
	if err != nil {
		var zero V
		return zero, registry.Classify(ref.Original, err)
	}
	return v, nil
}

// answers collects the items of one batch and the classes of their errors.
type answers[V any] struct {
	p       *Pipeline[V]
	items   []wire.Item
	classes []wire.Class // nil until the first error
	// query and parsed are the batch's last query and what Query made of it: the keys of
	// one constraint's call all carry the same query.
	query  string
	parsed any
}

// split splits key into its reference and its parsed query (nil when it has none, or the
// endpoint takes none).
func (a *answers[V]) split(key string) (string, any, error) {
	if a.p.o.Query == nil {
		return key, nil, nil
	}
	image, query, ok := strings.Cut(key, "#")
	if !ok {
		return key, nil, nil
	}
	if strings.Contains(query, "#") {
		// A reference never holds '#'; a second one means the image itself carried a query.
		return "", nil, &QueryError{Key: key, Err: errors.New("more than one '#'")}
	}
	if a.parsed != nil && query == a.query {
		return image, a.parsed, nil
	}
	q, err := a.p.o.Query(query)
	if err != nil {
		return "", nil, &QueryError{Key: key, Err: err}
	}
	a.query, a.parsed = query, q
	return image, q, nil
}

// QueryError is a key whose query the endpoint refuses.
type QueryError struct {
	Key string
	Err error
}

func (e *QueryError) Error() string {
	return wire.ClassInvalidQuery.Message(fmt.Sprintf("%q: %v", e.Key, e.Err))
}

// Class is wire.ClassInvalidQuery.
func (e *QueryError) Class() wire.Class { return wire.ClassInvalidQuery }

func (e *QueryError) Unwrap() error { return e.Err }

func (a *answers[V]) fail(i int, err error) {
	msg, c := wire.ErrorMessage(err)
	a.items[i].Error = msg
	if a.classes == nil {
		a.classes = make([]wire.Class, len(a.items))
	}
	a.classes[i] = c
}

func (a *answers[V]) answer(i int, ref imageref.Ref, q any, v V, stale bool, err error) {
	if err != nil {
		a.fail(i, err)
		return
	}
	val, err := a.p.o.Render(ref, q, v, stale)
	if err != nil {
		a.fail(i, &registry.UnavailableError{Ref: ref.Original, Err: fmt.Errorf("encoding the answer: %w", err)})
		return
	}
	a.items[i].Value = val
}
