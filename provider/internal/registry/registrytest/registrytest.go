// Package registrytest runs the real go-containerregistry registry (registry.New) on loopback
// for tests and the load generator, wrapped with request counting, basic auth, and outage
// switches (hang or fail chosen repositories). The registry itself is never replaced.
package registrytest

import (
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/google/go-containerregistry/pkg/registry"
)

// Registry is a running in-memory registry.
type Registry struct {
	Server *httptest.Server
	// Host is 127.0.0.1:port.
	Host string

	mu     sync.Mutex
	counts map[string]int // "METHOD kind" → n, kind: ping, manifests, blobs, tags, other

	hang     atomic.Value // func(*http.Request) bool
	hostile  atomic.Value // Behaviour
	fail     atomic.Int64 // HTTP status to answer every /v2/ request with (0: off)
	release  chan struct{}
	gate     atomic.Value // func(*http.Request): called before a manifest request is served
	active   atomic.Int32
	peak     atomic.Int32
	conns    atomic.Int64 // connections accepted
	latency  atomic.Int64 // nanoseconds added before every request (latency.go)
	user     string
	password string
	inner    http.Handler // the registry itself (Next)
}

// Option configures a Registry.
type Option func(*Registry)

// WithBasicAuth requires HTTP basic auth with user and password on every /v2/ request.
func WithBasicAuth(user, password string) Option {
	return func(r *Registry) { r.user, r.password = user, password }
}

// New starts a plain-HTTP registry on loopback; the caller stops it with Close (usually in
// t.Cleanup).
func New(opts ...Option) *Registry {
	return start(func(s *httptest.Server) { s.Start() }, "http://", opts)
}

// NewTLS is New over HTTPS (httptest's certificate: use r.Server.Client() / Certificate()).
func NewTLS(opts ...Option) *Registry {
	return start(func(s *httptest.Server) { s.StartTLS() }, "https://", opts)
}

func start(serve func(*httptest.Server), scheme string, opts []Option) *Registry {
	r := &Registry{counts: map[string]int{}, release: make(chan struct{})}
	for _, o := range opts {
		o(r)
	}
	r.hang.Store(func(*http.Request) bool { return false })
	r.hostile.Store(Behaviour{})
	r.gate.Store(func(*http.Request) {})
	r.inner = registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	r.Server = httptest.NewUnstartedServer(r.wrap(r.inner))
	r.Server.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			r.conns.Add(1)
		}
	}
	serve(r.Server)
	r.Host = strings.TrimPrefix(r.Server.URL, scheme)
	return r
}

// Close releases hanging requests and stops the server.
func (r *Registry) Close() {
	r.Unhang()
	r.Server.CloseClientConnections()
	r.Server.Close()
}

func kind(p string) string {
	switch {
	case p == "/v2/" || p == "/v2":
		return "ping"
	case strings.Contains(p, "/manifests/"):
		return "manifests"
	case strings.Contains(p, "/blobs/"):
		return "blobs"
	case strings.Contains(p, "/tags/"):
		return "tags"
	default:
		return "other"
	}
}

func (r *Registry) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		n := r.active.Add(1)
		defer r.active.Add(-1)
		for {
			p := r.peak.Load()
			if n <= p || r.peak.CompareAndSwap(p, n) {
				break
			}
		}
		k := kind(req.URL.Path)
		r.mu.Lock()
		r.counts[req.Method+" "+k]++
		r.mu.Unlock()
		r.delay(req)
		if r.user != "" {
			u, p, ok := req.BasicAuth()
			if !ok || u != r.user || p != r.password {
				w.Header().Set("WWW-Authenticate", `Basic realm="registrytest"`)
				http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`, http.StatusUnauthorized)
				return
			}
		}
		if code := r.fail.Load(); code != 0 {
			http.Error(w, `{"errors":[{"code":"UNAVAILABLE","message":"registrytest outage"}]}`, int(code))
			return
		}
		if r.hang.Load().(func(*http.Request) bool)(req) {
			r.mu.Lock()
			ch := r.release
			r.mu.Unlock()
			select {
			case <-ch:
				http.Error(w, `{"errors":[{"code":"UNAVAILABLE","message":"registrytest: released after hanging"}]}`, http.StatusServiceUnavailable)
			case <-req.Context().Done():
			}
			return
		}
		if b := r.hostile.Load().(Behaviour); b.h != nil && b.match(req) {
			b.h.ServeHTTP(w, req)
			return
		}
		if k == "manifests" {
			r.gate.Load().(func(*http.Request))(req)
		}
		next.ServeHTTP(w, req)
	})
}

// Count is the number of requests with method ("HEAD", "GET", …) and kind ("ping",
// "manifests", "blobs", "tags", "other") so far.
func (r *Registry) Count(method, kind string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.counts[method+" "+kind]
}

// Total is the number of requests so far.
func (r *Registry) Total() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, c := range r.counts {
		n += c
	}
	return n
}

// ResetCounts zeroes the request counts and the concurrency peak.
func (r *Registry) ResetCounts() {
	r.mu.Lock()
	r.counts = map[string]int{}
	r.mu.Unlock()
	r.peak.Store(0)
}

// Conns is the number of connections the registry has accepted (never reset): a client that
// reuses its connections opens few.
func (r *Registry) Conns() int { return int(r.conns.Load()) }

// Peak is the largest number of requests served at once since the last ResetCounts.
func (r *Registry) Peak() int { return int(r.peak.Load()) }

// Hang makes requests for which match returns true hang until Unhang, Close, or the client
// gives up. Hang(nil) hangs every request: the registry stops answering.
func (r *Registry) Hang(match func(*http.Request) bool) {
	if match == nil {
		match = func(*http.Request) bool { return true }
	}
	r.hang.Store(match)
}

// HangRepo hangs every request whose path names repository repo ("team/app").
func (r *Registry) HangRepo(repo string) {
	r.Hang(func(req *http.Request) bool { return strings.HasPrefix(req.URL.Path, "/v2/"+repo+"/") })
}

// Unhang releases hanging requests and stops hanging new ones.
func (r *Registry) Unhang() {
	r.hang.Store(func(*http.Request) bool { return false })
	r.hostile.Store(Behaviour{})
	r.mu.Lock()
	close(r.release)
	r.release = make(chan struct{})
	r.mu.Unlock()
}

// Fail makes every /v2/ request answer status (e.g. 503); Fail(0) stops.
func (r *Registry) Fail(status int) { r.fail.Store(int64(status)) }

// Gate calls f before serving each manifest request (nil: none); f may block.
func (r *Registry) Gate(f func(*http.Request)) {
	if f == nil {
		f = func(*http.Request) {}
	}
	r.gate.Store(f)
}
