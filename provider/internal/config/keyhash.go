package config

import (
	"crypto/ecdsa"
	"fmt"
)

// Hash algorithm names of Key.HashAlgorithm.
const (
	HashSHA256 = "sha256"
	HashSHA384 = "sha384"
	HashSHA512 = "sha512"
)

// KeyHash is the hash a key's signatures are verified with: explicit (Key.HashAlgorithm) when
// set, else the key's own. An ECDSA key signs with its curve's hash, as cosign does (P-256
// sha256, P-384 sha384, P-521 sha512), and an explicit hash that contradicts the curve is an
// error (it could never verify what cosign signs with the key). RSA defaults to sha256 and takes
// any of the three; Ed25519 ignores it.
func KeyHash(pub any, explicit string) (string, error) {
	switch explicit {
	case "", HashSHA256, HashSHA384, HashSHA512:
	default:
		return "", fmt.Errorf("must be sha256, sha384 or sha512, got %q", explicit)
	}
	k, ok := pub.(*ecdsa.PublicKey)
	if !ok {
		if explicit == "" {
			return HashSHA256, nil
		}
		return explicit, nil
	}
	var curve, want string
	switch k.Curve.Params().BitSize {
	case 256:
		curve, want = "P-256", HashSHA256
	case 384:
		curve, want = "P-384", HashSHA384
	case 521:
		curve, want = "P-521", HashSHA512
	default:
		return "", fmt.Errorf("unsupported ECDSA curve %s", k.Curve.Params().Name)
	}
	if explicit != "" && explicit != want {
		return "", fmt.Errorf("a %s key signs with %s (as cosign does), got %q; remove hashAlgorithm or set it to %s", curve, want, explicit, want)
	}
	return want, nil
}
