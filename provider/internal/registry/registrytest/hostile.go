package registrytest

import (
	"bytes"
	"net/http"
	"strings"
	"sync/atomic"
	"time"
)

// A Behaviour answers requests in place of the registry: a hostile or broken registry.
type Behaviour struct {
	match func(*http.Request) bool
	h     http.Handler
}

// Hostile makes requests for which match returns true (nil: every /v2/ request but the ping)
// answered by h instead of the registry; Hostile(nil, nil) stops. Counting, auth and the
// outage switches still apply first.
func (r *Registry) Hostile(match func(*http.Request) bool, h http.Handler) {
	if h == nil {
		r.hostile.Store(Behaviour{})
		return
	}
	if match == nil {
		match = func(req *http.Request) bool { return req.URL.Path != "/v2/" }
	}
	r.hostile.Store(Behaviour{match: match, h: h})
}

// PathContains matches requests whose path contains s ("/referrers/", "/manifests/").
func PathContains(s string) func(*http.Request) bool {
	return func(req *http.Request) bool { return strings.Contains(req.URL.Path, s) }
}

// EndlessBody answers 200 with Content-Type contentType and a body that never ends (no
// Content-Length): an OCI index whose manifests list goes on until the client hangs up. It
// counts the bytes written into *written when written is not nil.
func EndlessBody(contentType string, written *atomic.Int64) http.Handler {
	entry := []byte(`{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:` +
		strings.Repeat("a", 64) + `","size":1,"platform":{"architecture":"amd64","os":"linux"}},`)
	chunk := bytes.Repeat(entry, 256)
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Content-Type", contentType)
		w.WriteHeader(http.StatusOK)
		if _, err := w.Write([]byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[`)); err != nil {
			return
		}
		for req.Context().Err() == nil {
			n, err := w.Write(chunk)
			if written != nil {
				written.Add(int64(n))
			}
			if err != nil {
				return
			}
		}
	})
}

// SlowDrip answers 200 with Content-Type contentType and writes one byte every interval,
// forever: a registry that keeps a connection busy without ever finishing.
func SlowDrip(contentType string, interval time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Content-Type", contentType)
		w.WriteHeader(http.StatusOK)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			if _, err := w.Write([]byte(" ")); err != nil {
				return
			}
			if f, ok := w.(http.Flusher); ok {
				f.Flush()
			}
			select {
			case <-t.C:
			case <-req.Context().Done():
				return
			}
		}
	})
}
