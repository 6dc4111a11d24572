package server

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/distribution/reference"
	"github.com/open-policy-agent/frameworks/constraint/pkg/externaldata"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/imagetrust/imagetrust/provider/internal/batch"
	"github.com/imagetrust/imagetrust/provider/internal/pki"
	"github.com/imagetrust/imagetrust/provider/internal/wire"
)

// normalise is a small real Lookup: it parses each key like the container runtime and answers
// the normalised reference, or a per-key "invalid reference" error.
func normalise(_ context.Context, keys []string) []wire.Item {
	items := make([]wire.Item, len(keys))
	for i, k := range keys {
		items[i].Key = k
		ref, err := reference.ParseDockerRef(k)
		if err != nil {
			items[i].Error = "invalid reference: " + err.Error()
			continue
		}
		items[i].Value = ref.String()
	}
	return items
}

// plainLookup is a test lookup that answers items only; classified gives it the Lookup shape,
// reading each error's class from its message as Rego does.
type plainLookup func(ctx context.Context, keys []string) []wire.Item

func classified(lk plainLookup) Lookup {
	return func(ctx context.Context, keys []string) ([]wire.Item, []wire.Class) {
		items := lk(ctx, keys)
		classes := make([]wire.Class, len(items))
		for i := range items {
			if items[i].Error != "" {
				classes[i], _ = wire.ClassOf(items[i].Error)
			}
		}
		return items, classes
	}
}

// Dedupe is batch.Dedupe's list of unique keys (the server's de-duplication).
func Dedupe(keys []string) []string {
	u, _ := batch.Dedupe(keys)
	return u
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// stack is a provider edge running on loopback with real mTLS.
type stack struct {
	ca       *pki.CA
	files    pki.Files
	reloader *CertReloader
	runner   *Runner
	reg      *prometheus.Registry
	logs     *syncBuffer
	apiURL   string
	opsURL   string
	client   *http.Client // presents a client certificate from ca
	cancel   context.CancelFunc
	done     chan error
}

// defaultDeps has generous deadlines so answerable requests are answered even on a loaded
// machine; tests about deadlines set their own.
func defaultDeps(lk plainLookup) Deps {
	return Deps{
		Resolve:         Endpoint{Lookup: classified(lk), Deadline: 30 * time.Second},
		Mutate:          Endpoint{Lookup: classified(lk), Deadline: 30 * time.Second, Idempotent: true},
		MaxRequestBytes: 64 << 10,
		MaxKeys:         100,
	}
}

func startStack(t *testing.T, d Deps) *stack {
	t.Helper()
	ca, err := pki.NewCA("imagetrust test CA")
	if err != nil {
		t.Fatal(err)
	}
	srvKP, err := ca.ServerCert("imagetrust-provider")
	if err != nil {
		t.Fatal(err)
	}
	files, err := pki.WriteDir(t.TempDir(), ca, srvKP)
	if err != nil {
		t.Fatal(err)
	}
	s := &stack{ca: ca, files: files, reg: prometheus.NewRegistry(), logs: &syncBuffer{}}
	m, err := NewMetrics(s.reg)
	if err != nil {
		t.Fatal(err)
	}
	lg := slog.New(slog.NewJSONHandler(s.logs, nil))
	d.Logger, d.Metrics = lg, m
	s.reloader, err = NewCertReloader(TLSFiles{CertFile: files.Cert, KeyFile: files.Key, ClientCAFile: files.CA}, m, nil)
	if err != nil {
		t.Fatal(err)
	}
	apiLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	opsLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.runner = &Runner{
		API: NewServer(d), APIListener: apiLn, OpsListener: opsLn,
		TLS: s.reloader.TLSConfig(), Logger: lg, ShutdownTimeout: 10 * time.Second,
	}
	s.runner.Ops = NewOpsHandler(OpsDeps{Gatherer: s.reg, Ready: s.runner.Ready})
	s.apiURL = "https://" + apiLn.Addr().String()
	s.opsURL = "http://" + opsLn.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.done = make(chan error, 1)
	go func() { s.done <- s.runner.Run(ctx) }()
	s.client = s.newClient(t, "gatekeeper", ca)
	t.Cleanup(func() {
		cancel()
		if err := <-s.done; err != nil {
			t.Errorf("Runner.Run() = %v, want nil", err)
		}
	})
	return s
}

// newClient returns an HTTPS client trusting s.ca and presenting a client cert issued by issuer
// (nil issuer: no client certificate).
func (s *stack) newClient(t *testing.T, cn string, issuer *pki.CA) *http.Client {
	t.Helper()
	var kp *pki.KeyPair
	if issuer != nil {
		var err error
		if kp, err = issuer.ClientCert(cn); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := pki.ClientTLSConfig(s.ca, kp)
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{TLSClientConfig: cfg, DisableKeepAlives: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

func requestBody(t testing.TB, keys ...string) []byte {
	t.Helper()
	b, err := json.Marshal(externaldata.NewProviderRequest(keys))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// post sends body to the endpoint path and decodes the ProviderResponse.
func post(t *testing.T, c *http.Client, url string, body []byte) (int, *externaldata.ProviderResponse) {
	t.Helper()
	resp, err := c.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var pr externaldata.ProviderResponse
	if err := json.Unmarshal(b, &pr); err != nil {
		t.Fatalf("POST %s: response %q is not a ProviderResponse: %v", url, b, err)
	}
	return resp.StatusCode, &pr
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// handshake dials the API with cfg and reads once, so that a TLS 1.3 client-certificate rejection
// (sent after the client's Finished) surfaces as an error.
func handshake(addr string, cfg *tls.Config) (*tls.ConnectionState, error) {
	d := &net.Dialer{Timeout: 10 * time.Second}
	conn, err := tls.DialWithDialer(d, "tcp", addr, cfg)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"); err != nil {
		return nil, err
	}
	b, err := io.ReadAll(conn)
	if err != nil {
		return nil, err
	}
	if !strings.HasPrefix(string(b), "HTTP/1.1 ") {
		return nil, errors.New("no HTTP answer: " + string(b))
	}
	st := conn.ConnectionState()
	return &st, nil
}
