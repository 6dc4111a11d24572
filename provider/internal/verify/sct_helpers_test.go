package verify

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	ct "github.com/google/certificate-transparency-go"
	cttls "github.com/google/certificate-transparency-go/tls"
	ctx509 "github.com/google/certificate-transparency-go/x509"
	ctx509util "github.com/google/certificate-transparency-go/x509util"
	"github.com/google/go-containerregistry/pkg/name"
	cbundle "github.com/sigstore/cosign/v2/pkg/cosign/bundle"
	cstatic "github.com/sigstore/cosign/v2/pkg/oci/static"
	"github.com/sigstore/rekor/pkg/pki"
	rekortypes "github.com/sigstore/rekor/pkg/types"
	"github.com/sigstore/rekor/pkg/types/hashedrekord"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/testing/ca"
	"github.com/sigstore/sigstore-go/pkg/tlog"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/imagetrust/imagetrust/provider/internal/config"
)

// ctLog is an in-test RFC 6962 certificate transparency log: a P-256 key that signs SCTs
// under a log ID.
type ctLog struct {
	key *ecdsa.PrivateKey
	// id is the log ID an SCT names: SHA-256 of the DER SubjectPublicKeyInfo of key
	// (RFC 6962 §3.2), unless the test forges it.
	id [sha256.Size]byte
}

func newCTLog(t testing.TB) *ctLog {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(k.Public())
	if err != nil {
		t.Fatal(err)
	}
	return &ctLog{key: k, id: sha256.Sum256(der)}
}

// transparencyLog is the log as a trusted_root.json `ctlogs` entry, valid for a day around now.
func (l *ctLog) transparencyLog() *root.TransparencyLog {
	return &root.TransparencyLog{
		BaseURL:             "https://ctlog.localhost",
		ID:                  l.id[:],
		ValidityPeriodStart: time.Now().Add(-24 * time.Hour),
		ValidityPeriodEnd:   time.Now().Add(24 * time.Hour),
		HashFunc:            crypto.SHA256,
		PublicKey:           l.key.Public(),
		SignatureHashFunc:   crypto.SHA256,
	}
}

// sct is the log's v1 SCT for a precertificate issued by issuer (RFC 6962 §3.2): the
// signature covers the precertificate's TBSCertificate without the poison extension and the
// SHA-256 of the issuer's SubjectPublicKeyInfo.
func (l *ctLog) sct(t testing.TB, precertDER []byte, issuer *x509.Certificate) *ct.SignedCertificateTimestamp {
	t.Helper()
	pre, err := ctx509.ParseCertificate(precertDER)
	if err != nil {
		t.Fatalf("ctx509.ParseCertificate(precert) = %v", err)
	}
	iss, err := ctx509.ParseCertificate(issuer.Raw)
	if err != nil {
		t.Fatalf("ctx509.ParseCertificate(issuer) = %v", err)
	}
	if !pre.IsPrecertificate() {
		t.Fatal("precertificate has no poison extension")
	}
	sct := ct.SignedCertificateTimestamp{
		SCTVersion: ct.V1,
		LogID:      ct.LogID{KeyID: l.id},
		Timestamp:  uint64(time.Now().UnixMilli()),
	}
	leaf, err := ct.MerkleTreeLeafFromChain([]*ctx509.Certificate{pre, iss}, ct.PrecertLogEntryType, sct.Timestamp)
	if err != nil {
		t.Fatalf("MerkleTreeLeafFromChain() = %v", err)
	}
	input, err := ct.SerializeSCTSignatureInput(sct, ct.LogEntry{Leaf: *leaf})
	if err != nil {
		t.Fatalf("SerializeSCTSignatureInput() = %v", err)
	}
	sig, err := cttls.CreateSignature(*l.key, cttls.SHA256, input)
	if err != nil {
		t.Fatalf("CreateSignature() = %v", err)
	}
	sct.Signature = ct.DigitallySigned(sig)
	return &sct
}

var (
	oidFulcioIssuer = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 1}
	// asn1NULL is the DER NULL the RFC 6962 §3.1 poison extension carries.
	asn1NULL = []byte{0x05, 0x00}
)

// sctSigstore is an in-test Fulcio (root and intermediate, whose key the test holds so it can
// run the precertificate flow) with VirtualSigstore's Rekor log, and its trusted_root.json
// listing the trusted CT logs.
type sctSigstore struct {
	vs        *ca.VirtualSigstore
	rootCert  *x509.Certificate
	interCert *x509.Certificate
	interKey  *ecdsa.PrivateKey
	rootFile  string
}

