package batch

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

// TestHostShareLeavesAWorker: one registry host may hold a quarter of the pool, at least 4,
// and never the whole pool when it has two workers or more; a pool of one cannot isolate.
func TestHostShareLeavesAWorker(t *testing.T) {
	for workers, want := range map[int]int{1: 1, 2: 1, 3: 2, 4: 3, 5: 4, 8: 4, 16: 4, 17: 4, 64: 16, 4096: 1024} {
		p, err := NewPool(workers, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := p.HostShare(); got != want {
			t.Errorf("NewPool(%d).HostShare() = %d, want %d", workers, got, want)
		}
	}
}

// TestSmallPoolIsolatesHosts: in pools of 2 to 4 workers, loads of a host that hangs take at
// most its share, so a load for another host still gets a worker; before, a pool of 4 or
// fewer workers was one host's whole share.
func TestSmallPoolIsolatesHosts(t *testing.T) {
	for _, workers := range []int{2, 3, 4} {
		t.Run(fmt.Sprintf("%d workers", workers), func(t *testing.T) {
			p, err := NewPool(workers, nil)
			if err != nil {
				t.Fatal(err)
			}
			hang := make(chan struct{})
			defer close(hang)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			started := make(chan struct{}, 16)
			for range 16 { // far more hanging loads than workers
				go func() {
					_ = p.DoFor(ctx, "dead.example", func() error { started <- struct{}{}; <-hang; return nil })
				}()
			}
			for range p.HostShare() {
				<-started
			}
			hctx, hcancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer hcancel()
			done := false
			if err := p.DoFor(hctx, "healthy.example", func() error { done = true; return nil }); err != nil || !done {
				t.Errorf("DoFor(healthy) with %d of %d workers held by a hanging host = %v, want it run", p.HostShare(), workers, err)
			}
			select {
			case <-started:
				t.Errorf("more than HostShare() = %d loads of the hanging host started", p.HostShare())
			default:
			}
		})
	}
}

// TestOneWorkerPoolCannotIsolate documents the limit: with one worker, a hanging host's load
// holds it, and a load for another host waits until its context ends.
func TestOneWorkerPoolCannotIsolate(t *testing.T) {
	p, err := NewPool(1, nil)
	if err != nil {
		t.Fatal(err)
	}
	hang := make(chan struct{})
	defer close(hang)
	started := make(chan struct{})
	go func() {
		_ = p.DoFor(context.Background(), "dead.example", func() error { close(started); <-hang; return nil })
	}()
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := p.DoFor(ctx, "healthy.example", func() error { return nil }); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("DoFor(healthy) on a one-worker pool held by a hanging host = %v, want the context's deadline", err)
	}
}
