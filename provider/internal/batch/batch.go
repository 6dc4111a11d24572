// Package batch runs the keys of one external-data request under the request's deadline: keys
// are de-duplicated, each unique key is looked up once, and keys not done by the deadline get a
// per-key "timed out" error while the rest are answered. Run returns when every key is done or
// the deadline passes, whichever is first, even when a lookup hangs.
//
// Registry work is bounded by a Pool shared by the whole process. The pool bounds the loads
// themselves (Pool.Do), not the keys waiting for them: a key waiting for a cached answer or for
// an identical lookup already in flight (singleflight) holds no worker.
package batch

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/imagetrust/imagetrust/provider/internal/wire"
)

// Pool bounds the registry loads in flight across all batches. The loads run on the pool's own
// goroutines, started when first needed and kept: a load's deep call stack (HTTP round trip,
// TLS) then grows once per worker instead of once per key in a new goroutine, and the
// goroutines that wait for a worker stay shallow for the garbage collector to scan.
type Pool struct {
	sem chan struct{}
	// idle hands a task to a worker waiting for one; started counts the workers (at most
	// cap(sem): only holders of sem hand tasks over).
	idle    chan *task
	started atomic.Int64
	tasks   sync.Pool // of *task
	// hosts: per registry host, the tokens of its share of the workers (see DoFor).
	hostMu   sync.Mutex
	hosts    map[string]chan struct{}
	inflight prometheus.Gauge
	queued   prometheus.Gauge
}

// NewPool returns a pool of workers slots. reg may be nil.
func NewPool(workers int, reg prometheus.Registerer) (*Pool, error) {
	if workers <= 0 {
		return nil, fmt.Errorf("batch: workers must be > 0, got %d", workers)
	}
	p := &Pool{
		sem:   make(chan struct{}, workers),
		idle:  make(chan *task),
		hosts: map[string]chan struct{}{},
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "imagetrust_lookups_in_flight",
			Help: "Lookups running on the shared worker pool.",
		}),
		queued: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "imagetrust_lookups_queued",
			Help: "Lookups waiting for a worker of the shared pool.",
		}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{p.inflight, p.queued} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("batch: registering metrics: %w", err)
			}
		}
	}
	return p, nil
}

// Workers is the pool size.
func (p *Pool) Workers() int { return cap(p.sem) }

// Result is the outcome of one key.
type Result[V any] struct {
	Value V
	Err   error
}

// TimedOutError is the error of a key not done by the batch deadline.
type TimedOutError struct {
	Key   string
	After time.Duration
	// Cause is why the batch context ended (context.DeadlineExceeded or a cancellation).
	Cause error
}

func (e *TimedOutError) Error() string {
	if errors.Is(e.Cause, context.DeadlineExceeded) {
		return e.Class().Message(fmt.Sprintf("no answer for %q within the batch deadline (%s)", e.Key, e.After.Round(time.Millisecond)))
	}
	return e.Class().Message(fmt.Sprintf("lookup of %q abandoned after %s: %v", e.Key, e.After.Round(time.Millisecond), e.Cause))
}

// Class is wire.ClassTimedOut.
func (e *TimedOutError) Class() wire.Class { return wire.ClassTimedOut }

func (e *TimedOutError) Unwrap() error { return e.Cause }

// Do runs fn on a worker of the pool, waiting for a free one until ctx ends.
func (p *Pool) Do(ctx context.Context, fn func() error) error {
	select {
	case p.sem <- struct{}{}: // a free worker: no wait, no channel of ctx's made
	default:
		p.queued.Inc()
		select {
		case p.sem <- struct{}{}:
			p.queued.Dec()
		case <-ctx.Done():
			p.queued.Dec()
			return fmt.Errorf("no free worker: %w", context.Cause(ctx))
		}
	}
	p.inflight.Inc()
	defer func() {
		p.inflight.Dec()
		<-p.sem
	}()
	return p.run(fn)
}

// task is one load handed to a worker; done receives when it has run.
type task struct {
	fn    func() error
	err   error
	panic any
	done  chan struct{}
}

// run runs fn on a worker: an idle one, else a new one while there are fewer than the pool's
// size, else the next to become idle. A panic in fn is raised again in the caller.
func (p *Pool) run(fn func() error) error {
	t, _ := p.tasks.Get().(*task)
	if t == nil {
		t = &task{done: make(chan struct{}, 1)}
	}
	t.fn = fn
	select {
	case p.idle <- t:
	default:
		if p.started.Add(1) <= int64(cap(p.sem)) {
			go p.work(t)
		} else {
			p.started.Add(-1)
			p.idle <- t
		}
	}
	<-t.done
	err, pv := t.err, t.panic
	t.fn, t.err, t.panic = nil, nil, nil
	p.tasks.Put(t)
	if pv != nil {
		panic(pv)
	}
	return err
}

