package registry_test

import (
	"context"
	"errors"
	"net/http"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/imagetrust/imagetrust/provider/internal/config"
	"github.com/imagetrust/imagetrust/provider/internal/registry"
	"github.com/imagetrust/imagetrust/provider/internal/registry/registrytest"
	"github.com/imagetrust/imagetrust/provider/internal/wire"
)

// TestEndlessBodiesAreCapped has a configured registry answer every read path with an endless
// OCI index: each read fails with the provider's cap named in a "limit exceeded" error, and
// the bytes allocated by the call stay within a small multiple of the cap (go-containerregistry's
// own manifest limit is 100 MiB).
func TestEndlessBodiesAreCapped(t *testing.T) {
	reg := startRegistry(t)
	d := push(t, reg.Host, "team/app:v1")
	c := newClient(t, registry.Options{Registries: []config.Registry{{Host: reg.Host, Insecure: true}}})
	ref := mustParse(t, reg.Host+"/team/app@"+d.String())
	var written atomic.Int64
	reg.Hostile(nil, registrytest.EndlessBody("application/vnd.oci.image.index.v1+json", &written))

	paths := []struct {
		name string
		call func(ctx context.Context) error
		cap  int64
	}{
		{"referrers API (verify)", func(ctx context.Context) error {
			_, err := c.Referrers(ctx, ref, d)
			return err
		}, registry.MaxResponseBytes},
		{"index GET (resolve)", func(ctx context.Context) error {
			_, err := c.Manifest(ctx, ref, d.String(), 4<<20)
			return err
		}, 4 << 20},
		{"manifest GET as a descriptor (pin)", func(ctx context.Context) error {
			_, err := c.Get(ctx, ref, d.String())
			return err
		}, registry.MaxResponseBytes},
		{"blob", func(ctx context.Context) error {
			_, err := c.Blob(ctx, ref, v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("b", 64)}, 1<<20)
			return err
		}, 1 << 20},
	}
	for _, p := range paths {
		t.Run(p.name, func(t *testing.T) {
			written.Store(0)
			runtime.GC()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			err := p.call(context.Background())
			runtime.ReadMemStats(&after)
			var tl *registry.TooLargeError
			if !errors.As(err, &tl) {
				t.Fatalf("err = %v, want a *registry.TooLargeError", err)
			}
			if tl.Max > p.cap+1 || !strings.Contains(err.Error(), "bytes") {
				t.Errorf("err = %v, want the cap %d named", err, p.cap)
			}
			if msg, class := wire.ErrorMessage(registry.Classify(ref.Original, err)); class != wire.ClassLimitExceeded || class.Transient() {
				t.Errorf("class of %q = %q, want %q (not transient)", msg, class, wire.ClassLimitExceeded)
			}
			alloc := after.TotalAlloc - before.TotalAlloc
			heap := int64(after.HeapAlloc) - int64(before.HeapAlloc)
			t.Logf("%s: registry wrote %d bytes; TotalAlloc +%d, HeapAlloc %+d, error: %v", p.name, written.Load(), alloc, heap, err)
			// Generous: a few copies of the cap (buffer growth, JSON), far below 100 MiB.
			if limit := uint64(8*p.cap + 8<<20); alloc > limit {
				t.Errorf("call allocated %d bytes, want at most %d", alloc, limit)
			}
		})
	}
}

// TestHeaderMediaTypeIsCapped has a registry answer a manifest HEAD with a 64 KiB Content-Type:
// the provider refuses it ("limit exceeded:") instead of echoing it as the mediaType; a
// Content-Type with parameters gives the bare media type.
func TestHeaderMediaTypeIsCapped(t *testing.T) {
	reg := startRegistry(t)
	d := push(t, reg.Host, "team/app:v1")
	c := newClient(t, registry.Options{Registries: []config.Registry{{Host: reg.Host, Insecure: true}}})
	ref := mustParse(t, reg.Host+"/team/app@"+d.String())
	answer := func(ct string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", ct)
			w.Header().Set("Docker-Content-Digest", d.String())
			w.Header().Set("Content-Length", "100")
			w.WriteHeader(http.StatusOK)
		})
	}
	reg.Hostile(registrytest.PathContains("/manifests/"), answer("application/vnd.oci.image.manifest.v1+json"+strings.Repeat("x", 64<<10)))
	desc, err := c.Head(context.Background(), ref)
	var tl *registry.TooLargeError
	if !errors.As(err, &tl) {
		t.Fatalf("Head with a 64 KiB Content-Type = %+v, %v, want a *registry.TooLargeError", desc, err)
	}
	reg.Hostile(registrytest.PathContains("/manifests/"), answer("application/vnd.oci.image.manifest.v1+json; charset=utf-8"))
	desc, err = c.Head(context.Background(), ref)
	if err != nil || desc.MediaType != "application/vnd.oci.image.manifest.v1+json" {
		t.Errorf("Head with parameters = %+v, %v, want the bare media type", desc, err)
	}
}
