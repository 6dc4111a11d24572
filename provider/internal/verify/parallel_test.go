package verify

import (
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

// TestHelpersParallel: the branches run at the same time (each waits for the others), every
// one has finished when parallel returns, and helpers are kept and reused.
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

			if tc.h.work == nil {
				return
			}
			// Fresh helpers: a thousand sequential calls of two branches leave at least one
			// helper waiting (a goroutine per branch would have exited) and only a few (one
			// per call would be a thousand).
			h := newHelpers()
			before := runtime.NumGoroutine()
			var ran atomic.Int32
			for range 1000 {
				h.parallel([]func(){func() { ran.Add(1) }, func() { ran.Add(1) }})
			}
			if got := ran.Load(); got != 2000 {
				t.Errorf("1000 calls of two branches ran %d branches, want 2000", got)
			}
			if extra := runtime.NumGoroutine() - before; extra < 1 || extra > 8 {
				t.Errorf("1000 sequential calls left %d more goroutines, want 1 to 8 idle helpers", extra)
			}
		})
	}
}
