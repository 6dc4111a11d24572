package server

import (
	"context"
	"crypto/tls"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/imagetrust/imagetrust/provider/internal/pki"
)

func TestMutualTLS(t *testing.T) {
	s := startStack(t, defaultDeps(normalise))
	addr := strings.TrimPrefix(s.apiURL, "https://")
	other, err := pki.NewCA("another CA")
	if err != nil {
		t.Fatal(err)
	}
	good, _ := s.ca.ClientCert("gatekeeper")
	foreign, _ := other.ClientCert("gatekeeper")
	sendAnyway := func(kp *pki.KeyPair) func(*tls.Config) {
		return func(c *tls.Config) {
			cert, err := kp.TLSCertificate()
			if err != nil {
				t.Fatal(err)
			}
			c.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }
		}
	}
	tls12 := func(c *tls.Config) { c.MinVersion, c.MaxVersion = tls.VersionTLS12, tls.VersionTLS12 }
	for _, tc := range []struct {
		name    string
		client  *pki.KeyPair
		adjust  func(*tls.Config)
		wantErr string
	}{
		{name: "client cert from the configured CA", client: good},
		{name: "no client cert", wantErr: "certificate required"},
		{name: "client cert from another CA", client: foreign, wantErr: "certificate required"},
		{name: "client cert from another CA, sent anyway", adjust: sendAnyway(foreign), wantErr: "unknown certificate authority"},
		{name: "TLS 1.2 client", client: good, adjust: tls12, wantErr: "protocol version"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := pki.ClientTLSConfig(s.ca, tc.client)
			if err != nil {
				t.Fatal(err)
			}
			if tc.adjust != nil {
				tc.adjust(cfg)
			}
			st, err := handshake(addr, cfg)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("handshake() = %v, want success", err)
			case tc.wantErr == "" && st.Version != tls.VersionTLS13:
				t.Errorf("handshake() version = %x, want TLS 1.3", st.Version)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("handshake() = %v, want error containing %q", err, tc.wantErr)
			}
		})
	}
	// And through net/http: the request with a good certificate is answered.
	code, pr := post(t, s.client, s.apiURL+"/v1/resolve", requestBody(t, "nginx"))
	if code != http.StatusOK || len(pr.Response.Items) != 1 || pr.Response.Items[0].Value != "docker.io/library/nginx:latest" {
		t.Errorf("POST /v1/resolve = %d %+v, want 200 with docker.io/library/nginx:latest", code, pr.Response)
	}
}

func TestCertReload(t *testing.T) {
	s := startStack(t, defaultDeps(normalise))
	addr := strings.TrimPrefix(s.apiURL, "https://")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.reloader.Watch(ctx, 20*time.Millisecond)

	good, _ := s.ca.ClientCert("gatekeeper")
	cfg, _ := pki.ClientTLSConfig(s.ca, good)
	serving := func() string {
		st, err := handshake(addr, cfg)
		if err != nil {
			t.Fatalf("handshake() = %v", err)
		}
		return st.PeerCertificates[0].Subject.CommonName
	}
	if got, want := serving(), "imagetrust-provider"; got != want {
		t.Fatalf("serving certificate CN = %q, want %q", got, want)
	}

	// A broken pair (certificate without its key) is ignored: the old certificate stays.
	rotated, err := s.ca.ServerCert("imagetrust-provider-rotated")
	if err != nil {
		t.Fatal(err)
	}
	if err := pki.WriteFileAtomic(s.files.Cert, rotated.CertPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := s.reloader.Reload(); err == nil || !strings.Contains(err.Error(), s.files.Cert) {
		t.Errorf("Reload() with mismatched key = %v, want error naming %s", err, s.files.Cert)
	}
	if got, want := serving(), "imagetrust-provider"; got != want {
		t.Errorf("after a half-written rotation, serving CN = %q, want %q", got, want)
	}

	// Completing the rotation: new handshakes see the new certificate (found by the watcher).
	if err := rotated.WriteFiles(s.files.Cert, s.files.Key); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "rotated serving certificate", func() bool { return serving() == "imagetrust-provider-rotated" })

	// Rotating the client CA: a client of the new CA is accepted, one of the old CA refused.
	newCA, err := pki.NewCA("rotated client CA")
	if err != nil {
		t.Fatal(err)
	}
	if err := newCA.WriteCA(s.files.CA); err != nil {
		t.Fatal(err)
	}
	newClient, _ := newCA.ClientCert("gatekeeper")
	newCfg, _ := pki.ClientTLSConfig(s.ca, newClient) // the serving cert still chains to s.ca
	waitFor(t, "rotated client CA", func() bool { _, err := handshake(addr, newCfg); return err == nil })
	if _, err := handshake(addr, cfg); err == nil {
		t.Errorf("handshake() with a client of the old CA = nil, want refused after CA rotation")
	}

	if got := metricValue(t, s, `imagetrust_tls_reloads_total{result="ok"}`); got < 2 {
		t.Errorf("imagetrust_tls_reloads_total{result=ok} = %v, want >= 2", got)
	}
	if got := metricValue(t, s, `imagetrust_tls_reloads_total{result="error"}`); got < 1 {
		t.Errorf("imagetrust_tls_reloads_total{result=error} = %v, want >= 1", got)
	}
}

func TestNewCertReloaderErrors(t *testing.T) {
	ca, _ := pki.NewCA("ca")
	kp, _ := ca.ServerCert("s")
	f, err := pki.WriteDir(t.TempDir(), ca, kp)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		files TLSFiles
		want  string
	}{
		{"missing cert", TLSFiles{CertFile: f.Cert + ".missing", KeyFile: f.Key, ClientCAFile: f.CA}, f.Cert + ".missing"},
		{"key is not a key", TLSFiles{CertFile: f.Cert, KeyFile: f.CA, ClientCAFile: f.CA}, f.Cert},
		{"CA is a key", TLSFiles{CertFile: f.Cert, KeyFile: f.Key, ClientCAFile: f.Key}, "client CA file " + f.Key},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewCertReloader(tc.files, nil, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("NewCertReloader() = %v, want error naming %q", err, tc.want)
			}
		})
	}
}

// waitFor polls cond until it holds, with a generous overall bound (a loaded machine is slow,
// never wrong).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("gave up waiting a minute for %s", what)
}
