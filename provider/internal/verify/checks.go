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

	v1 "github.com/google/go-containerregistry/pkg/v1"
	ssldsse "github.com/secure-systems-lab/go-securesystemslib/dsse"
	sgbundle "github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/tlog"
	sgverify "github.com/sigstore/sigstore-go/pkg/verify"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
)

// cosign annotations on signature and attestation layers (tag scheme).
const (
	annSignature = "dev.cosignproject.cosign/signature"
	annCert      = "dev.sigstore.cosign/certificate"
	annChain     = "dev.sigstore.cosign/chain"
	annBundle    = "dev.sigstore.cosign/bundle"
	annRFC3161   = "dev.sigstore.cosign/rfc3161timestamp"

	simpleSigningType = "cosign container image signature"
	bundleMediaPrefix = "application/vnd.dev.sigstore.bundle"
)

// RejectedError is a signature, attestation or bundle that was found but proves nothing for
// this image: a denial, reported under the value's rejected list, never an outage.
type RejectedError struct{ Err error }

func (e *RejectedError) Error() string { return e.Err.Error() }
func (e *RejectedError) Unwrap() error { return e.Err }

var (
	// ErrNoAuthority means well formed, but no applicable authority verified it.
	ErrNoAuthority = errors.New("no configured authority verified it")
	// ErrOtherImage means validly signed, but about another digest.
	ErrOtherImage = errors.New("not this image")
)

func rejected(err *error) {
	if *err != nil {
		*err = &RejectedError{Err: *err}
	}
}

// simpleSigning is cosign's signature payload (Red Hat simple signing).
type simpleSigning struct {
	Critical struct {
		Identity struct {
			DockerReference string `json:"docker-reference"`
		} `json:"identity"`
		Image struct {
			DockerManifestDigest string `json:"docker-manifest-digest"`
		} `json:"image"`
		Type string `json:"type"`
	} `json:"critical"`
}

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
func (e *entity) HasInclusionProof() bool   { return false }
func (e *entity) VerificationContent() (sgverify.VerificationContent, error) {
	return sgbundle.NewCertificate(e.m.cert), nil
}
func (e *entity) SignatureContent() (sgverify.SignatureContent, error) { return e.sig, nil }
func (e *entity) Timestamps() ([][]byte, error)                        { return e.m.times, nil }
func (e *entity) TlogEntries() ([]*tlog.Entry, error)                  { return e.m.tlog, nil }
func (e *entity) Version() (string, error)                             { return "v0.1", nil }

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

// verifyKey checks sig over msg with any of the key's verifiers.
func (k *keyAuthority) verify(sig, msg []byte) bool {
	for _, v := range k.verifiers {
		if v.VerifySignature(bytes.NewReader(sig), bytes.NewReader(msg)) == nil {
			return true
		}
	}
	return false
}

// checkSimpleSigning verifies one cosign signature layer (payload already fetched and checked
// against the layer digest) for digest. It returns the verified signatures, one per authority.
func checkSimpleSigning(auths []*authority, ann map[string]string, payload []byte, digest string) (_ []Signature, err error) {
	defer rejected(&err)
	sigB64, ok := ann[annSignature]
	if !ok {
		return nil, fmt.Errorf("layer has no %s annotation", annSignature)
	}
	sig, err := base64.StdEncoding.DecodeString(sigB64)
	if err != nil || len(sig) == 0 {
		return nil, fmt.Errorf("malformed signature annotation")
	}
	var ss simpleSigning
	if err := json.Unmarshal(payload, &ss); err != nil {
		return nil, fmt.Errorf("malformed simple-signing payload: %w", err)
	}
	if ss.Critical.Type != simpleSigningType {
		return nil, fmt.Errorf("payload type %q is not %q", ss.Critical.Type, simpleSigningType)
	}
	if ss.Critical.Image.DockerManifestDigest != digest {
		return nil, fmt.Errorf("payload signs digest %s, %w (%s)", ss.Critical.Image.DockerManifestDigest, ErrOtherImage, digest)
	}
	mat, err := parseLayerMaterial(ann)
	if err != nil {
		return nil, err
	}
	var out []Signature
	var kerr error
	for _, a := range auths {
		switch {
		case a.key != nil:
			if a.key.verify(sig, payload) {
				out = append(out, keySignature(a, "cosign"))
			}
		case a.keyless != nil && mat != nil:
			sum := sha256.Sum256(payload)
			e := &entity{m: mat, sig: sgbundle.NewMessageSignature(sum[:], "SHA2_256", sig)}
			res, err := a.keyless.verify(e, sgverify.WithArtifact(bytes.NewReader(payload)))
			if err != nil {
				kerr = fmt.Errorf("authority %s: %w", a.name, err)
				continue
			}
			out = append(out, keylessSignature(a, res, mat.cert, "cosign"))
		}
	}
	if len(out) == 0 {
		if kerr != nil {
			return nil, kerr
		}
		return nil, ErrNoAuthority
	}
	return out, nil
}

