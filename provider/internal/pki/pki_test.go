package pki

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"io"
	"os"
	"slices"
	"testing"
	"time"
)

func TestServerCertSANsAndEKU(t *testing.T) {
	ca, err := NewCA("test-ca")
	if err != nil {
		t.Fatal(err)
	}
	kp, err := ca.ServerCert("imagetrust-provider", "imagetrust-provider.gatekeeper-system.svc", "10.0.0.7", "localhost")
	if err != nil {
		t.Fatal(err)
	}
	for _, host := range []string{"127.0.0.1", "localhost", "imagetrust-provider.gatekeeper-system.svc", "10.0.0.7", "::1"} {
		if _, err := kp.Cert.Verify(x509.VerifyOptions{DNSName: host, Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
			t.Errorf("Verify(server cert, %q) = %v, want nil", host, err)
		}
	}
	if got := kp.Cert.DNSNames; !slices.Equal(got, []string{"localhost", "imagetrust-provider.gatekeeper-system.svc"}) {
		t.Errorf("DNSNames = %v, want [localhost imagetrust-provider.gatekeeper-system.svc]", got)
	}
	if got, want := kp.Cert.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}; !slices.Equal(got, want) {
		t.Errorf("ExtKeyUsage = %v, want %v", got, want)
	}
	if _, err := kp.Cert.Verify(x509.VerifyOptions{DNSName: "evil.example", Roots: ca.Pool()}); err == nil {
		t.Errorf("Verify(server cert, evil.example) = nil, want hostname error")
	}
	b, err := base64.StdEncoding.DecodeString(ca.CABundle())
	if err != nil || string(b) != string(ca.CertPEM) {
		t.Errorf("CABundle() does not decode to the CA PEM: %v", err)
	}
}

func TestClientCertEKU(t *testing.T) {
	ca, err := NewCA("test-ca")
	if err != nil {
		t.Fatal(err)
	}
	kp, err := ca.ClientCert("gatekeeper")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kp.Cert.Verify(x509.VerifyOptions{Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("Verify(client cert, clientAuth) = %v, want nil", err)
	}
	if _, err := kp.Cert.Verify(x509.VerifyOptions{Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err == nil {
		t.Errorf("Verify(client cert, serverAuth) = nil, want EKU error")
	}
}

func TestExpiredOption(t *testing.T) {
	ca, err := NewCA("test-ca")
	if err != nil {
		t.Fatal(err)
	}
	kp, err := ca.ClientCertWithOptions(Options{NotBefore: time.Now().Add(-48 * time.Hour), Validity: time.Hour}, "old")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kp.Cert.Verify(x509.VerifyOptions{Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err == nil {
		t.Errorf("Verify(expired cert) = nil, want expiry error")
	}
}

// TestMutualTLSWithFiles writes the files, loads them the way a server does and completes a
// TLS 1.3 handshake with client-certificate verification over loopback.
func TestMutualTLSWithFiles(t *testing.T) {
	ca, err := NewCA("test-ca")
	if err != nil {
		t.Fatal(err)
	}
	srvKP, err := ca.ServerCert("server")
	if err != nil {
		t.Fatal(err)
	}
	f, err := WriteDir(t.TempDir(), ca, srvKP)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(f.Key); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode = %v (%v), want 0600", fi.Mode().Perm(), err)
	}
	cert, err := tls.LoadX509KeyPair(f.Cert, f.Key)
	if err != nil {
		t.Fatal(err)
	}
	caPEM, err := os.ReadFile(f.CA)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatal("ca.crt holds no certificate")
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{cert},
		ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.(*tls.Conn).Handshake()
			_, _ = c.Write([]byte("ok"))
			_ = c.Close()
		}
	}()

	other, err := NewCA("other-ca")
	if err != nil {
		t.Fatal(err)
	}
	good, _ := ca.ClientCert("gatekeeper")
	bad, _ := other.ClientCert("intruder")
	for _, tc := range []struct {
		name   string
		client *KeyPair
		wantOK bool
	}{
		{"client cert from the CA", good, true},
		{"no client cert", nil, false},
		{"client cert from another CA", bad, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := ClientTLSConfig(ca, tc.client)
			if err != nil {
				t.Fatal(err)
			}
			conn, err := tls.Dial("tcp", ln.Addr().String(), cfg)
			if err == nil {
				// TLS 1.3: the server's verdict on the client certificate arrives with the first read.
				_, err = io.ReadAll(conn)
				conn.Close()
			}
			if (err == nil) != tc.wantOK {
				t.Errorf("handshake error = %v, want ok=%v", err, tc.wantOK)
			}
		})
	}
}
