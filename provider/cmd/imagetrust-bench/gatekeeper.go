package main

import (
	"crypto/tls"
	"net/http"
	"time"

	"github.com/imagetrust/imagetrust/provider/internal/pki"
)

// gatekeeperClient is an HTTP client set up as Gatekeeper's external-data client
// (frameworks constraint/pkg/externaldata, ClientCache.getOrCreate, the version in go.mod):
//
//   - tls.Config{MinVersion: TLS 1.3}, the provider CA as RootCAs, the client certificate
//     through GetClientCertificate;
//   - http.Transport{TLSClientConfig, IdleConnTimeout: 90 s, MaxIdleConnsPerHost: 10} and
//     nothing else: no ForceAttemptHTTP2, so with its own TLS config the transport speaks
//     HTTP/1.1 with keep-alive (every line says "proto"); MaxIdleConns, dial and TLS handshake
//     timeouts are Go's zero values;
//   - http.Client{Timeout: the Provider's spec.timeout}, and each request's context carries a
//     deadline of the same length.
//
// timeout is the Provider object's spec.timeout (manifests: 3 s, mutation 1 s).
func gatekeeperClient(ca *pki.CA, cert *pki.KeyPair, timeout time.Duration) (*http.Client, error) {
	c, err := cert.TLSCertificate()
	if err != nil {
		return nil, err
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: ca.Pool()}
	tc.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &c, nil }
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			TLSClientConfig:     tc,
			IdleConnTimeout:     90 * time.Second,
			MaxIdleConnsPerHost: 10,
		},
	}, nil
}

// gatekeeperTimeout is the spec.timeout of the Provider object of each endpoint in
// manifests/components/providers.
func gatekeeperTimeout(endpoint string) time.Duration {
	if endpoint == "mutate" {
		return time.Second
	}
	return 3 * time.Second
}
