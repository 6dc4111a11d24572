package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/open-policy-agent/frameworks/constraint/pkg/externaldata"

	"github.com/imagetrust/imagetrust/provider/internal/pki"
)

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

func noEnv(string) string { return "" }

type fixture struct {
	dir    string
	ca     *pki.CA
	files  pki.Files
	host   string // loopback registry host:port
	digest string // of host/demo/app:v1
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	f := &fixture{dir: t.TempDir(), host: strings.TrimPrefix(srv.URL, "http://")}
	img, err := random.Image(512, 1)
	if err != nil {
		t.Fatal(err)
	}
	tag, err := name.NewTag(f.host + "/demo/app:v1")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(tag, img); err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	f.digest = d.String()
	if f.ca, err = pki.NewCA("imagetrust test CA"); err != nil {
		t.Fatal(err)
	}
	kp, err := f.ca.ServerCert("imagetrust-provider")
	if err != nil {
		t.Fatal(err)
	}
	if f.files, err = pki.WriteDir(filepath.Join(f.dir, "tls"), f.ca, kp); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) writeConfig(t *testing.T, extra string) string {
	t.Helper()
	cfg := fmt.Sprintf(`server:
  address: 127.0.0.1:0
  metricsAddress: 127.0.0.1:0
  tls: {certFile: %s, keyFile: %s, clientCAFile: %s}
  shutdownTimeout: 5s
registries:
  - host: %s
    insecure: true
%s`, f.files.Cert, f.files.Key, f.files.CA, f.host, extra)
	p := filepath.Join(f.dir, "provider.yaml")
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// generousDeadlines is configuration appended after the registries: answerable keys get time
// to be looked up even on a loaded machine (mutate must stay below Gatekeeper's 1s; the tests
// call it after resolve has cached the answer).
const generousDeadlines = "endpoints:\n  resolve: {deadline: 20s}\n  verify: {deadline: 20s}\nlookup: {registryTimeout: 20s}\n"

// addresses waits for the "serving" log line and returns the API and metrics addresses.
func addresses(t *testing.T, logs *syncBuffer, done <-chan error) (string, string) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); {
		for _, line := range strings.Split(logs.String(), "\n") {
			var rec struct{ Msg, APIAddress, MetricsAddress string }
			var m map[string]any
			if json.Unmarshal([]byte(line), &m) != nil || m["msg"] != "serving" {
				continue
			}
			rec.APIAddress, _ = m["api_address"].(string)
			rec.MetricsAddress, _ = m["metrics_address"].(string)
			return rec.APIAddress, rec.MetricsAddress
		}
		select {
		case err := <-done:
			t.Fatalf("run() returned early: %v\nlogs:\n%s", err, logs)
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("provider never logged \"serving\":\n%s", logs)
	return "", ""
}

func TestRunServesAndShutsDown(t *testing.T) {
	f := newFixture(t)
	cfgPath := f.writeConfig(t, generousDeadlines)
	var stdout, stderr syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"imagetrust-provider", "-config", cfgPath, "-log-level", "debug"}, noEnv, &stdout, &stderr)
	}()
	apiAddr, opsAddr := addresses(t, &stderr, done)

	kp, err := f.ca.ClientCert("gatekeeper")
	if err != nil {
		t.Fatal(err)
	}
	tlsCfg, err := pki.ClientTLSConfig(f.ca, kp)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsCfg}, Timeout: 30 * time.Second}
	defer client.CloseIdleConnections()
	call := func(endpoint string, keys ...string) *externaldata.ProviderResponse {
		t.Helper()
		body, _ := json.Marshal(externaldata.NewProviderRequest(keys))
		resp, err := client.Post("https://"+apiAddr+endpoint, "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatalf("POST %s: %v", endpoint, err)
		}
		defer resp.Body.Close()
		var pr externaldata.ProviderResponse
		if err := json.NewDecoder(resp.Body).Decode(&pr); err != nil || resp.StatusCode != 200 {
			t.Fatalf("POST %s = %d, %v", endpoint, resp.StatusCode, err)
		}
		return &pr
	}

	key := f.host + "/demo/app:v1"
	pr := call("/v1/resolve", key, "evil.example/x:1", key)
	if len(pr.Response.Items) != 2 {
		t.Fatalf("resolve items = %+v, want 2 (de-duplicated)", pr.Response.Items)
	}
	v, _ := pr.Response.Items[0].Value.(map[string]any)
	if v["digest"] != f.digest {
		t.Errorf("resolve %s digest = %v, want %s (item %+v)", key, v["digest"], f.digest, pr.Response.Items[0])
	}
	if e := pr.Response.Items[1].Error; !strings.HasPrefix(e, "registry not allowed") {
		t.Errorf("resolve evil.example/x:1 error = %q, want registry not allowed: …", e)
	}
	pr = call("/v1/mutate", key)
	if got, want := pr.Response.Items[0].Value, key+"@"+f.digest; got != want || !pr.Response.Idempotent {
		t.Errorf("mutate %s = %v (idempotent %v), want %s (idempotent true)", key, got, pr.Response.Idempotent, want)
	}
	pr = call("/v1/verify", key)
	if len(pr.Response.Items) != 1 || pr.Response.SystemError != "" {
		t.Errorf("verify %s = %+v, want one item", key, pr.Response)
	}

	resp, err := http.Get("http://" + opsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`imagetrust_requests_total{code="200",endpoint="resolve"} 1`,
		`imagetrust_keys_total{endpoint="resolve",result="value"} 1`,
		`imagetrust_cache_requests_total{cache="resolve"`,
		`imagetrust_tls_certificate_expiry_timestamp_seconds`,
		`go_goroutines`,
	} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run() after cancel = %v, want nil", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("run() did not return after cancel")
	}
	if !strings.Contains(stderr.String(), `"msg":"stopped"`) {
		t.Errorf("logs lack the stopped line:\n%s", stderr.String())
	}
	if n := strings.Count(stderr.String(), `"msg":"batch"`); n != 3 {
		t.Errorf("batch log lines = %d, want 3", n)
	}
}

