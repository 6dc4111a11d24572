package registry

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// hostPolicy is the SSRF guard's view of the configuration.
type hostPolicy struct {
	// hosts: configured host[:port] (registries and mirrors, lower case, plus Docker Hub's
	// API aliases) → insecure.
	hosts map[string]bool
	// dial: host:port pairs those hosts are reached at.
	dial map[string]bool
	// label: configured host for a request host, for metrics.
	label map[string]string
}

func newHostPolicy() *hostPolicy {
	return &hostPolicy{hosts: map[string]bool{}, dial: map[string]bool{}, label: map[string]string{}}
}

func (p *hostPolicy) add(host string, insecure bool, label string) {
	host = strings.ToLower(host)
	aliases := []string{host}
	if host == "docker.io" {
		// go-containerregistry talks to Docker Hub as index.docker.io.
		aliases = append(aliases, "index.docker.io", "registry-1.docker.io")
	}
	for _, h := range aliases {
		p.hosts[h] = p.hosts[h] || insecure
		p.label[h] = label
		if _, _, err := net.SplitHostPort(h); err == nil {
			p.dial[h] = true
			continue
		}
		p.dial[net.JoinHostPort(h, "443")] = true
		if insecure {
			p.dial[net.JoinHostPort(h, "80")] = true
		}
	}
}

// guard is the SSRF guard, the outermost RoundTripper every registry request (pings, token
// requests, redirects included) goes through:
//   - a configured registry or mirror: allowed; plain HTTP is upgraded to HTTPS unless the
//     host is marked insecure (go-containerregistry picks plain HTTP by itself for localhost,
//     127.0.0.0/8, ::1, *.local and RFC 1918 addresses; configuration wins);
//   - any other host (a token realm such as auth.docker.io, a blob redirect to a CDN): HTTPS
//     only, and the dialer refuses it unless every address it resolves to is public, so a
//     registry cannot point the provider at loopback, private, link-local (cloud metadata) or
//     other internal addresses, by IP literal or by DNS name.
//
// For a configured insecure host it also remembers, for plainMemoTTL, that the host answered an
// HTTPS request with something that is not TLS: go-containerregistry pings every new repository
// with HTTPS first even when plain HTTP is allowed, and each such failed handshake cost a TCP
// connection and a TLS key share (31% of the provider's CPU in a one-image-per-repository run).
// While remembered, HTTPS requests to that host are sent as plain HTTP, which its configuration
// allows. Hosts that speak TLS are never rewritten.
type guard struct {
	p    *hostPolicy
	next http.RoundTripper
	now  func() time.Time

	mu    sync.Mutex
	plain map[string]time.Time // insecure host → when it was seen speaking plain HTTP on HTTPS
}

// plainMemoTTL is how long an insecure host is known to speak plain HTTP before HTTPS is tried
// again (a registry may be switched to TLS).
const plainMemoTTL = 10 * time.Minute

func newGuard(p *hostPolicy, next http.RoundTripper) *guard {
	return &guard{p: p, next: next, now: time.Now, plain: map[string]time.Time{}}
}

func (g *guard) RoundTrip(req *http.Request) (*http.Response, error) {
	host := strings.ToLower(req.URL.Host)
	insecure, configured := g.p.hosts[host]
	switch {
	case configured && req.URL.Scheme == "http" && !insecure:
		r2 := req.Clone(req.Context())
		r2.URL.Scheme = "https"
		req = r2
	case configured && insecure && req.URL.Scheme == "https":
		if g.knownPlain(host) {
			r2 := req.Clone(req.Context())
			r2.URL.Scheme = "http"
			return g.next.RoundTrip(r2)
		}
		resp, err := g.next.RoundTrip(req)
		var rh tls.RecordHeaderError
		if err != nil && errors.As(err, &rh) {
			g.mu.Lock()
			g.plain[host] = g.now()
			g.mu.Unlock()
		}
		return resp, err
	case configured:
	case req.URL.Scheme != "https":
		return nil, &NotAllowedError{Host: host, Reason: "plain HTTP to a host that is not a configured insecure registry"}
	}
	return g.next.RoundTrip(req)
}

func (g *guard) knownPlain(host string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	at, ok := g.plain[host]
	if ok && g.now().Sub(at) >= plainMemoTTL {
		delete(g.plain, host)
		return false
	}
	return ok
}

// pingCache answers go-containerregistry's registry pings (an unauthenticated GET /v2/) to
// configured hosts from memory for pingTTL. go-containerregistry pings once per repository (its
// transports are scoped to one repository), but the answer — 200, or 401 with the
// WWW-Authenticate challenge naming the token realm and service — belongs to the registry, not
// the repository; the token itself is still fetched per repository, with that repository's
// scope. Only 200 and 401 answers are kept, and only their status and headers.
type pingCache struct {
	p    *hostPolicy
	next http.RoundTripper
	now  func() time.Time

	mu      sync.Mutex
	entries map[string]pingAnswer // scheme://host → answer
}

type pingAnswer struct {
	status       int
	proto        string
	major, minor int
	header       http.Header
	at           time.Time
}

// pingTTL bounds how long a ping answer is reused: a registry that changes its token realm is
// followed within it.
const pingTTL = time.Minute

// maxPingBody caps the body read from a ping answer that is cached (registries send "{}").
const maxPingBody = 4096

func newPingCache(p *hostPolicy, next http.RoundTripper) *pingCache {
	return &pingCache{p: p, next: next, now: time.Now, entries: map[string]pingAnswer{}}
}

func isPing(req *http.Request) bool {
	return req.Method == http.MethodGet && req.URL.Path == "/v2/" && req.URL.RawQuery == "" &&
		req.Header.Get("Authorization") == ""
}

