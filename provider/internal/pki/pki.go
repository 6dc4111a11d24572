// Package pki is a small in-memory certificate authority for tests, benchmarks, the demo and
// the end-to-end setup: a CA, server certificates (SANs 127.0.0.1, localhost and any given
// names; EKU serverAuth and clientAuth) and client certificates (EKU clientAuth), all with
// ECDSA P-256 keys, written as PEM files (ca.crt, tls.crt, tls.key) when files are needed.
package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// DefaultValidity is how long issued certificates are valid when Options.Validity is zero.
const DefaultValidity = 365 * 24 * time.Hour

// File names written by WriteDir, as in a Kubernetes TLS secret plus its CA.
const (
	CAFile   = "ca.crt"
	CertFile = "tls.crt"
	KeyFile  = "tls.key"
)

// CA is a self-signed certificate authority held in memory.
type CA struct {
	Cert    *x509.Certificate
	Key     *ecdsa.PrivateKey
	CertPEM []byte
}

// KeyPair is an issued certificate and its private key.
type KeyPair struct {
	Cert    *x509.Certificate
	Key     *ecdsa.PrivateKey
	CertPEM []byte // leaf certificate only
	KeyPEM  []byte // PKCS#8 "PRIVATE KEY"
}

// Options tune an issued certificate. The zero value is a certificate valid from one hour ago
// for DefaultValidity.
type Options struct {
	// NotBefore defaults to now minus one hour (clock skew).
	NotBefore time.Time
	// Validity defaults to DefaultValidity; it is counted from NotBefore.
	Validity time.Duration
}

func (o Options) window() (time.Time, time.Time) {
	nb := o.NotBefore
	if nb.IsZero() {
		nb = time.Now().Add(-time.Hour)
	}
	v := o.Validity
	if v == 0 {
		v = DefaultValidity
	}
	return nb, nb.Add(v)
}

// NewCA creates a self-signed ECDSA P-256 CA with the given common name.
func NewCA(commonName string) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating CA key: %w", err)
	}
	serial, err := serialNumber()
	if err != nil {
		return nil, err
	}
	nb, na := Options{Validity: 10 * DefaultValidity}.window()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: commonName, Organization: []string{"imagetrust test PKI"}},
		NotBefore:             nb,
		NotAfter:              na,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("creating CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parsing CA certificate: %w", err)
	}
	return &CA{Cert: cert, Key: key, CertPEM: encodeCert(der)}, nil
}

// ServerCert issues a serving certificate for commonName with SANs 127.0.0.1, ::1, localhost and
// the given names (IP literals become IP SANs, everything else DNS SANs). Its EKU is serverAuth
// and clientAuth, like the certificates Gatekeeper and cert-manager issue for webhooks.
func (ca *CA) ServerCert(commonName string, names ...string) (*KeyPair, error) {
	return ca.ServerCertWithOptions(Options{}, commonName, names...)
}

// ServerCertWithOptions is ServerCert with an explicit validity window.
func (ca *CA) ServerCertWithOptions(o Options, commonName string, names ...string) (*KeyPair, error) {
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: commonName},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		DNSNames:    []string{"localhost"},
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if n != "" && n != "localhost" {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	return ca.issue(tmpl, o)
}

// ClientCert issues a client certificate (EKU clientAuth) for commonName.
func (ca *CA) ClientCert(commonName string) (*KeyPair, error) {
	return ca.ClientCertWithOptions(Options{}, commonName)
}

// ClientCertWithOptions is ClientCert with an explicit validity window.
func (ca *CA) ClientCertWithOptions(o Options, commonName string) (*KeyPair, error) {
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: commonName},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	return ca.issue(tmpl, o)
}

func (ca *CA) issue(tmpl *x509.Certificate, o Options) (*KeyPair, error) {
	if ca == nil || ca.Cert == nil || ca.Key == nil {
		return nil, errors.New("pki: CA has no certificate or key")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating key: %w", err)
	}
	serial, err := serialNumber()
	if err != nil {
		return nil, err
	}
	tmpl.SerialNumber = serial
	tmpl.NotBefore, tmpl.NotAfter = o.window()
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		return nil, fmt.Errorf("creating certificate for %q: %w", tmpl.Subject.CommonName, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parsing certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encoding key: %w", err)
	}
	return &KeyPair{
		Cert:    cert,
		Key:     key,
		CertPEM: encodeCert(der),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
	}, nil
}

// Pool returns a certificate pool holding only this CA.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

// CABundle returns the CA certificate as base64 PEM, the form of a Gatekeeper Provider's
// spec.caBundle.
func (ca *CA) CABundle() string { return base64.StdEncoding.EncodeToString(ca.CertPEM) }

// TLSCertificate returns the key pair as a tls.Certificate with the leaf parsed.
func (kp *KeyPair) TLSCertificate() (tls.Certificate, error) {
	c, err := tls.X509KeyPair(kp.CertPEM, kp.KeyPEM)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("loading key pair: %w", err)
	}
	return c, nil
}

// ClientTLSConfig returns a TLS 1.3 client configuration that trusts ca and presents kp (kp may
// be nil: no client certificate).
func ClientTLSConfig(ca *CA, kp *KeyPair) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: ca.Pool()}
	if kp != nil {
		c, err := kp.TLSCertificate()
		if err != nil {
			return nil, err
		}
		cfg.Certificates = []tls.Certificate{c}
	}
	return cfg, nil
}

// WriteCA writes the CA certificate (PEM) to path, atomically.
func (ca *CA) WriteCA(path string) error { return WriteFileAtomic(path, ca.CertPEM, 0o644) }

// WriteFiles writes the certificate and key (PEM) to certPath and keyPath, each atomically
// (write to a temporary file in the same directory, then rename), key with mode 0600.
func (kp *KeyPair) WriteFiles(certPath, keyPath string) error {
	if err := WriteFileAtomic(keyPath, kp.KeyPEM, 0o600); err != nil {
		return err
	}
	return WriteFileAtomic(certPath, kp.CertPEM, 0o644)
}

// Files are the paths WriteDir wrote.
type Files struct {
	CA   string // ca.crt
	Cert string // tls.crt
	Key  string // tls.key
}

// WriteDir writes ca.crt, tls.crt and tls.key into dir (created if missing) and returns their
// paths.
func WriteDir(dir string, ca *CA, kp *KeyPair) (Files, error) {
	// The certificates are public (0644); the key file itself is written 0600.
	if err := os.MkdirAll(dir, 0o755); err != nil { //nolint:gosec // G301: see above
		return Files{}, fmt.Errorf("creating %s: %w", dir, err)
	}
	f := Files{
		CA:   filepath.Join(dir, CAFile),
		Cert: filepath.Join(dir, CertFile),
		Key:  filepath.Join(dir, KeyFile),
	}
	if err := ca.WriteCA(f.CA); err != nil {
		return Files{}, err
	}
	if err := kp.WriteFiles(f.Cert, f.Key); err != nil {
		return Files{}, err
	}
	return f, nil
}

// WriteFileAtomic writes data to a temporary file next to path and renames it over path, so a
// reader (or a file watcher) never sees a partial file.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	name := tmp.Name()
	_, werr := tmp.Write(data)
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr, os.Chmod(name, perm)); err != nil {
		_ = os.Remove(name)
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(name, path); err != nil {
		_ = os.Remove(name)
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

func encodeCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func serialNumber() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("generating serial number: %w", err)
	}
	return n.Add(n, big.NewInt(1)), nil
}
