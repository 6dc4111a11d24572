//go:build e2e

package e2e

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/imagetrust/imagetrust/provider/internal/signing"
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
	s.signer = sv // also signs the dogfood image (dogfood_e2e_test.go)
	if err := signing.Sign(d, sv); err != nil {
		t.Fatal(err)
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