func TestRunErrors(t *testing.T) {
	f := newFixture(t)
	good := f.writeConfig(t, "")
	bad := filepath.Join(f.dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("registries: [{host: 'https://x.example'}]\nlookup: {workerz: 3}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	invalid := filepath.Join(f.dir, "invalid.yaml")
	if err := os.WriteFile(invalid, []byte("registries: [{host: 'https://x.example'}]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"no config", nil, nil, "no configuration: pass -config"},
		{"unknown flag", []string{"-port", "1"}, nil, "flag provided but not defined: -port"},
		{"stray argument", []string{"-config", good, "extra"}, nil, `unexpected arguments ["extra"]`},
		{"unknown field", []string{"-config", bad}, nil, "lookup.workerz: unknown field"},
		{"invalid fields", []string{"-config", invalid}, nil, "registries[0].host: \"https://x.example\" must be host[:port]"},
		{"invalid override", []string{"-config", good, "-address", "nope"}, nil, `server.address: "nope" is not host:port`},
		{"bad log level", []string{"-config", good, "-log-level", "loud"}, nil, `-log-level "loud"`},
		{"missing TLS file via env config", nil, map[string]string{"IMAGETRUST_CONFIG": f.writeConfigWith(t, "cert.yaml", f.files.Cert+".gone")}, "server.tls: reading TLS file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr syncBuffer
			getenv := func(k string) string { return tc.env[k] }
			err := run(context.Background(), append([]string{"imagetrust-provider"}, tc.args...), getenv, &stdout, &stderr)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("run(%q) = %v, want error containing %q", tc.args, err, tc.want)
			}
		})
	}
}

func (f *fixture) writeConfigWith(t *testing.T, file, certFile string) string {
	t.Helper()
	cfg := fmt.Sprintf("server:\n  tls: {certFile: %s, keyFile: %s, clientCAFile: %s}\nregistries: [{host: %s, insecure: true}]\n", certFile, f.files.Key, f.files.CA, f.host)
	p := filepath.Join(f.dir, file)
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCheckAndExampleConfig(t *testing.T) {
	var stdout, stderr syncBuffer
	if err := run(context.Background(), []string{"imagetrust-provider", "-print-example-config"}, noEnv, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	ex := filepath.Join(t.TempDir(), "example.yaml")
	if err := os.WriteFile(ex, []byte(stdout.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	stdout = syncBuffer{}
	if err := run(context.Background(), []string{"imagetrust-provider", "-check-config", "-config", ex}, noEnv, &stdout, &stderr); err != nil {
		t.Fatalf("-check-config on the example = %v", err)
	}
	for _, want := range []string{"valid", "deadline: 800ms", "host: registry.bank.internal"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("-check-config output lacks %q:\n%s", want, stdout.String())
		}
	}
}

// TestSIGTERM sends a real SIGTERM to the test process while run() serves under main's signal
// context: run returns nil after a graceful shutdown.
func TestSIGTERM(t *testing.T) {
	f := newFixture(t)
	cfgPath := f.writeConfig(t, "")
	ctx, stop := signalContext()
	defer stop()
	var stdout, stderr syncBuffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"imagetrust-provider", "-config", cfgPath}, noEnv, &stdout, &stderr) }()
	addresses(t, &stderr, done)
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run() after SIGTERM = %v, want nil", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("run() did not return after SIGTERM")
	}
	if !strings.Contains(stderr.String(), `"msg":"shutting down"`) {
		t.Errorf("logs lack the shutdown line:\n%s", stderr.String())
	}
}

