package verify

import (
	"bytes"
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
	sgverify "github.com/sigstore/sigstore-go/pkg/verify"
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
	e := evidence{format: "cosign", msg: message{body: payload}, keySigs: [][]byte{sig}, keys: true}
	if mat != nil {
		e.cert = mat.cert
		e.keyless = func() (sgverify.SignedEntity, sgverify.ArtifactPolicyOption) {
			sum := sha256.Sum256(payload)
			return &entity{m: mat, sig: sgbundle.NewMessageSignature(sum[:], "SHA2_256", sig)}, sgverify.WithArtifact(bytes.NewReader(payload))
		}
	}
	return authorize(auths, e)
}

// verifiedStatement is an in-toto statement whose signature verified, per authority.
type verifiedStatement struct {
	st   *statement
	sigs []Signature
}

// checkDSSE verifies a DSSE envelope (cosign .att layer or in-toto referrer layer) whose
// statement must name digest.
//
// The payload is decoded into payloadBuf's memory when it fits (nil: a new slice); the
// statement returned keeps it.
func checkDSSE(auths []*authority, ann map[string]string, raw []byte, digest string, targets PredicateTargets, payloadBuf []byte) (_ *verifiedStatement, err error) {
	defer rejected(&err)
	env, payload, sigs, err := parseEnvelope(raw, payloadBuf)
	if err != nil {
		return nil, err
	}
	mat, err := parseLayerMaterial(ann)
	if err != nil {
		return nil, err
	}
	e := evidence{format: "cosign", msg: pae(env.PayloadType, payload), keySigs: sigs, keys: true}
	if mat != nil {
		e.cert = mat.cert
		e.keyless = func() (sgverify.SignedEntity, sgverify.ArtifactPolicyOption) {
			return &entity{m: mat, sig: &sgbundle.Envelope{Envelope: toSSLEnvelope(env)}}, artifactDigest(digest)
		}
	}
	out, err := authorize(auths, e)
	if err != nil {
		return nil, err
	}
	st, err := parseStatement(payload, digest, targets)
	if err != nil {
		return nil, err
	}
	return &verifiedStatement{st: st, sigs: out}, nil
}

func toSSLEnvelope(env *dsseEnvelope) *ssldsse.Envelope {
	out := &ssldsse.Envelope{PayloadType: env.PayloadType, Payload: env.payloadText()}
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
func checkBundle(auths []*authority, raw []byte, digest string, targets PredicateTargets) (_ *verifiedStatement, err error) {
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
	vc, err := b.VerificationContent()
	if err != nil {
		return nil, fmt.Errorf("bundle verification material: %w", err)
	}
	cert := vc.Certificate()
	e := evidence{format: "bundle", msg: pae(env.GetPayloadType(), env.GetPayload()), keys: cert == nil, cert: cert}
	for _, sg := range env.GetSignatures() {
		e.keySigs = append(e.keySigs, sg.GetSig())
	}
	if cert != nil {
		e.keyless = func() (sgverify.SignedEntity, sgverify.ArtifactPolicyOption) { return &b, artifactDigest(digest) }
	}
	out, err := authorize(auths, e)
	if err != nil {
		return nil, err
	}
	st, err := parseStatement(env.GetPayload(), digest, targets)
	if err != nil {
		return nil, err
	}
	return &verifiedStatement{st: st, sigs: out}, nil
}

// evidence is one signed thing (a simple-signing payload, a DSSE envelope, a Sigstore bundle)
// as the authorities see it.
type evidence struct {
	// format of the signatures it yields: "cosign" or "bundle".
	format string
	// msg is what a key signature signs; keySigs are the signatures to try with a key.
	msg     message
	keySigs [][]byte
	// keys: key authorities may verify it (a bundle with a certificate is for keyless ones).
	keys bool
	// cert is the keyless signing certificate (nil: no keyless material).
	cert *x509.Certificate
	// keyless returns what sigstore-go verifies and the artifact policy, afresh per authority.
	keyless func() (sgverify.SignedEntity, sgverify.ArtifactPolicyOption)
}

// authorize runs every applicable authority over e, the one authority loop of simple signing,
// DSSE and bundles: a key authority verifies any of the key signatures over msg; a keyless
// authority runs its sigstore-go verifiers on the certificate, log entries and timestamps. It
// returns one signature per authority that verified, or why none did.
func authorize(auths []*authority, e evidence) ([]Signature, error) {
	var out []Signature
	var kerr error
	for _, a := range auths {
		switch {
		case a.key != nil && e.keys:
			for _, sig := range e.keySigs {
				if a.key.verify(sig, e.msg) {
					out = append(out, keySignature(a, e.format))
					break
				}
			}
		case a.keyless != nil && e.cert != nil && e.keyless != nil:
			ent, artifact := e.keyless()
			res, err := a.keyless.verify(ent, artifact)
			if err != nil {
				kerr = fmt.Errorf("authority %s: %w", a.name, err)
				continue
			}
			out = append(out, keylessSignature(a, res, e.cert, e.format))
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
