package check

import (
	"context"
	"crypto/tls"
	"io"
	"log"
	"net"
	"net/http"
	"time"

	"github.com/open-policy-agent/frameworks/constraint/pkg/apis/externaldata/unversioned"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/imagetrust/imagetrust/provider/internal/pki"
)

// loopbackServer is an HTTPS server on 127.0.0.1 with a certificate made for the run, which
// the engine calls as Gatekeeper calls a Provider (TLS 1.3, caBundle).
type loopbackServer struct {
	srv      *http.Server
	url      string
	caBundle string
}

// serveProviders serves POST /providers/{name} with h on a new loopbackServer.
func serveProviders(h http.HandlerFunc) (*loopbackServer, error) {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /providers/{name}", h)
	ca, err := pki.NewCA("imagetrust check")
	if err != nil {
		return nil, err
	}
	kp, err := ca.ServerCert("imagetrust-check")
	if err != nil {
		return nil, err
	}
	cert, err := tls.X509KeyPair(kp.CertPEM, kp.KeyPEM)
	if err != nil {
		return nil, err
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &loopbackServer{
		srv: &http.Server{
			Handler:           mux,
			ReadHeaderTimeout: 10 * time.Second,
			ErrorLog:          log.New(io.Discard, "", 0),
			TLSConfig:         &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{cert}},
		},
		url:      "https://" + ln.Addr().String(),
		caBundle: ca.CABundle(),
	}
	go func() { _ = s.srv.ServeTLS(ln, "", "") }()
	return s, nil
}

// provider is the Provider object name that calls this server's /providers/<name>.
func (s *loopbackServer) provider(name string, timeout time.Duration) *unversioned.Provider {
	return &unversioned.Provider{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: unversioned.ProviderSpec{
			URL:      s.url + "/providers/" + name,
			Timeout:  int(max(timeout/time.Second, 1)),
			CABundle: s.caBundle,
		},
	}
}

func (s *loopbackServer) shutdown() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return s.srv.Shutdown(ctx)
}