// TestHangingRegistry: a registry that accepts connections and never answers still gets every
// batch answered by its deadline, with per-key "timed out" errors (resolve and mutate).
func TestHangingRegistry(t *testing.T) {
	f := newFixture(t)
	release := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer hang.Close()
	defer close(release)
	hangHost := strings.TrimPrefix(hang.URL, "http://")
	// The good key is looked up by /v1/resolve, whose deadline is generous enough for that on a
	// loaded machine; /v1/mutate then answers it from the cache within its 900ms. The stuck key
	// times out at both deadlines, long before the registry timeout.
	cfgPath := f.writeConfig(t, fmt.Sprintf("  - host: %s\n    insecure: true\nendpoints:\n  resolve: {deadline: 3s}\n  mutate: {deadline: 900ms}\nlookup: {registryTimeout: 30s}\n", hangHost))
	var stdout, stderr syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"imagetrust-provider", "-config", cfgPath}, noEnv, &stdout, &stderr) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run() = %v", err)
		}
	}()
	apiAddr, _ := addresses(t, &stderr, done)
	kp, _ := f.ca.ClientCert("gatekeeper")
	tlsCfg, _ := pki.ClientTLSConfig(f.ca, kp)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsCfg}, Timeout: 30 * time.Second}
	defer client.CloseIdleConnections()

	good := f.host + "/demo/app:v1"
	stuck := hangHost + "/demo/app:v1"
	for _, ep := range []string{"/v1/resolve", "/v1/mutate"} {
		body, _ := json.Marshal(externaldata.NewProviderRequest([]string{stuck, good}))
		resp, err := client.Post("https://"+apiAddr+ep, "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatalf("POST %s: %v", ep, err)
		}
		var pr externaldata.ProviderResponse
		err = json.NewDecoder(resp.Body).Decode(&pr)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 || len(pr.Response.Items) != 2 {
			t.Fatalf("POST %s = %d %+v (%v), want 200 with 2 items", ep, resp.StatusCode, pr.Response, err)
		}
		if e := pr.Response.Items[0].Error; !strings.HasPrefix(e, "timed out") {
			t.Errorf("%s %s error = %q, want timed out: …", ep, stuck, e)
		}
		if it := pr.Response.Items[1]; it.Error != "" || it.Value == nil {
			t.Errorf("%s %s = %+v, want a value", ep, good, it)
		}
	}
}

// TestTLSCheckedBeforeBind: a missing TLS file is reported before the provider binds its
// ports: with the configured address already taken, the error is about the TLS file, not the
// address.
func TestTLSCheckedBeforeBind(t *testing.T) {
	f := newFixture(t)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	cfg := fmt.Sprintf("server:\n  address: %s\n  metricsAddress: 127.0.0.1:0\n  tls: {certFile: %s, keyFile: %s, clientCAFile: %s}\nregistries: [{host: %s, insecure: true}]\n",
		taken.Addr(), f.files.Cert+".gone", f.files.Key, f.files.CA, f.host)
	p := filepath.Join(f.dir, "taken.yaml")
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr syncBuffer
	err = run(context.Background(), []string{"imagetrust-provider", "-config", p}, func(string) string { return "" }, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "server.tls: reading TLS file") {
		t.Errorf("run(TLS file missing, address taken) = %v, want the TLS file error", err)
	}
}
