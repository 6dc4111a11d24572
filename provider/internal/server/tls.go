package server

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// TLSFiles name the serving certificate, its key and the CA that client certificates must chain
// to (Gatekeeper's ca.crt).
type TLSFiles struct {
	CertFile     string
	KeyFile      string
	ClientCAFile string
}

// CertReloader serves TLS 1.3 with a required, verified client certificate, from files that it
// re-reads when their content changes: new handshakes use the new certificate, key and CA;
// connections already open keep theirs. A change that does not load (a half-written pair, a
// bad PEM) keeps the previous configuration and is retried on the next check.
type CertReloader struct {
	files    TLSFiles
	m        *Metrics
	onReload func(error) // called after every reload attempt caused by a change
	cur      atomic.Pointer[tls.Config]

	mu   sync.Mutex
	last [3][]byte // file contents of the configuration in use
	bad  [3][]byte // file contents that last failed to load (reported once)
}

// NewCertReloader loads the files once; errors name the file that failed. m may be nil;
// onReload (may be nil) is told about each reload after a change (nil error: success).
func NewCertReloader(f TLSFiles, m *Metrics, onReload func(error)) (*CertReloader, error) {
	if m == nil {
		m, _ = NewMetrics(nil)
	}
	r := &CertReloader{files: f, m: m, onReload: onReload}
	if _, err := r.Reload(); err != nil {
		return nil, err
	}
	return r, nil
}

// TLSConfig returns the server configuration: TLS 1.3 only, with the current certificate and
// client CA chosen per handshake.
func (r *CertReloader) TLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		MaxVersion: tls.VersionTLS13,
		NextProtos: []string{"h2", "http/1.1"},
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return r.cur.Load(), nil
		},
	}
}

// Current returns the configuration in use (for inspection in tests).
func (r *CertReloader) Current() *tls.Config { return r.cur.Load() }

// Reload re-reads the files and, when their content changed and loads, switches to them.
func (r *CertReloader) Reload() (changed bool, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var data [3][]byte
	for i, p := range []string{r.files.CertFile, r.files.KeyFile, r.files.ClientCAFile} {
		b, err := os.ReadFile(p)
		if err != nil {
			return false, r.failed(fmt.Errorf("reading TLS file: %w", err), false)
		}
		data[i] = b
	}
	if r.cur.Load() != nil && same(data, r.last) {
		return false, nil
	}
	repeat := same(data, r.bad)
	cert, err := tls.X509KeyPair(data[0], data[1])
	if err != nil {
		r.bad = data
		return false, r.failed(fmt.Errorf("loading certificate %s with key %s: %w", r.files.CertFile, r.files.KeyFile, err), repeat)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data[2]) {
		r.bad = data
		return false, r.failed(fmt.Errorf("client CA file %s holds no PEM certificate", r.files.ClientCAFile), repeat)
	}
	cfg := &tls.Config{
		MinVersion:   tls.VersionTLS13,
		MaxVersion:   tls.VersionTLS13,
		NextProtos:   []string{"h2", "http/1.1"},
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
	}
	first := r.cur.Load() == nil
	r.cur.Store(cfg)
	r.last = data
	if cert.Leaf != nil {
		r.m.certNotAf.Set(float64(cert.Leaf.NotAfter.Unix()))
	}
	if !first {
		r.m.tlsReload.WithLabelValues("ok").Inc()
		if r.onReload != nil {
			r.onReload(nil)
		}
	}
	return true, nil
}

func same(a, b [3][]byte) bool {
	return a[0] != nil && bytes.Equal(a[0], b[0]) && bytes.Equal(a[1], b[1]) && bytes.Equal(a[2], b[2])
}

// failed counts and reports a failed reload, once per distinct bad content.
func (r *CertReloader) failed(err error, repeat bool) error {
	if r.cur.Load() != nil && !repeat {
		r.m.tlsReload.WithLabelValues("error").Inc()
		if r.onReload != nil {
			r.onReload(err)
		}
	}
	return err
}

// Watch re-checks the files every interval until ctx is done. Kubernetes updates mounted
// secrets by swapping a symlink, so content (not modification time) is compared.
func (r *CertReloader) Watch(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = 2 * time.Second
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			_, _ = r.Reload() // failures are reported through onReload and metrics
		}
	}
}
