package registry_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/imagetrust/imagetrust/provider/internal/config"
	"github.com/imagetrust/imagetrust/provider/internal/registry"
	"github.com/imagetrust/imagetrust/provider/internal/registry/registrytest"
	"github.com/imagetrust/imagetrust/provider/internal/wire"
)

// TestReferrersListOverCapIsLimitExceeded has a configured registry answer the referrers API,
// or (the API answering 404) its fallback tag sha256-<hex>, with a legal OCI index of 3,500
// descriptors (about 660 KB: under the former 4 MiB referrers cap, over the 512 KiB default of
// lookup.maxReferrersBytes). Each read fails "limit exceeded:" naming the field, and the
// provider reads no more of the body than the cap; a list under a raised cap is read whole.
func TestReferrersListOverCapIsLimitExceeded(t *testing.T) {
	const ociIndex = "application/vnd.oci.image.index.v1+json"
	big := registrytest.BigIndex(3500)
	if n := int64(len(big)); n <= config.DefaultMaxReferrersBytes || n >= 4<<20 {
		t.Fatalf("test list is %d bytes, want between the default cap and 4 MiB", n)
	}
	for _, path := range []struct {
		name  string
		match func(*http.Request) bool
		// api404 answers the referrers API 404, so the fallback tag is read.
		api404 bool
	}{
		{"referrers API", registrytest.PathContains("/referrers/"), false},
		{"fallback tag", registrytest.PathContains("/manifests/sha256-"), true},
	} {
		t.Run(path.name, func(t *testing.T) {
			reg := startRegistry(t)
			d := push(t, reg.Host, "team/app:v1")
			ref := mustParse(t, reg.Host+"/team/app@"+d.String())
			var served atomic.Int64 // list bytes the registry managed to write
			content := registrytest.Content(ociIndex, big)
			reg.Hostile(func(req *http.Request) bool {
				return path.match(req) || (path.api404 && strings.Contains(req.URL.Path, "/referrers/"))
			}, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
				if path.api404 && strings.Contains(req.URL.Path, "/referrers/") {
					http.NotFound(w, req)
					return
				}
				cw := &countingWriter{ResponseWriter: w, n: &served}
				content.ServeHTTP(cw, req)
			}))

			c := newClient(t, registry.Options{Registries: []config.Registry{{Host: reg.Host, Insecure: true}}})
			_, err := c.Referrers(context.Background(), ref, d)
			var tl *registry.TooLargeError
			if !errors.As(err, &tl) {
				t.Fatalf("err = %v, want a *registry.TooLargeError", err)
			}
			if tl.Max != config.DefaultMaxReferrersBytes || !strings.Contains(err.Error(), "lookup.maxReferrersBytes") {
				t.Errorf("err = %v, want the cap %d named as lookup.maxReferrersBytes", err, config.DefaultMaxReferrersBytes)
			}
			msg, class := wire.ErrorMessage(registry.Classify(ref.Original, err))
			if class != wire.ClassLimitExceeded || !strings.HasPrefix(msg, "limit exceeded: ") {
				t.Errorf("answer %q (class %q), want it to start %q", msg, class, "limit exceeded: ")
			}
			t.Logf("%s: %v (registry wrote %d of %d bytes)", path.name, err, served.Load(), len(big))

			// The same list under a raised cap is read whole.
			raised := newClient(t, registry.Options{Registries: []config.Registry{{Host: reg.Host, Insecure: true}}, MaxReferrersBytes: 1 << 20})
			idx, err := raised.Referrers(context.Background(), ref, d)
			if err != nil {
				t.Fatalf("with a 1 MiB cap: %v", err)
			}
			if len(idx.Manifests) != 3500 {
				t.Errorf("with a 1 MiB cap: %d descriptors, want 3500", len(idx.Manifests))
			}
		})
	}
}

// countingWriter counts the bytes written to a response.
type countingWriter struct {
	http.ResponseWriter
	n *atomic.Int64
}

func (w *countingWriter) Write(b []byte) (int, error) {
	n, err := w.ResponseWriter.Write(b)
	w.n.Add(int64(n))
	return n, err
}
