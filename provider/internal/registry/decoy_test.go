package registry

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestRedirectToDecoys has a configured registry redirect to special-purpose addresses. The
// network under the guard routes every address it is asked to dial to a decoy TLS listener on
// the loopback alias 127.0.0.2, as a NAT64 gateway, a benchmark network or a site-local router
// would: the guard must refuse each redirect before any connection reaches the decoy.
func TestRedirectToDecoys(t *testing.T) {
	var hits atomic.Int64
	decoy := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusOK)
	}))
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Fatalf("listen on loopback alias 127.0.0.2: %v", err)
	}
	decoy.Listener = ln
	decoy.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			hits.Add(1)
		}
	}
	decoy.StartTLS()
	t.Cleanup(decoy.Close)
	_, port, _ := net.SplitHostPort(ln.Addr().String())

	targets := []string{
		"127.0.0.2", "[::ffff:127.0.0.2]", "[::ffff:7f00:2]", // loopback alias, IPv4-mapped
		"[64:ff9b::a00:1]", "[64:ff9b::7f00:2]", "[64:ff9b::a9fe:a9fe]", // NAT64 → 10.0.0.1, 127.0.0.2, metadata
		"[64:ff9b:1::1]",               // local-use NAT64
		"[fec0::1]",                    // site-local
		"198.18.0.1", "198.19.255.254", // benchmarking
		"192.0.0.1", "240.0.0.1", // IETF assignments, reserved
		"[::a00:1]", "[::7f00:2]", // IPv4-compatible
		"[2002:a00:1::1]", "[2002:7f00:2::1]", // 6to4 → 10.0.0.1, 127.0.0.2
		"[fd00::1]", "[fe80::1]", "[2001:db8::1]", "[100::1]", "0.0.0.1", "100.64.0.1",
	}

	var hops atomic.Int64
	registry := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := 0
		for i < len(targets) && "/"+strings.Trim(targets[i], "[]") != r.URL.Path {
			i++
		}
		if i == len(targets) {
			http.NotFound(w, r)
			return
		}
		hops.Add(1)
		http.Redirect(w, r, "https://"+targets[i]+":"+port+"/v2/x/manifests/v1", http.StatusTemporaryRedirect)
	}))
	t.Cleanup(registry.Close)
	regHost := strings.TrimPrefix(registry.URL, "http://")

	p := newHostPolicy()
	p.add(regHost, true, regHost)
	d := net.Dialer{Timeout: 2 * time.Second}
	gd := &guardedDialer{p: p, d: d, resolver: net.DefaultResolver,
		dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, ln.Addr().String())
		}}
	tr := &http.Transport{DialContext: gd.DialContext, TLSClientConfig: decoy.Client().Transport.(*http.Transport).TLSClientConfig}
	t.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Transport: newGuard(p, tr), Timeout: 5 * time.Second}

	for _, target := range targets {
		resp, err := client.Get(registry.URL + "/" + strings.Trim(target, "[]"))
		if err == nil {
			_ = resp.Body.Close()
			t.Errorf("redirect to %s: answered %s, want a \"registry not allowed\" error", target, resp.Status)
			continue
		}
		if !strings.Contains(err.Error(), "registry not allowed") {
			t.Errorf("redirect to %s: %v, want a \"registry not allowed\" error", target, err)
		}
	}
	if n := hops.Load(); n != int64(len(targets)) {
		t.Fatalf("registry redirected %d times, want %d", n, len(targets))
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("decoy accepted %d connections, want 0", n)
	}
}
