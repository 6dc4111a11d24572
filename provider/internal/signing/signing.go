// Package signing signs images as `cosign sign --key … --tlog-upload=false` does: a
// simple-signing payload for the digest, signed with the key, stored under the image's
// sha256-<hex>.sig tag. The provider never signs; the demo, the bench and the e2e test use it
// to make the images they verify.
package signing

import (
	"bytes"
	"encoding/base64"
	"fmt"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/sigstore/cosign/v2/pkg/oci"
	cmutate "github.com/sigstore/cosign/v2/pkg/oci/mutate"
	ociremote "github.com/sigstore/cosign/v2/pkg/oci/remote"
	cstatic "github.com/sigstore/cosign/v2/pkg/oci/static"
	"github.com/sigstore/sigstore/pkg/signature"
	sigpayload "github.com/sigstore/sigstore/pkg/signature/payload"
)

// Signature is the cosign signature layer for d, signed by s.
func Signature(d name.Digest, s signature.Signer) (oci.Signature, error) {
	payload, err := (&sigpayload.Cosign{Image: d}).MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("signing %s: payload: %w", d, err)
	}
	raw, err := s.SignMessage(bytes.NewReader(payload))
	if err != nil {
		return nil, fmt.Errorf("signing %s: %w", d, err)
	}
	return cstatic.NewSignature(payload, base64.StdEncoding.EncodeToString(raw))
}

// Sign signs d with s and writes the signature to d's sha256-<hex>.sig tag, keeping any
// signatures already there.
func Sign(d name.Digest, s signature.Signer, opts ...ociremote.Option) error {
	sig, err := Signature(d, s)
	if err != nil {
		return err
	}
	se, err := ociremote.SignedEntity(d, opts...)
	if err != nil {
		return fmt.Errorf("signing %s: %w", d, err)
	}
	if se, err = cmutate.AttachSignatureToEntity(se, sig); err != nil {
		return fmt.Errorf("signing %s: %w", d, err)
	}
	if err := ociremote.WriteSignatures(d.Repository, se, opts...); err != nil {
		return fmt.Errorf("writing the signature of %s: %w", d, err)
	}
	return nil
}
