package image

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/secure-systems-lab/go-securesystemslib/encrypted"
	cmutate "github.com/sigstore/cosign/v2/pkg/oci/mutate"
	ociremote "github.com/sigstore/cosign/v2/pkg/oci/remote"
	cstatic "github.com/sigstore/cosign/v2/pkg/oci/static"
	ctypes "github.com/sigstore/cosign/v2/pkg/types"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
	sigdsse "github.com/sigstore/sigstore/pkg/signature/dsse"
	"github.com/sigstore/sigstore/pkg/signature/kms"

	"github.com/imagetrust/imagetrust/provider/internal/config"
	"github.com/imagetrust/imagetrust/provider/internal/signing"
)

// LoadSigner opens the signing key named by key, as the provider's authorities name keys: a
// sigstore KMS reference (awskms://, gcpkms://, azurekms://, hashivault://) or a PEM private key
// file, either a cosign key (`cosign generate-key-pair`, decrypted with password) or an
// unencrypted PKCS#8 / EC / RSA key.
func LoadSigner(ctx context.Context, key string, password []byte) (signature.SignerVerifier, error) {
	for _, s := range config.KMSSchemes {
		if strings.HasPrefix(key, s) {
			sv, err := kms.Get(ctx, key, crypto.SHA256)
			if err != nil {
				return nil, fmt.Errorf("signing key %s: %w", key, err)
			}
			return sv, nil
		}
	}
	raw, err := os.ReadFile(key) //nolint:gosec // the key file the operator names
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	blk, _ := pem.Decode(raw)
	if blk == nil {
		return nil, fmt.Errorf("signing key %s: no PEM block", key)
	}
	var priv crypto.PrivateKey
	switch blk.Type {
	case "ENCRYPTED SIGSTORE PRIVATE KEY", "ENCRYPTED COSIGN PRIVATE KEY":
		// cosign's format: PKCS#8 encrypted with scrypt + secretbox.
		der, err := encrypted.Decrypt(blk.Bytes, password)
		if err != nil {
			return nil, fmt.Errorf("signing key %s: decrypting (is COSIGN_PASSWORD right?): %w", key, err)
		}
		if priv, err = x509.ParsePKCS8PrivateKey(der); err != nil {
			return nil, fmt.Errorf("signing key %s: %w", key, err)
		}
	default:
		if priv, err = cryptoutils.UnmarshalPEMToPrivateKey(raw, cryptoutils.SkipPassword); err != nil {
			return nil, fmt.Errorf("signing key %s: %w", key, err)
		}
	}
	sv, err := signature.LoadSignerVerifier(priv, crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("signing key %s: %w", key, err)
	}
	return sv, nil
}

// Attestation is one predicate to attach, signed, as an in-toto statement.
type Attestation struct {
	PredicateType string
	Predicate     []byte // JSON
}

// SignOptions say what to sign.
type SignOptions struct {
	// Image is the pushed index, by digest (required).
	Image name.Digest
	// Signer signs (required).
	Signer signature.Signer
	// Attestations are attached to the index; their statements name the index and every
	// platform manifest as subjects (optional).
	Attestations []Attestation
	// Remote are the registry options (auth, transport) (optional).
	Remote []remote.Option
}

// Sign signs the index and each platform manifest (like `cosign sign --recursive --key …
// --tlog-upload=false`) and attaches each attestation as a DSSE-signed in-toto v1 statement
// (like `cosign attest --key … --tlog-upload=false`), in cosign's tag scheme.
func Sign(ctx context.Context, o SignOptions) error {
	if o.Signer == nil {
		return &OptionsError{"signer", "required"}
	}
	ropts := append([]remote.Option{remote.WithContext(ctx)}, o.Remote...)
	desc, err := remote.Get(o.Image, ropts...)
	if err != nil {
		return fmt.Errorf("signing %s: %w (push it first: make image-push)", o.Image, err)
	}
	if !desc.MediaType.IsIndex() {
		return fmt.Errorf("signing %s: %s is not an image index", o.Image, desc.MediaType)
	}
	idx, err := desc.ImageIndex()
	if err != nil {
		return fmt.Errorf("signing %s: %w", o.Image, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return fmt.Errorf("signing %s: %w", o.Image, err)
	}
	repo := o.Image.Context()
	subjects := []v1.Hash{desc.Digest}
	for _, m := range im.Manifests {
		subjects = append(subjects, m.Digest)
	}
	copts := []ociremote.Option{ociremote.WithRemoteOptions(ropts...)}
	for _, d := range subjects {
		if err := signing.Sign(repo.Digest(d.String()), o.Signer, copts...); err != nil {
			return err
		}
	}
	if len(o.Attestations) == 0 {
		return nil
	}
	se, err := ociremote.SignedEntity(o.Image, copts...)
	if err != nil {
		return fmt.Errorf("attesting %s: %w", o.Image, err)
	}
	for _, a := range o.Attestations {
		stmt, err := Statement(repo.String(), subjects, a)
		if err != nil {
			return err
		}
		env, err := sigdsse.WrapSigner(o.Signer, ctypes.IntotoPayloadType).SignMessage(bytes.NewReader(stmt))
		if err != nil {
			return fmt.Errorf("attesting %s (%s): %w", o.Image, a.PredicateType, err)
		}
		att, err := cstatic.NewAttestation(env)
		if err != nil {
			return fmt.Errorf("attesting %s (%s): %w", o.Image, a.PredicateType, err)
		}
		if se, err = cmutate.AttachAttestationToEntity(se, att); err != nil {
			return fmt.Errorf("attesting %s (%s): %w", o.Image, a.PredicateType, err)
		}
	}
	if err := ociremote.WriteAttestations(repo, se, copts...); err != nil {
		return fmt.Errorf("writing the attestations of %s: %w", o.Image, err)
	}
	return nil
}

// Statement is an in-toto v1 statement of a about the subjects (digests in repository repo).
func Statement(repo string, subjects []v1.Hash, a Attestation) ([]byte, error) {
	if a.PredicateType == "" {
		return nil, &OptionsError{"attestations.predicateType", "required"}
	}
	if !json.Valid(a.Predicate) {
		return nil, fmt.Errorf("attestation %s: predicate is not valid JSON", a.PredicateType)
	}
	type subject struct {
		Name   string            `json:"name"`
		Digest map[string]string `json:"digest"`
	}
	st := struct {
		Type          string          `json:"_type"`
		Subject       []subject       `json:"subject"`
		PredicateType string          `json:"predicateType"`
		Predicate     json.RawMessage `json:"predicate"`
	}{Type: "https://in-toto.io/Statement/v1", PredicateType: a.PredicateType, Predicate: a.Predicate}
	for _, h := range subjects {
		st.Subject = append(st.Subject, subject{Name: repo, Digest: map[string]string{h.Algorithm: h.Hex}})
	}
	return json.Marshal(st)
}