// verifiedStatement is an in-toto statement whose signature verified, per authority.
type verifiedStatement struct {
	st   *statement
	sigs []Signature
}

// checkDSSE verifies a DSSE envelope (cosign .att layer or in-toto referrer layer) whose
// statement must name digest.
func checkDSSE(auths []*authority, ann map[string]string, raw []byte, digest string) (_ *verifiedStatement, err error) {
	defer rejected(&err)
	env, payload, sigs, err := parseEnvelope(raw)
	if err != nil {
		return nil, err
	}
	mat, err := parseLayerMaterial(ann)
	if err != nil {
		return nil, err
	}
	msg := pae(env.PayloadType, payload)
	var out []Signature
	var kerr error
	for _, a := range auths {
		switch {
		case a.key != nil:
			for _, s := range sigs {
				if a.key.verify(s, msg) {
					out = append(out, keySignature(a, "cosign"))
					break
				}
			}
		case a.keyless != nil && mat != nil:
			e := &entity{m: mat, sig: &sgbundle.Envelope{Envelope: toSSLEnvelope(env)}}
			res, err := a.keyless.verify(e, artifactDigest(digest))
			if err != nil {
				kerr = fmt.Errorf("authority %s: %w", a.name, err)
				continue
			}
			out = append(out, keylessSignature(a, res, mat.cert, "cosign"))
		}
	}
	if len(out) == 0 {
		if kerr != nil {
			return nil, kerr
		}
		return nil, ErrNoAuthority
	}
	st, err := parseStatement(payload, digest)
	if err != nil {
		return nil, err
	}
	return &verifiedStatement{st: st, sigs: out}, nil
}

func toSSLEnvelope(env *dsseEnvelope) *ssldsse.Envelope {
	out := &ssldsse.Envelope{PayloadType: env.PayloadType, Payload: env.Payload}
	for _, s := range env.Signatures {
		out.Signatures = append(out.Signatures, ssldsse.Signature{KeyID: s.KeyID, Sig: s.Sig})
	}
	return out
}

func artifactDigest(digest string) sgverify.ArtifactPolicyOption {
	h, err := v1.NewHash(digest)
	if err != nil {
		return sgverify.WithArtifactDigest("sha256", nil)
	}
	b, _ := hex.DecodeString(h.Hex)
	return sgverify.WithArtifactDigest(h.Algorithm, b)
}

// checkBundle verifies a Sigstore bundle (cosign v3 format, DSSE content) attached as a
// referrer of digest. A statement with the cosign sign predicate is a signature; any other
// predicate is an attestation.
func checkBundle(auths []*authority, raw []byte, digest string) (_ *verifiedStatement, err error) {
	defer rejected(&err)
	var b sgbundle.Bundle
	if err := b.UnmarshalJSON(raw); err != nil {
		return nil, fmt.Errorf("malformed Sigstore bundle: %w", err)
	}
	env := b.GetDsseEnvelope()
	if env == nil {
		return nil, fmt.Errorf("bundle has no DSSE envelope (a message-signature bundle does not bind an image digest)")
	}
	if env.GetPayloadType() != intotoPayloadType {
		return nil, fmt.Errorf("DSSE payload type %q is not %s", env.GetPayloadType(), intotoPayloadType)
	}
	msg := pae(env.GetPayloadType(), env.GetPayload())
	vc, err := b.VerificationContent()
	if err != nil {
		return nil, fmt.Errorf("bundle verification material: %w", err)
	}
	cert := vc.Certificate()
	var out []Signature
	var kerr error
	for _, a := range auths {
		switch {
		case a.key != nil && cert == nil:
			for _, s := range env.GetSignatures() {
				if a.key.verify(s.GetSig(), msg) {
					out = append(out, keySignature(a, "bundle"))
					break
				}
			}
		case a.keyless != nil && cert != nil:
			res, err := a.keyless.verify(&b, artifactDigest(digest))
			if err != nil {
				kerr = fmt.Errorf("authority %s: %w", a.name, err)
				continue
			}
			out = append(out, keylessSignature(a, res, cert, "bundle"))
		}
	}
	if len(out) == 0 {
		if kerr != nil {
			return nil, kerr
		}
		return nil, ErrNoAuthority
	}
	st, err := parseStatement(env.GetPayload(), digest)
	if err != nil {
		return nil, err
	}
	return &verifiedStatement{st: st, sigs: out}, nil
}
