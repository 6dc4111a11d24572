package verify

import (
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

// TestHelpersParallel: the branches run at the same time (each waits for the others), and
// every one has finished when parallel returns.
func TestHelpersParallel(t *testing.T) {
	for _, tc := range []struct {
		name string
		h    helpers
	}{
		{"newHelpers", newHelpers()},
		{"zero value", helpers{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const n = 3
			var arrived atomic.Int32
			var done atomic.Int32
			all := make(chan struct{})
			branch := func() {
				if arrived.Add(1) == n {
					close(all)
				}
				select {
				case <-all:
				case <-time.After(10 * time.Second):
					t.Error("a branch waited 10s for the others: the branches did not run concurrently")
				}
				done.Add(1)
			}
			tc.h.parallel([]func(){branch, branch, branch})
			if got := done.Load(); got != n {
				t.Fatalf("parallel returned after %d of %d branches", got, n)
			}
			tc.h.parallel(nil)
		})
	}
}

// TestHelpersReused: after a thousand sequential calls of two branches a helper of h is
// waiting for work (a goroutine per branch would have exited), and only a few were started
// (one per call would be a thousand; helpers of other tests that exit meanwhile only lower
// the count).
func TestHelpersReused(t *testing.T) {
	h := newHelpers()
	before := runtime.NumGoroutine()
	var ran atomic.Int32
	for range 1000 {
		h.parallel([]func(){func() { ran.Add(1) }, func() { ran.Add(1) }})
	}
	if got := ran.Load(); got != 2000 {
		t.Errorf("1000 calls of two branches ran %d branches, want 2000", got)
	}
	if extra := runtime.NumGoroutine() - before; extra > 8 {
		t.Errorf("1000 sequential calls left %d more goroutines, want at most 8 idle helpers", extra)
	}
	taken := make(chan struct{})
	select {
	case h.work <- func() { close(taken) }:
	case <-time.After(10 * time.Second):
		t.Fatal("no helper took work for 10s after the calls: helpers are not kept")
	}
	<-taken
}
