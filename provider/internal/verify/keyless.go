package verify

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	sgbundle "github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/tlog"
	sgverify "github.com/sigstore/sigstore-go/pkg/verify"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
)

// layerMaterial is the keyless material cosign attaches to a layer: the certificate, an
// optional Rekor bundle (SET) and an optional RFC 3161 timestamp.
type layerMaterial struct {
	cert  *x509.Certificate
	tlog  []*tlog.Entry
	times [][]byte
}

func parseLayerMaterial(ann map[string]string) (*layerMaterial, error) {
	pemCert, ok := ann[annCert]
	if !ok || pemCert == "" {
		return nil, nil
	}
	certs, err := cryptoutils.UnmarshalCertificatesFromPEM([]byte(pemCert))
	if err != nil {
		return nil, fmt.Errorf("malformed certificate annotation: %w", err)
	}
	if len(certs) == 0 {
		return nil, errors.New("malformed certificate annotation: no certificate")
	}
	m := &layerMaterial{cert: certs[0]}
	if b := ann[annBundle]; b != "" {
		var rb struct {
			SignedEntryTimestamp []byte `json:"SignedEntryTimestamp"`
			Payload              struct {
				Body           string `json:"body"`
				IntegratedTime int64  `json:"integratedTime"`
				LogIndex       int64  `json:"logIndex"`
				LogID          string `json:"logID"`
			} `json:"Payload"`
		}
		if err := json.Unmarshal([]byte(b), &rb); err != nil {
			return nil, fmt.Errorf("malformed Rekor bundle annotation: %w", err)
		}
		body, err := base64.StdEncoding.DecodeString(rb.Payload.Body)
		if err != nil {
			return nil, fmt.Errorf("malformed Rekor bundle body: %w", err)
		}
		logID, err := hex.DecodeString(rb.Payload.LogID)
		if err != nil {
			return nil, fmt.Errorf("malformed Rekor log ID: %w", err)
		}
		e, err := tlog.NewEntry(body, rb.Payload.IntegratedTime, rb.Payload.LogIndex, logID, rb.SignedEntryTimestamp, nil) //nolint:staticcheck // the v1 SET form is what cosign attaches
		if err != nil {
			return nil, fmt.Errorf("malformed Rekor entry: %w", err)
		}
		m.tlog = append(m.tlog, e)
	}
	if t := ann[annRFC3161]; t != "" {
		var ts struct {
			SignedRFC3161Timestamp []byte `json:"SignedRFC3161Timestamp"`
		}
		if err := json.Unmarshal([]byte(t), &ts); err != nil {
			return nil, fmt.Errorf("malformed RFC 3161 timestamp annotation: %w", err)
		}
		m.times = append(m.times, ts.SignedRFC3161Timestamp)
	}
	return m, nil
}

// entity adapts a cosign tag-scheme signature or attestation with keyless material to
// sigstore-go's verifier (certificate chain, SCT, SET, timestamps, identity).
type entity struct {
	m   *layerMaterial
	sig sgverify.SignatureContent
}

func (e *entity) HasInclusionPromise() bool { return len(e.m.tlog) > 0 }

func (e *entity) HasInclusionProof() bool { return false }

func (e *entity) VerificationContent() (sgverify.VerificationContent, error) {
	return sgbundle.NewCertificate(e.m.cert), nil
}

func (e *entity) SignatureContent() (sgverify.SignatureContent, error) { return e.sig, nil }

func (e *entity) Timestamps() ([][]byte, error) { return e.m.times, nil }

func (e *entity) TlogEntries() ([]*tlog.Entry, error) { return e.m.tlog, nil }

func (e *entity) Version() (string, error) { return "v0.1", nil }

// verifyKeyless runs the authority's verifiers in order; the first success wins. The
// current-time verifier (requireTlog false) is used only for an entity without any log entry
// or timestamp: a log proof that is present must verify.
func (k *keylessAuthority) verify(e sgverify.SignedEntity, artifact sgverify.ArtifactPolicyOption) (*sgverify.VerificationResult, error) {
	verifiers := k.verifiers
	if len(verifiers) > 1 && hasObserverProof(e) {
		verifiers = verifiers[:1]
	}
	var last error
	for _, v := range verifiers {
		res, err := v.Verify(e, sgverify.NewPolicy(artifact, sgverify.WithCertificateIdentity(k.identity)))
		if err == nil {
			return res, nil
		}
		last = err
	}
	return nil, last
}

func hasObserverProof(e sgverify.SignedEntity) bool {
	if tl, err := e.TlogEntries(); err == nil && len(tl) > 0 {
		return true
	}
	ts, err := e.Timestamps()
	return err == nil && len(ts) > 0
}

func keylessSignature(a *authority, res *sgverify.VerificationResult, cert *x509.Certificate, format string) Signature {
	sum := sha256.Sum256(cert.Raw)
	s := Signature{Authority: a.name, KeyID: "sha256:" + hex.EncodeToString(sum[:]), Algorithm: publicKeyAlgorithm(cert.PublicKey), Verified: true, Format: format}
	if res != nil && res.Signature != nil && res.Signature.Certificate != nil {
		s.Issuer = res.Signature.Certificate.Extensions.Issuer //nolint:staticcheck // QF1008: the Fulcio OIDC issuer extension, not the X.509 issuer
		s.Subject = res.Signature.Certificate.SubjectAlternativeName
	}
	if res != nil {
		s.signedAt = earliestVerifiedTime(res)
	}
	return s
}

func publicKeyAlgorithm(pub any) string {
	switch p := pub.(type) {
	case *ecdsa.PublicKey:
		return "ecdsa-" + curveName(p) + "-sha256"
	case ed25519.PublicKey:
		return "ed25519"
	case *rsa.PublicKey:
		return fmt.Sprintf("rsa-%d-pkcs1v15-sha256", p.N.BitLen())
	}
	return fmt.Sprintf("%T", pub)
}

func keySignature(a *authority, format string) Signature {
	return Signature{Authority: a.name, KeyID: a.key.keyID, Algorithm: a.key.algorithm, Verified: true, Format: format}
}

// verify checks sig over msg with any of the key's verifiers.
func (k *keyAuthority) verify(sig []byte, msg message) bool {
	for _, v := range k.verifiers {
		if v.VerifySignature(bytes.NewReader(sig), msg.reader()) == nil {
			return true
		}
	}
	return false
}
