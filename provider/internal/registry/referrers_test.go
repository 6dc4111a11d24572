package registry

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/imagetrust/imagetrust/provider/internal/config"
	"github.com/imagetrust/imagetrust/provider/internal/registry/registrytest"
)

func TestReferrersMemo(t *testing.T) {
	now := time.Unix(1000, 0)
	m := newReferrersMemo()
	m.now = func() time.Time { return now }
	repo, err := name.NewRepository("Reg.example:5000/team/app")
	if err != nil {
		t.Fatal(err)
	}
	req := func(method, path string) *http.Request {
		return &http.Request{Method: method, URL: &url.URL{Host: "reg.example:5000", Path: path}}
	}
	const refPath = "/v2/team/app/referrers/sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

	for _, tc := range []struct {
		name   string
		r      *http.Request
		status int
		want   bool
	}{
		{"200: the API exists", req(http.MethodGet, refPath), http.StatusOK, false},
		{"404 for another path", req(http.MethodGet, "/v2/team/app/manifests/v1"), http.StatusNotFound, false},
		{"404 for HEAD", req(http.MethodHead, refPath), http.StatusNotFound, false},
		{"401: not an answer about the API", req(http.MethodGet, refPath), http.StatusUnauthorized, false},
		{"404 from another registry", &http.Request{Method: http.MethodGet, URL: &url.URL{Host: "other.example", Path: refPath}}, http.StatusNotFound, false},
		{"404 for another repository of the registry: no API on it", req(http.MethodGet, "/v2/team/other/referrers/sha256:00"), http.StatusNotFound, true},
		{"404: no API", req(http.MethodGet, refPath), http.StatusNotFound, true},
	} {
		m.observe(tc.r, tc.status)
		if got := m.unsupported(repo); got != tc.want {
			t.Errorf("after %s: unsupported(%s) = %v, want %v", tc.name, repo, got, tc.want)
		}
	}
	now = now.Add(referrersTTL)
	if m.unsupported(repo) {
		t.Errorf("unsupported(%s) after %s = true, want false (the API is tried again)", repo, referrersTTL)
	}
	m.observe(req(http.MethodGet, refPath), http.StatusBadRequest)
	if !m.unsupported(repo) {
		t.Errorf("unsupported(%s) after a 400 = false, want true", repo)
	}
	for i := range maxReferrersMemo + 1 {
		m.observe(&http.Request{Method: http.MethodGet, URL: &url.URL{Host: fmt.Sprintf("reg%d.example", i), Path: "/v2/repo/referrers/sha256:00"}}, http.StatusNotFound)
	}
	if n := len(m.at); n > maxReferrersMemo {
		t.Errorf("memo holds %d entries, want at most %d", n, maxReferrersMemo)
	}
}

// TestUnreadBodiesKeepConnections: responses closed unread (as go-containerregistry closes a
// referrers 404) do not cost a new connection each.
func TestUnreadBodiesKeepConnections(t *testing.T) {
	reg := registrytest.New()
	t.Cleanup(reg.Close)
	c, err := New(context.Background(), Options{Registries: []config.Registry{{Host: reg.Host, Insecure: true}}, Timeout: 30 * time.Second})
	if err != nil {
		t.Fatalf("New() = %v", err)
	}
	t.Cleanup(c.CloseIdleConnections)
	hc := &http.Client{Transport: c.transport}
	conns0 := reg.Conns()
	for range 20 {
		resp, err := hc.Get("http://" + reg.Host + "/v2/team/app/referrers/sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")
		if err != nil {
			t.Fatalf("GET referrers = %v", err)
		}
		if resp.StatusCode != http.StatusNotFound {
			b, _ := io.ReadAll(resp.Body)
			t.Fatalf("GET referrers = %d %s, want 404", resp.StatusCode, b)
		}
		resp.Body.Close() // unread, like go-containerregistry's referrers fallback
	}
	if got := reg.Conns() - conns0; got != 1 {
		t.Errorf("connections for 20 requests = %d, want 1", got)
	}
}
