package signing

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"

	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
)

// Key is a fresh ECDSA P-256 signing key (cosign generate-key-pair's kind) and its public key
// as a PEM file, the form an authority's key.file takes.
type Key struct {
	Signer     signature.SignerVerifier
	Public     crypto.PublicKey
	PublicFile string
}

// NewKey generates a key and writes its public key to dir/key.pub.
func NewKey(dir string) (*Key, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating a P-256 key: %w", err)
	}
	sv, err := signature.LoadECDSASignerVerifier(k, crypto.SHA256)
	if err != nil {
		return nil, err
	}
	pemKey, err := cryptoutils.MarshalPublicKeyToPEM(k.Public())
	if err != nil {
		return nil, err
	}
	p := filepath.Join(dir, "key.pub")
	if err := os.WriteFile(p, pemKey, 0o600); err != nil {
		return nil, fmt.Errorf("writing the public key: %w", err)
	}
	return &Key{Signer: sv, Public: k.Public(), PublicFile: p}, nil
}
