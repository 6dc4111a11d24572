//go:build e2e

package e2e

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/sigstore/cosign/v2/pkg/oci/mutate"
	ociremote "github.com/sigstore/cosign/v2/pkg/oci/remote"
	"github.com/sigstore/cosign/v2/pkg/oci/static"
	"github.com/sigstore/sigstore/pkg/signature"
	sigpayload "github.com/sigstore/sigstore/pkg/signature/payload"
)

// signImage signs the sample image ref (repo:tag, by its digest) with a fresh ECDSA key in
// cosign's tag scheme (sha256-<hex>.sig) and returns the path of the public key (PEM), which
// the provider config names as authority e2e-key.
func (s *stack) signImage(ref string) string {
	t := s.t
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sv, err := signature.LoadECDSASignerVerifier(priv, crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	d, err := name.NewDigest(s.pinnedNoTag(ref))
	if err != nil {
		t.Fatal(err)
	}
	payload, err := (&sigpayload.Cosign{Image: d}).MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := sv.SignMessage(bytes.NewReader(payload))
	if err != nil {
		t.Fatal(err)
	}
	sig, err := static.NewSignature(payload, base64.StdEncoding.EncodeToString(raw))
	if err != nil {
		t.Fatal(err)
	}
	se, err := ociremote.SignedEntity(d)
	if err != nil {
		t.Fatal(err)
	}
	se, err = mutate.AttachSignatureToEntity(se, sig)
	if err != nil {
		t.Fatal(err)
	}
	if err := ociremote.WriteSignatures(d.Repository, se); err != nil {
		t.Fatalf("writing signature for %s: %v", d, err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(s.dir, "e2e-key.pub")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// pinnedNoTag returns the loopback reference repo@digest of a sample image.
func (s *stack) pinnedNoTag(ref string) string {
	d, ok := s.digests[ref]
	if !ok {
		s.t.Fatalf("no sample image %s", ref)
	}
	repo, _, _ := strings.Cut(ref, ":")
	return s.regHost + "/" + repo + "@" + d.String()
}
