package batch_test

import (
	"context"
	"errors"
	"testing"

	"github.com/imagetrust/imagetrust/provider/internal/batch"
)

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
