package registrytest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
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
// forever: a registry that keeps a connection busy without ever finishing. A HEAD is answered
// at once with a digest, so a client goes on to GET the manifest, which drips.
func SlowDrip(contentType string, interval time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Content-Type", contentType)
		w.Header().Set("Docker-Content-Digest", "sha256:"+strings.Repeat("d", 64))
		if req.Method == http.MethodHead {
			w.WriteHeader(http.StatusOK)
			return
		}
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

// Content answers HEAD and GET with body as a manifest of media type contentType, with the
// Docker-Content-Digest of body, whatever the reference asked for: a registry serving bytes
// its own validation would refuse on push (an index that is not JSON, a 20,000-platform index,
// a nested referrers list). Digest checks pass, so the provider must judge the content itself.
func Content(contentType string, body []byte) http.Handler {
	sum := sha256.Sum256(body)
	digest := "sha256:" + hex.EncodeToString(sum[:])
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Content-Type", contentType)
		w.Header().Set("Docker-Content-Digest", digest)
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(http.StatusOK)
		if req.Method != http.MethodHead {
			_, _ = w.Write(body)
		}
	})
}

// BigIndex is an OCI index listing entries platform manifests (all the same digest, each a
// different architecture), about 190 bytes an entry: 20,000 entries fit under a 4 MiB cap.
func BigIndex(entries int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[`)
	for i := range entries {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":1,"platform":{"architecture":"arch%d","os":"linux"}}`, strings.Repeat("a", 64), i)
	}
	b.WriteString(`]}`)
	return b.Bytes()
}

// ReferrerBomb is an OCI index as the referrers API returns it, listing entries referrers
// (Sigstore bundle artifacts of one digest), about 220 bytes an entry: 100,000 entries are
// about 22 MB.
func ReferrerBomb(entries int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[`)
	for i := range entries {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%064x","size":1,"artifactType":"application/vnd.dev.sigstore.bundle.v0.3+json"}`, i)
	}
	b.WriteString(`]}`)
	return b.Bytes()
}

// NestedJSON is depth nested JSON arrays inside an index's manifests field: small, valid
// JSON syntax, and deeper than any decoder should follow.
func NestedJSON(depth int) []byte {
	return []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":` +
		strings.Repeat("[", depth) + strings.Repeat("]", depth) + `}`)
}

// HugeHeader answers like next with response header name set to a value of size bytes (a
// 2 MB Content-Type, a 2 MB Docker-Content-Digest), set as the header goes out so the
// registry's own value does not replace it.
func HugeHeader(name string, size int, next http.Handler) http.Handler {
	v := strings.Repeat("x", size)
	if strings.EqualFold(name, "Content-Type") {
		v = "application/" + strings.Repeat("x", max(0, size-len("application/")))
	}
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		next.ServeHTTP(&lastHeader{ResponseWriter: w, name: name, value: v}, req)
	})
}

// lastHeader sets one header just before the response's header block is written.
type lastHeader struct {
	http.ResponseWriter
	name, value string
	wrote       bool
}

func (h *lastHeader) WriteHeader(code int) {
	if !h.wrote {
		h.wrote = true
		h.Header().Set(h.name, h.value)
	}
	h.ResponseWriter.WriteHeader(code)
}

func (h *lastHeader) Write(b []byte) (int, error) {
	if !h.wrote {
		h.WriteHeader(http.StatusOK)
	}
	return h.ResponseWriter.Write(b)
}

// ManyHeaders answers like next after adding count response headers of size bytes each (a
// header set of count×size bytes).
func ManyHeaders(count, size int, next http.Handler) http.Handler {
	v := strings.Repeat("y", size)
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		for i := range count {
			w.Header().Set(fmt.Sprintf("X-Registrytest-%d", i), v)
		}
		next.ServeHTTP(w, req)
	})
}

// Next is the registry itself, for wrapping in a Behaviour (HugeHeader(…, r.Next())): requests
// are served by the real registry after the wrapper has done its part.
func (r *Registry) Next() http.Handler { return r.inner }
