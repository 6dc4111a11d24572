package signing

import (
	"bytes"
	"crypto"
	"encoding/json"
	"fmt"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	cbundle "github.com/sigstore/cosign/v2/pkg/cosign/bundle"
	cmutate "github.com/sigstore/cosign/v2/pkg/oci/mutate"
	ociremote "github.com/sigstore/cosign/v2/pkg/oci/remote"
	cstatic "github.com/sigstore/cosign/v2/pkg/oci/static"
	ctypes "github.com/sigstore/cosign/v2/pkg/types"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
	sigdsse "github.com/sigstore/sigstore/pkg/signature/dsse"
)

// Statement is the in-toto statement (v0.1, as `cosign attest` writes) of predicate about d.
func Statement(d name.Digest, predicateType string, predicate json.RawMessage) ([]byte, error) {
	h, err := v1.NewHash(d.DigestStr())
	if err != nil {
		return nil, fmt.Errorf("statement for %s: %w", d, err)
	}
	return json.Marshal(map[string]any{
		"_type":         "https://in-toto.io/Statement/v0.1",
		"predicateType": predicateType,
		"subject":       []any{map[string]any{"name": d.Repository.Name(), "digest": map[string]string{h.Algorithm: h.Hex}}},
		"predicate":     predicate,
	})
}

// Envelope is the DSSE envelope of statement, signed by s.
func Envelope(statement []byte, s signature.Signer) ([]byte, error) {
	env, err := sigdsse.WrapSigner(s, ctypes.IntotoPayloadType).SignMessage(bytes.NewReader(statement))
	if err != nil {
		return nil, fmt.Errorf("signing the statement: %w", err)
	}
	return env, nil
}

// AttachEnvelope adds a DSSE envelope to d's sha256-<hex>.att tag, keeping the attestations
// already there, as `cosign attest --tlog-upload=false` does.
func AttachEnvelope(d name.Digest, envelope []byte, opts ...ociremote.Option) error {
	att, err := cstatic.NewAttestation(envelope)
	if err != nil {
		return fmt.Errorf("attesting %s: %w", d, err)
	}
	se, err := ociremote.SignedEntity(d, opts...)
	if err != nil {
		return fmt.Errorf("attesting %s: %w", d, err)
	}
	if se, err = cmutate.AttachAttestationToEntity(se, att); err != nil {
		return fmt.Errorf("attesting %s: %w", d, err)
	}
	if err := ociremote.WriteAttestations(d.Repository, se, opts...); err != nil {
		return fmt.Errorf("writing the attestation of %s: %w", d, err)
	}
	return nil
}

// Attest signs predicate about d with s and attaches it to d's .att tag.
func Attest(d name.Digest, s signature.Signer, predicateType string, predicate json.RawMessage, opts ...ociremote.Option) error {
	st, err := Statement(d, predicateType, predicate)
	if err != nil {
		return err
	}
	env, err := Envelope(st, s)
	if err != nil {
		return err
	}
	return AttachEnvelope(d, env, opts...)
}

// AttestBundle signs predicate about d with s (public key pub) and attaches it as a Sigstore
// bundle referrer, as cosign v3 does with a key and no transparency log.
func AttestBundle(d name.Digest, s signature.Signer, pub crypto.PublicKey, predicateType string, predicate json.RawMessage, opts ...ociremote.Option) error {
	st, err := Statement(d, predicateType, predicate)
	if err != nil {
		return err
	}
	env, err := Envelope(st, s)
	if err != nil {
		return err
	}
	pubPEM, err := cryptoutils.MarshalPublicKeyToPEM(pub)
	if err != nil {
		return fmt.Errorf("bundle for %s: %w", d, err)
	}
	b, err := cbundle.MakeNewBundle(pub, nil, st, env, pubPEM, nil)
	if err != nil {
		return fmt.Errorf("bundle for %s: %w", d, err)
	}
	if err := ociremote.WriteAttestationNewBundleFormat(d, b, predicateType, opts...); err != nil {
		return fmt.Errorf("writing the bundle of %s: %w", d, err)
	}
	return nil
}

// AttachReferrer attaches content (one layer of media type artifactType, e.g. a SARIF report
// as application/sarif+json) as an OCI referrer of d and returns the referrer manifest's
// digest, which Sign can then sign.
func AttachReferrer(d name.Digest, artifactType string, content []byte, annotations map[string]string, opts ...remote.Option) (name.Digest, error) {
	l := static.NewLayer(content, types.MediaType(artifactType))
	if err := ociremote.WriteReferrer(d, artifactType, []v1.Layer{l}, annotations, ociremote.WithRemoteOptions(opts...)); err != nil {
		return name.Digest{}, fmt.Errorf("attaching a %s referrer to %s: %w", artifactType, d, err)
	}
	h, err := v1.NewHash(d.DigestStr())
	if err != nil {
		return name.Digest{}, err
	}
	idx, err := remote.Referrers(d.Context().Digest(h.String()), append(opts, remote.WithFilter("artifactType", artifactType))...)
	if err != nil {
		return name.Digest{}, fmt.Errorf("listing the referrers of %s: %w", d, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return name.Digest{}, err
	}
	ld, err := l.Digest()
	if err != nil {
		return name.Digest{}, err
	}
	for _, m := range im.Manifests {
		if m.ArtifactType != artifactType {
			continue
		}
		r, err := remote.Get(d.Context().Digest(m.Digest.String()), opts...)
		if err != nil {
			return name.Digest{}, err
		}
		var man v1.Manifest
		if err := json.Unmarshal(r.Manifest, &man); err != nil {
			return name.Digest{}, err
		}
		if len(man.Layers) == 1 && man.Layers[0].Digest == ld {
			return d.Context().Digest(m.Digest.String()), nil
		}
	}
	return name.Digest{}, fmt.Errorf("the %s referrer of %s is not listed", artifactType, d)
}
