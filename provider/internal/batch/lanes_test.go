package batch_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imagetrust/imagetrust/provider/internal/batch"
)

// hostOf is the lane of a key "host/n".
func hostOf(key string) string { h, _, _ := strings.Cut(key, "/"); return h }

// TestRunLanesIsolatesAndBounds: the keys of a lane whose loads hang take at most Width
// goroutines, the keys of another lane are answered meanwhile, and the keys of the hanging lane
// are each answered by fn once its context ends (as a cache answers with a stale value) or
// reported timed out, never anything else.
func TestRunLanesIsolatesAndBounds(t *testing.T) {
	const width = 3
	var keys []string
	for i := range 10 {
		keys = append(keys, fmt.Sprintf("dead.example/%d", i), fmt.Sprintf("ok.example/%d", i))
	}
	hang := make(chan struct{})
	defer close(hang)
	var mu sync.Mutex
	active := map[string]int{}
	peak := map[string]int{}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	res := batch.RunLanes(ctx, keys, batch.Lanes{Of: hostOf, Width: width}, func(ctx context.Context, k string) (string, error) {
		h := hostOf(k)
		mu.Lock()
		active[h]++
		peak[h] = max(peak[h], active[h])
		mu.Unlock()
		defer func() {
			mu.Lock()
			active[h]--
			mu.Unlock()
		}()
		if h == "dead.example" {
			select { // a load that hangs until its context ends, then answers stale
			case <-hang:
			case <-ctx.Done():
			}
			return "stale " + k, nil
		}
		return strings.ToUpper(k), nil
	})
	for i, k := range keys {
		if hostOf(k) == "ok.example" {
			if res[i].Err != nil || res[i].Value != strings.ToUpper(k) {
				t.Errorf("RunLanes()[%d] (%s) = %q, %v, want %q", i, k, res[i].Value, res[i].Err, strings.ToUpper(k))
			}
			continue
		}
		// A loaded machine may stall a lane across the margin between fn's context and the
		// batch's end: then the key is reported timed out.
		var te *batch.TimedOutError
		if res[i].Value != "stale "+k && !errors.As(res[i].Err, &te) {
			t.Errorf("RunLanes()[%d] (%s) = %q, %v, want %q or a *batch.TimedOutError", i, k, res[i].Value, res[i].Err, "stale "+k)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for h, n := range peak {
		if n > width {
			t.Errorf("lane %s had %d keys running at once, want at most Width = %d", h, n, width)
		}
	}
}

// TestRunLanesAnswersEveryKey: with lanes narrower than their keys, every distinct key is
// loaded exactly once and duplicates share the answer.
func TestRunLanesAnswersEveryKey(t *testing.T) {
	var keys []string
	for i := range 50 {
		keys = append(keys, fmt.Sprintf("h%d.example/%d", i%3, i%20)) // repeats
	}
	var mu sync.Mutex
	calls := map[string]int{}
	res := batch.RunLanes(context.Background(), keys, batch.Lanes{Of: hostOf, Width: 2}, func(_ context.Context, k string) (string, error) {
		mu.Lock()
		calls[k]++
		mu.Unlock()
		return strings.ToUpper(k), nil
	})
	for i, k := range keys {
		if res[i].Err != nil || res[i].Value != strings.ToUpper(k) {
			t.Errorf("RunLanes()[%d] (%s) = %q, %v, want %q", i, k, res[i].Value, res[i].Err, strings.ToUpper(k))
		}
	}
	for k, n := range calls {
		if n != 1 {
			t.Errorf("fn(%s) ran %d times, want once", k, n)
		}
	}
}

// TestPoolDoRaisesPanicInCaller: a load runs on a worker of the pool, but a panic in it is
// raised in the goroutine that called Do, as if the load had run there, and the worker and
// its slot stay usable.
func TestPoolDoRaisesPanicInCaller(t *testing.T) {
	p, err := batch.NewPool(1, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := func() (r any) {
		defer func() { r = recover() }()
		_ = p.Do(context.Background(), func() error { panic("load panicked") })
		return nil
	}()
	if got != "load panicked" {
		t.Errorf("Do(panicking fn) raised %v, want the panic %q", got, "load panicked")
	}
	want := errors.New("not found")
	if err := p.Do(context.Background(), func() error { return want }); !errors.Is(err, want) {
		t.Errorf("Do() after a panic = %v, want %v (the worker slot released)", err, want)
	}
}