func newSCTSigstore(t testing.TB, trusted ...*ctLog) *sctSigstore {
	t.Helper()
	vs, err := ca.NewVirtualSigstore()
	if err != nil {
		t.Fatal(err)
	}
	rootCert, rootKey, err := ca.GenerateRootCa()
	if err != nil {
		t.Fatal(err)
	}
	interCert, interKey, err := ca.GenerateFulcioIntermediate(rootCert, rootKey)
	if err != nil {
		t.Fatal(err)
	}
	fulcio := &root.FulcioCertificateAuthority{
		Root: rootCert, Intermediates: []*x509.Certificate{interCert}, URI: "https://fulcio.localhost",
		ValidityPeriodStart: time.Now().Add(-24 * time.Hour), ValidityPeriodEnd: time.Now().Add(24 * time.Hour),
	}
	ctlogs := map[string]*root.TransparencyLog{}
	for _, l := range trusted {
		ctlogs[hex.EncodeToString(l.id[:])] = l.transparencyLog()
	}
	tr, err := root.NewTrustedRoot(root.TrustedRootMediaType01, []root.CertificateAuthority{fulcio}, ctlogs, nil, rawLogIDs(t, vs.RekorLogs()))
	if err != nil {
		t.Fatalf("NewTrustedRoot() = %v", err)
	}
	b, err := tr.MarshalJSON()
	if err != nil {
		t.Fatalf("TrustedRoot.MarshalJSON() = %v", err)
	}
	f := filepath.Join(t.TempDir(), "trusted_root.json")
	if err := os.WriteFile(f, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return &sctSigstore{vs: vs, rootCert: rootCert, interCert: interCert, interKey: interKey, rootFile: f}
}

// authority is a keyless authority over this trusted root with the Rekor log required;
// requireSCT nil leaves the configuration default.
func (s *sctSigstore) authority(n, issuer, subject string, requireSCT *bool) config.Authority {
	requireTlog := true
	return config.Authority{Name: n, Keyless: &config.Keyless{Issuer: issuer, Subject: subject, TrustedRootFile: s.rootFile, RequireTlog: &requireTlog, RequireSCT: requireSCT}}
}

// issue is a Fulcio leaf certificate for identity/issuer, valid for ten minutes around now.
// With an scts function it runs the RFC 6962 precertificate flow: the intermediate issues a
// precertificate (poison extension), scts returns the SCTs for it, and the final certificate
// is the same TBSCertificate with the SCT list extension in the poison's place.
func (s *sctSigstore) issue(t testing.TB, identity, issuer string, scts func(precertDER []byte) []*ct.SignedCertificateTimestamp) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:   serial,
		EmailAddresses: []string{identity},
		NotBefore:      time.Now().Add(-time.Minute),
		NotAfter:       time.Now().Add(10 * time.Minute),
		KeyUsage:       x509.KeyUsageDigitalSignature,
		ExtKeyUsage:    []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
	}
	issuerExt := pkix.Extension{Id: oidFulcioIssuer, Value: []byte(issuer)}
	tmpl.ExtraExtensions = []pkix.Extension{issuerExt}
	if scts != nil {
		tmpl.ExtraExtensions = []pkix.Extension{issuerExt, {Id: asn1.ObjectIdentifier(ctx509.OIDExtensionCTPoison), Critical: true, Value: asn1NULL}}
		pre, err := x509.CreateCertificate(rand.Reader, tmpl, s.interCert, key.Public(), s.interKey)
		if err != nil {
			t.Fatalf("CreateCertificate(precert) = %v", err)
		}
		list, err := ctx509util.MarshalSCTsIntoSCTList(scts(pre))
		if err != nil {
			t.Fatalf("MarshalSCTsIntoSCTList() = %v", err)
		}
		tlsList, err := cttls.Marshal(*list)
		if err != nil {
			t.Fatalf("tls.Marshal(SCT list) = %v", err)
		}
		// RFC 6962 §3.3: the extension value is an OCTET STRING holding the TLS-encoded list.
		val, err := asn1.Marshal(tlsList)
		if err != nil {
			t.Fatal(err)
		}
		tmpl.ExtraExtensions = []pkix.Extension{issuerExt, {Id: asn1.ObjectIdentifier(ctx509.OIDExtensionCTSCT), Value: val}}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, s.interCert, key.Public(), s.interKey)
	if err != nil {
		t.Fatalf("CreateCertificate() = %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

// signWith signs d's simple-signing payload with key, logs a hashedrekord entry for it in the
// Rekor log (SET, integrated now) and attaches signature, certificate and Rekor bundle in
// cosign's tag scheme, as `cosign sign` with a Fulcio certificate does.
func (s *sctSigstore) signWith(t testing.TB, d name.Digest, cert *x509.Certificate, key *ecdsa.PrivateKey) {
	t.Helper()
	payload := cosignPayload(t, d)
	sv, err := signature.LoadECDSASignerVerifier(key, crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := sv.SignMessage(bytes.NewReader(payload))
	if err != nil {
		t.Fatal(err)
	}
	certPEM, err := cryptoutils.MarshalCertificateToPEM(cert)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(payload)
	ctx := context.Background()
	pe, err := rekortypes.NewProposedEntry(ctx, hashedrekord.KIND, "0.0.1", rekortypes.ArtifactProperties{
		ArtifactHash: hex.EncodeToString(sum[:]), SignatureBytes: sig, PublicKeyBytes: [][]byte{certPEM}, PKIFormat: string(pki.X509),
	})
	if err != nil {
		t.Fatalf("NewProposedEntry() = %v", err)
	}
	ei, err := rekortypes.CreateVersionedEntry(pe)
	if err != nil {
		t.Fatalf("CreateVersionedEntry() = %v", err)
	}
	body, err := rekortypes.CanonicalizeEntry(ctx, ei)
	if err != nil {
		t.Fatalf("CanonicalizeEntry() = %v", err)
	}
	logID, err := s.vs.RekorLogID()
	if err != nil {
		t.Fatal(err)
	}
	p := tlog.RekorPayload{Body: base64.StdEncoding.EncodeToString(body), IntegratedTime: time.Now().Unix(), LogIndex: 7, LogID: logID}
	set, err := s.vs.RekorSignPayload(p)
	if err != nil {
		t.Fatal(err)
	}
	attachSig(t, d, payload, sig, cstatic.WithCertChain(certPEM, nil), cstatic.WithBundle(&cbundle.RekorBundle{SignedEntryTimestamp: set, Payload: cbundle.RekorPayload{
		Body: p.Body, IntegratedTime: p.IntegratedTime, LogIndex: p.LogIndex, LogID: p.LogID,
	}}))
}
