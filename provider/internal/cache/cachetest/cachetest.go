// Package cachetest helps tests synchronise with the cache and the lookups' goroutines
// without sleeping, and count the goroutines a lookup starts.
package cachetest

import (
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// WaitGetters waits up to bound until n goroutines are blocked in Cache.Get's select (waiting
// for the load in flight or for their context) and returns how many it saw last. It reads the
// goroutine stacks, so it depends on Get's shape: if Get changes, callers fail with a count
// rather than pass wrongly.
func WaitGetters(n int, bound time.Duration) int {
	return WaitSelecting("cache.(*Cache[...]).Get(", n, bound)
}

// WaitSelecting waits up to bound until n goroutines are blocked in a select inside the
// function whose stack frame contains frame (e.g. "resolve.(*Indexes).Platforms(") and returns
// how many it saw last.
func WaitSelecting(frame string, n int, bound time.Duration) int {
	var waiting int
	for deadline := time.Now().Add(bound); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		buf := make([]byte, 1<<20)
		for {
			if m := runtime.Stack(buf, true); m < len(buf) {
				buf = buf[:m]
				break
			}
			buf = make([]byte, 2*len(buf))
		}
		waiting = 0
		for _, g := range strings.Split(string(buf), "\n\n") {
			if strings.Contains(g, " [select") && strings.Contains(g, frame) {
				waiting++
			}
		}
		if waiting >= n {
			break
		}
	}
	return waiting
}

// PeakGoroutines runs f while sampling runtime.NumGoroutine every 100 µs, and returns the
// count before f (the sampler not included) and the highest count seen while f ran (the
// sampler included): how many goroutines f fanned out to at once.
func PeakGoroutines(f func()) (before, peak int) {
	before = runtime.NumGoroutine()
	var highest atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			if n := int64(runtime.NumGoroutine()); n > highest.Load() {
				highest.Store(n)
			}
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Microsecond):
			}
		}
	})
	f()
	close(stop)
	wg.Wait()
	return before, int(highest.Load())
}
