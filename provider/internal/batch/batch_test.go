package batch_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/imagetrust/imagetrust/provider/internal/batch"
)

func TestRunDeduplicates(t *testing.T) {
	if _, err := batch.NewPool(4, prometheus.NewRegistry()); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	calls := map[string]int{}
	keys := []string{"a", "b", "a", "c", "b", "a"}
	res := batch.Run(context.Background(), keys, func(_ context.Context, k string) (string, error) {
		mu.Lock()
		calls[k]++
		mu.Unlock()
		if k == "c" {
			return "", errors.New("not found: c")
		}
		return strings.ToUpper(k), nil
	})
	if len(res) != len(keys) {
		t.Fatalf("Run() returned %d results, want %d", len(res), len(keys))
	}
	for i, k := range keys {
		want := strings.ToUpper(k)
		if k == "c" {
			if res[i].Err == nil || res[i].Err.Error() != "not found: c" {
				t.Errorf("Run()[%d] (%s) error = %v, want not found: c", i, k, res[i].Err)
			}
			continue
		}
		if res[i].Err != nil || res[i].Value != want {
			t.Errorf("Run()[%d] (%s) = %q, %v, want %q", i, k, res[i].Value, res[i].Err, want)
		}
	}
	for k, n := range calls {
		if n != 1 {
			t.Errorf("calls[%s] = %d, want 1", k, n)
		}
	}
	if got := batch.Run(context.Background(), nil, func(context.Context, string) (int, error) { return 0, nil }); len(got) != 0 {
		t.Errorf("Run(no keys) = %v, want empty", got)
	}
}

func TestRunDeadlinePartialResults(t *testing.T) {
	tests := []struct {
		name       string
		workers    int
		keys       []string
		hang       map[string]bool
		ignoreCtx  bool
		wantTimely []string
	}{
		{"hanging keys honour ctx", 4, []string{"ok1", "hang1", "ok2", "hang2"}, map[string]bool{"hang1": true, "hang2": true}, false, []string{"ok1", "ok2"}},
		{"hanging keys ignore ctx", 4, []string{"ok1", "hang1", "ok2"}, map[string]bool{"hang1": true}, true, []string{"ok1", "ok2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			never := make(chan struct{})
			defer close(never)
			// Generous: the answerable keys must be done by the deadline even on a loaded machine;
			// the hanging keys still run into it.
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			res := batch.Run(ctx, tt.keys, func(ctx context.Context, k string) (string, error) {
				if tt.hang[k] {
					if tt.ignoreCtx {
						<-never
					}
					<-ctx.Done()
					return "", ctx.Err()
				}
				return "v-" + k, nil
			})
			timely := map[string]bool{}
			for _, k := range tt.wantTimely {
				timely[k] = true
			}
			for i, k := range tt.keys {
				if timely[k] {
					if res[i].Err != nil || res[i].Value != "v-"+k {
						t.Errorf("Run()[%s] = %q, %v, want v-%s", k, res[i].Value, res[i].Err, k)
					}
					continue
				}
				var te *batch.TimedOutError
				if !errors.As(res[i].Err, &te) || !strings.HasPrefix(res[i].Err.Error(), "timed out: ") || !strings.Contains(res[i].Err.Error(), k) {
					t.Errorf("Run()[%s] error = %v, want *batch.TimedOutError naming the key", k, res[i].Err)
				}
			}
		})
	}
}

// deadlineOnly is a context that has a deadline but is never done: it stands for a batch
// deadline that has not passed yet, however slowly the machine runs.
type deadlineOnly struct {
	context.Context
	deadline time.Time
}

func (c deadlineOnly) Deadline() (time.Time, bool) { return c.deadline, true }

// TestLateAnswerBeatsDeadline: a lookup that answers when its context ends (as the cache does
// with a stale value) is recorded, not reported as timed out: the key's context ends before the
// batch deadline. The batch context here never ends by itself, so the test does not race the
// machine's load against Run's margin; it checks the key's context ended before the batch's
// deadline and that the answer given then is the key's result.
func TestLateAnswerBeatsDeadline(t *testing.T) {
	batchDeadline := time.Now().Add(500 * time.Millisecond)
	ctx := deadlineOnly{Context: context.Background(), deadline: batchDeadline}
	var keyDeadline time.Time
	var keyErr error
	res := batch.Run(ctx, []string{"k"}, func(ctx context.Context, _ string) (string, error) {
		keyDeadline, _ = ctx.Deadline()
		<-ctx.Done()
		keyErr = ctx.Err()
		return "stale", nil
	})
	if res[0].Err != nil || res[0].Value != "stale" {
		t.Fatalf("Run() = %q, %v, want the answer given when the key's context ended", res[0].Value, res[0].Err)
	}
	if !keyDeadline.Before(batchDeadline) {
		t.Errorf("key context deadline = %v, want before the batch deadline %v", keyDeadline, batchDeadline)
	}
	if !errors.Is(keyErr, context.DeadlineExceeded) {
		t.Errorf("key context ended with %v, want context.DeadlineExceeded", keyErr)
	}
}

func TestQueuedBehindFullPoolTimesOut(t *testing.T) {
	p, _ := batch.NewPool(1, nil)
	never := make(chan struct{})
	defer close(never)
	occupied := make(chan struct{})
	go func() {
		// The stuck worker's own result does not matter here.
		_ = p.Do(context.Background(), func() error {
			close(occupied)
			<-never // ignores its context: the worker is stuck
			return nil
		})
	}()
	<-occupied
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	res := batch.Run(ctx, []string{"q1", "q2"}, func(ctx context.Context, _ string) (int, error) {
		return 1, p.Do(ctx, func() error { return nil })
	})
	for i, r := range res {
		var te *batch.TimedOutError
		if !errors.As(r.Err, &te) {
			t.Errorf("Run()[%d] error = %v, want *batch.TimedOutError", i, r.Err)
		}
	}
}

func TestPoolBoundsConcurrency(t *testing.T) {
	p, _ := batch.NewPool(3, nil)
	var mu sync.Mutex
	active, peak := 0, 0
	keys := make([]string, 40)
	for i := range keys {
		keys[i] = fmt.Sprint(i)
	}
	var wg sync.WaitGroup
	for range 3 { // three concurrent batches share the pool
		wg.Go(func() {
			batch.Run(context.Background(), keys, func(ctx context.Context, _ string) (int, error) {
				return 0, p.Do(ctx, func() error {
					mu.Lock()
					active++
					peak = max(peak, active)
					mu.Unlock()
					time.Sleep(time.Millisecond)
					mu.Lock()
					active--
					mu.Unlock()
					return nil
				})
			})
		})
	}
	wg.Wait()
	if peak > 3 {
		t.Errorf("peak concurrent lookups = %d, want <= 3", peak)
	}
	if _, err := batch.NewPool(0, nil); err == nil {
		t.Errorf("NewPool(0) = nil error, want an error")
	}
}

func BenchmarkRun100(b *testing.B) {
	keys := make([]string, 100)
	for i := range keys {
		keys[i] = fmt.Sprintf("registry.example/team/app%d:v1", i)
	}
	fn := func(_ context.Context, k string) (string, error) { return k, nil }
	b.ReportAllocs()
	for b.Loop() {
		batch.Run(context.Background(), keys, fn)
	}
}