// work runs t, then every task handed to it, for the life of the process.
func (p *Pool) work(t *task) {
	for {
		t.exec()
		t.done <- struct{}{}
		t = <-p.idle
	}
}

func (t *task) exec() {
	defer func() {
		if r := recover(); r != nil {
			t.panic = r
		}
	}()
	t.err = t.fn()
}

// HostShare is how many workers of the pool one registry host may hold at once: a quarter of
// the pool, at least 4, and always one worker fewer than the pool (2 of 3, 3 of 4), so a
// registry that hangs parks at most its share and the other registries keep at least one
// worker. A pool of one worker cannot isolate registries: its one worker is every host's share.
func (p *Pool) HostShare() int {
	n := cap(p.sem)
	return max(1, min(n-1, max(n/4, 4)))
}

// DoFor is Do for a load against registry host: it first waits, holding no worker, for one of
// the host's HostShare tokens, so no worker ever waits on a host.
func (p *Pool) DoFor(ctx context.Context, host string, fn func() error) error {
	p.hostMu.Lock()
	tok := p.hosts[host]
	if tok == nil {
		tok = make(chan struct{}, p.HostShare())
		p.hosts[host] = tok
	}
	p.hostMu.Unlock()
	select {
	case tok <- struct{}{}:
	default:
		select {
		case tok <- struct{}{}:
		case <-ctx.Done():
			return fmt.Errorf("no free worker for registry %s (it holds its share of %d): %w", host, cap(tok), context.Cause(ctx))
		}
	}
	defer func() { <-tok }()
	return p.Do(ctx, fn)
}

// Margin is how much earlier than a deadline the lookups stop, when remaining is left until
// it: a tenth of it, at most 50ms. It leaves time to record the answers given when the lookups'
// context ends (stale cached values) and to encode and send the response before the deadline.
// It is the provider's one margin: Run applies it to the lookups of a batch, and the server
// waits as long for a lookup that overruns its deadline.
func Margin(remaining time.Duration) time.Duration {
	return max(0, min(50*time.Millisecond, remaining/10))
}

// Dedupe returns keys without repeats, in first-seen order, and for each key the index of its
// first occurrence in uniq. When keys has no repeats, uniq is keys itself and pos is nil.
func Dedupe(keys []string) (uniq []string, pos []int) {
	if len(keys) < 2 {
		return keys, nil
	}
	index := make(map[string]int, len(keys))
	for i, k := range keys {
		j, dup := index[k]
		if !dup {
			j = len(index)
			index[k] = j
		}
		if dup && pos == nil {
			uniq = append(make([]string, 0, len(keys)-1), keys[:i]...)
			pos = make([]int, i, len(keys))
			for p := range pos {
				pos[p] = p
			}
		}
		if pos != nil {
			if !dup {
				uniq = append(uniq, k)
			}
			pos = append(pos, j)
		}
	}
	if pos == nil {
		return keys, nil
	}
	return uniq, pos
}

// Run calls fn concurrently once per distinct key and returns one result per key, aligned with
// keys (duplicates share the result). fn receives a context that ends Margin before ctx and
// should return soon after it ends; Run does not wait for it past ctx. Bound registry work
// inside fn with Pool.Do.
func Run[V any](ctx context.Context, keys []string, fn func(ctx context.Context, key string) (V, error)) []Result[V] {
	start := time.Now()
	uniq, pos := Dedupe(keys)

	// fn gets a context that ends a little before ctx, so an answer a lookup can still give when
	// its context ends (a stale cached value) is recorded before Run stops waiting.
	fnCtx := ctx
	if dl, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		fnCtx, cancel = context.WithDeadline(ctx, dl.Add(-Margin(time.Until(dl))))
		defer cancel()
	}

	res := make([]Result[V], len(uniq))
	done := make([]bool, len(uniq))
	var (
		mu        sync.Mutex
		closed    bool
		remaining = len(uniq)
		finished  = make(chan struct{})
	)
	if remaining == 0 {
		close(finished)
	}
	for j, k := range uniq {
		go func() {
			v, err := fn(fnCtx, k)
			mu.Lock()
			defer mu.Unlock()
			if closed {
				return
			}
			if err != nil && fnCtx.Err() != nil && (errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)) {
				err = &TimedOutError{Key: k, After: time.Since(start), Cause: context.Cause(fnCtx)}
			}
			res[j], done[j] = Result[V]{Value: v, Err: err}, true
			remaining--
			if remaining == 0 {
				close(finished)
			}
		}()
	}
	select {
	case <-finished:
	case <-ctx.Done():
	}

	mu.Lock()
	closed = true
	after := time.Since(start)
	for j, k := range uniq {
		if !done[j] {
			res[j].Err = &TimedOutError{Key: k, After: after, Cause: context.Cause(ctx)}
		}
	}
	mu.Unlock()

	if pos == nil {
		return res
	}
	out := make([]Result[V], len(keys))
	for i, j := range pos {
		out[i] = res[j]
	}
	return out
}
