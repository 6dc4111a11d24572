// Package gcpace paces the garbage collector of a process whose live heap is small most of the
// time: after each collection it keeps the next heap goal at least a fixed number of bytes
// above the live heap, by raising GOGC above its base while the live heap is small and
// returning it to the base once the live heap is large enough for the base to give as much.
//
// With GOGC 50 and a live heap of 12 MB the collector runs every 6 MB allocated, and a cold
// /v1/scan key allocates about 40 KB: a collection every 150 keys, each marking the whole heap.
// A floor of 16 MiB of headroom runs it about every 400 keys instead, and costs at most 16 MiB
// more heap than GOGC 50 while the live heap is under 32 MiB, and nothing above that. The soft
// memory limit (GOMEMLIMIT) still bounds the heap whatever the pace.
package gcpace

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

// MaxPercent is the highest GOGC the pacer sets (a live heap of a few hundred KiB at start).
const MaxPercent = 10_000

// liveMetric is the heap the last collection found live (objects marked, Go 1.21+).
const liveMetric = "/gc/heap/live:bytes"

// Percent is the GOGC that gives a live heap of live bytes a next goal of at least
// live+minHeadroom, and never less than base: ceil(100·minHeadroom/live) within
// [base, MaxPercent].
func Percent(base int, minHeadroom, live uint64) int {
	switch {
	case minHeadroom == 0:
		return base
	case live == 0:
		return MaxPercent
	}
	p := (minHeadroom*100 + live - 1) / live
	if p >= MaxPercent {
		return MaxPercent
	}
	return max(int(p), base)
}

// pacer re-reads the live heap after every collection (a cleanup on an object allocated for
// the purpose runs once the collection that found it unreachable is over) and sets GOGC.
type pacer struct {
	base     int
	headroom uint64

	mu      sync.Mutex
	cur     int
	stopped bool
	sample  []metrics.Sample
}

// mark is the object whose cleanup says a collection has ended. It holds a pointer so that it
// is never one of the tiny allocator's blocks, which are freed only together.
type mark struct{ _ *byte }

// Start sets GOGC to base and keeps the next heap goal at least minHeadroom bytes above the
// live heap after each collection, until the returned function is called; that function
// leaves GOGC at base.
func Start(base int, minHeadroom uint64) (stop func()) {
	p := &pacer{base: base, headroom: minHeadroom, cur: base, sample: []metrics.Sample{{Name: liveMetric}}}
	debug.SetGCPercent(base)
	p.arm()
	return p.stop
}

func (p *pacer) arm() {
	runtime.AddCleanup(new(mark), (*pacer).collected, p)
}

// collected runs after a collection: it sets GOGC for the live heap that collection found and
// waits for the next one.
func (p *pacer) collected() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return
	}
	metrics.Read(p.sample)
	if v := p.sample[0].Value; v.Kind() == metrics.KindUint64 {
		if pct := Percent(p.base, p.headroom, v.Uint64()); pct != p.cur {
			debug.SetGCPercent(pct)
			p.cur = pct
		}
	}
	p.arm()
}

func (p *pacer) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.stopped {
		p.stopped = true
		debug.SetGCPercent(p.base)
	}
}
