package registry

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
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
type guard struct {
	p    *hostPolicy
	next http.RoundTripper
}

func (g *guard) RoundTrip(req *http.Request) (*http.Response, error) {
	host := strings.ToLower(req.URL.Host)
	insecure, configured := g.p.hosts[host]
	switch {
	case configured && req.URL.Scheme == "http" && !insecure:
		r2 := req.Clone(req.Context())
		r2.URL.Scheme = "https"
		req = r2
	case configured:
	case req.URL.Scheme != "https":
		return nil, &NotAllowedError{Host: host, Reason: "plain HTTP to a host that is not a configured insecure registry"}
	}
	return g.next.RoundTrip(req)
}

// guardedDialer dials configured hosts directly and everything else only when it resolves to
// public addresses (checked on the addresses actually dialled, so DNS rebinding cannot slip
// through).
type guardedDialer struct {
	p        *hostPolicy
	d        net.Dialer
	resolver *net.Resolver
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
		c, err := g.d.DialContext(ctx, network, net.JoinHostPort(a.Unmap().String(), port))
		if err == nil {
			return c, nil
		}
		last = err
	}
	return nil, last
}

var cgnat = netip.MustParsePrefix("100.64.0.0/10")

func isPublic(a netip.Addr) bool {
	a = a.Unmap()
	return a.IsValid() && a.IsGlobalUnicast() && !a.IsPrivate() && !a.IsLoopback() &&
		!a.IsLinkLocalUnicast() && !cgnat.Contains(a)
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
	return &http.Transport{
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
}

// counting records every registry response by configured host and status code.
type counting struct {
	p     *hostPolicy
	next  http.RoundTripper
	resps *prometheus.CounterVec
}

func (c *counting) RoundTrip(req *http.Request) (*http.Response, error) {
	label, ok := c.p.label[strings.ToLower(req.URL.Host)]
	if !ok {
		label = "other" // token realms, CDNs: bounded label cardinality
	}
	resp, err := c.next.RoundTrip(req)
	code := "error"
	if err == nil {
		code = strconv.Itoa(resp.StatusCode)
	}
	c.resps.WithLabelValues(label, req.Method, code).Inc()
	return resp, err
}
