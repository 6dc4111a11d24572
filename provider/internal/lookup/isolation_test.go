package lookup_test

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/imagetrust/imagetrust/provider/internal/batch"
	"github.com/imagetrust/imagetrust/provider/internal/cache"
	"github.com/imagetrust/imagetrust/provider/internal/config"
	"github.com/imagetrust/imagetrust/provider/internal/imageref"
	"github.com/imagetrust/imagetrust/provider/internal/lookup"
	"github.com/imagetrust/imagetrust/provider/internal/registry"
	"github.com/imagetrust/imagetrust/provider/internal/registry/registrytest"
)

// TestHangingRegistryDoesNotStarveOthers sends 200 keys for a registry that accepts
// connections and never answers, then fresh keys for a healthy registry in the next batch:
// the hanging registry holds at most its share of the shared pool, so the healthy keys are
// answered (not "timed out:") within the deadline.
func TestHangingRegistryDoesNotStarveOthers(t *testing.T) {
	dead := registrytest.New()
	t.Cleanup(dead.Close)
	healthy := newParts(t)
	cli, err := registry.New(context.Background(), registry.Options{
		Registries: []config.Registry{{Host: dead.Host, Insecure: true}, {Host: healthy.reg.Host, Insecure: true}},
		Timeout:    20 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cli.CloseIdleConnections)
	pool, err := batch.NewPool(64, nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := cache.New[string](cache.Options{Name: "digest", MaxEntries: 1000, TTL: time.Minute, NotFoundTTL: time.Minute, Negative: registry.IsNegative})
	if err != nil {
		t.Fatal(err)
	}
	pl, err := lookup.New(lookup.Options[string]{
		Name: "digest", Refs: imageref.NewMemo(1024), Registries: cli, Pool: pool, Cache: c,
		Deadline: 2 * time.Second, LoadTimeout: 20 * time.Second,
		Load: func(ctx context.Context, ref imageref.Ref) (string, error) {
			d, err := cli.Head(ctx, ref)
			if err != nil {
				return "", err
			}
			return d.Digest.String(), nil
		},
		Render: func(_ imageref.Ref, _ any, d string, _ bool) (any, error) { return d, nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	var fresh []string
	for i := range 5 {
		healthy.push(t, fmt.Sprintf("team/app%d:v1", i))
		fresh = append(fresh, fmt.Sprintf("%s/team/app%d:v1", healthy.reg.Host, i))
	}
	dead.Hang(nil)

	base := runtime.NumGoroutine()
	var burst []string
	for i := range 200 {
		burst = append(burst, fmt.Sprintf("%s/team/app%d:v1", dead.Host, i))
	}
	start := time.Now()
	_, classes := pl.Lookup(context.Background(), burst)
	timedOut := 0
	for _, c := range classes {
		if c.Transient() {
			timedOut++
		}
	}
	t.Logf("burst of 200 on the hanging registry: %d transient answers in %s; goroutines %d before, %d after",
		timedOut, time.Since(start).Round(time.Millisecond), base, runtime.NumGoroutine())

	start = time.Now()
	items, _ := pl.Lookup(context.Background(), fresh)
	took := time.Since(start)
	t.Logf("5 fresh keys on the healthy registry: answered in %s", took.Round(time.Millisecond))
	for _, it := range items {
		if it.Error != "" || !strings.HasPrefix(fmt.Sprint(it.Value), "sha256:") {
			t.Errorf("%s: value %v error %q, want a digest", it.Key, it.Value, it.Error)
		}
	}
}