func (c *pingCache) RoundTrip(req *http.Request) (*http.Response, error) {
	host := strings.ToLower(req.URL.Host)
	if _, configured := c.p.hosts[host]; !configured || !isPing(req) {
		return c.next.RoundTrip(req)
	}
	key := req.URL.Scheme + "://" + host
	c.mu.Lock()
	a, ok := c.entries[key]
	c.mu.Unlock()
	if ok && c.now().Sub(a.at) < pingTTL {
		return &http.Response{
			Status:        strconv.Itoa(a.status) + " " + http.StatusText(a.status),
			StatusCode:    a.status,
			Proto:         a.proto,
			ProtoMajor:    a.major,
			ProtoMinor:    a.minor,
			Header:        a.header.Clone(),
			Body:          http.NoBody,
			ContentLength: 0,
			Request:       req,
		}, nil
	}
	resp, err := c.next.RoundTrip(req)
	if err != nil || (resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusUnauthorized) {
		return resp, err
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxPingBody+1))
	_ = resp.Body.Close() // read-only body: nothing to report
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if len(body) <= maxPingBody {
		c.mu.Lock()
		c.entries[key] = pingAnswer{status: resp.StatusCode, proto: resp.Proto, major: resp.ProtoMajor, minor: resp.ProtoMinor, header: resp.Header.Clone(), at: c.now()}
		c.mu.Unlock()
	}
	return resp, nil
}

// guardedDialer dials configured hosts directly and everything else only when it resolves to
// public addresses (checked on the addresses actually dialled, so DNS rebinding cannot slip
// through).
type guardedDialer struct {
	p        *hostPolicy
	d        net.Dialer
	resolver *net.Resolver
	// dial connects to an address the guard allowed (nil: d.DialContext).
	dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

func (g *guardedDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	if g.p.dial[strings.ToLower(addr)] {
		return g.d.DialContext(ctx, network, addr)
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, &NotAllowedError{Host: addr, Reason: err.Error()}
	}
	addrs, err := g.resolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil, err
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("no addresses for %s", host)
	}
	for _, a := range addrs {
		if !isPublic(a) {
			return nil, &NotAllowedError{Host: host, Reason: fmt.Sprintf("not a configured registry and resolves to non-public address %s", a)}
		}
	}
	var last error
	for _, a := range addrs {
		dial := g.d.DialContext
		if g.dial != nil {
			dial = g.dial
		}
		c, err := dial(ctx, network, net.JoinHostPort(a.Unmap().String(), port))
		if err == nil {
			return c, nil
		}
		last = err
	}
	return nil, last
}

// newBaseTransport is the shared, tuned transport: keep-alive, enough idle connections per
// host for the per-registry concurrency, bounded handshakes and header waits. No proxy: the
// guard must see the real destination.
func newBaseTransport(p *hostPolicy, perHost int, timeout time.Duration, tlsConfig *tls.Config) *http.Transport {
	gd := &guardedDialer{p: p, d: net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}, resolver: net.DefaultResolver}
	if tlsConfig == nil {
		tlsConfig = &tls.Config{}
	}
	tlsConfig = tlsConfig.Clone()
	if tlsConfig.MinVersion == 0 {
		tlsConfig.MinVersion = tls.VersionTLS12
	}
	t := &http.Transport{
		Proxy:                 nil,
		DialContext:           gd.DialContext,
		TLSClientConfig:       tlsConfig,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   max(perHost*2, 16),
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   timeout,
		ResponseHeaderTimeout: timeout,
		ExpectContinueTimeout: time.Second,
	}
	t.MaxResponseHeaderBytes = MaxResponseHeaderBytes
	return t
}

// counting records every registry response by configured host and status code.
type counting struct {
	p     *hostPolicy
	next  http.RoundTripper
	resps *prometheus.CounterVec
	// referrers learns which repositories have no referrers API (nil: not recorded).
	referrers *referrersMemo
	// children keeps resps' counters by label, method and code (a status code a registry
	// sends: at most 900 values).
	children metricChildren[prometheus.Counter]
}

func (c *counting) RoundTrip(req *http.Request) (*http.Response, error) {
	label, ok := c.p.label[strings.ToLower(req.URL.Host)]
	if !ok {
		label = "other" // token realms, CDNs: bounded label cardinality
	}
	if err := spend(req); err != nil {
		return nil, err
	}
	resp, err := c.next.RoundTrip(req)
	code := "error"
	if err == nil {
		code = statusText(resp.StatusCode)
		if c.referrers != nil {
			c.referrers.observe(req, resp.StatusCode)
		}
	}
	c.children.get(c.resps, label, req.Method, code).Inc()
	if err == nil && resp.Body != nil && resp.Body != http.NoBody {
		limit := responseCap(req)
		resp.Body = &cappedBody{r: resp.Body, left: limit, limit: limit, req: req}
	}
	return resp, err
}

// statusText is strconv.Itoa of an HTTP status code, without formatting the common ones.
func statusText(code int) string {
	switch code {
	case http.StatusOK:
		return "200"
	case http.StatusTemporaryRedirect:
		return "307"
	case http.StatusUnauthorized:
		return "401"
	case http.StatusNotFound:
		return "404"
	}
	return strconv.Itoa(code)
}

// drainBytes is how much of an unread response body Close reads so that the connection can be
// reused: an error body, or a 404 that go-containerregistry closes unread (its referrers call
// does so for every registry without the referrers API, which cost one new connection — a
// dial and, for HTTPS, a handshake — per image). Bigger leftovers are not worth reading.
const drainBytes = 64 << 10
