package verify

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"testing"

	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/imagetrust/imagetrust/provider/internal/signing"
)

// TestKeyHashFromCurve: P-384 and P-521 keys sign with SHA-384 and SHA-512 (cosign's default
// for the curve); an authority with the key and no hashAlgorithm verifies their signatures and
// attestations, in both formats.
func TestKeyHashFromCurve(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		curve elliptic.Curve
		alg   string
	}{
		{elliptic.P256(), "ecdsa-p256-sha256"},
		{elliptic.P384(), "ecdsa-p384-sha384"},
		{elliptic.P521(), "ecdsa-p521-sha512"},
	} {
		t.Run(tc.curve.Params().Name, func(t *testing.T) {
			priv, err := ecdsa.GenerateKey(tc.curve, rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			// The signer cosign builds for the key: the curve's default hash.
			sv, err := signature.LoadDefaultSignerVerifier(priv)
			if err != nil {
				t.Fatal(err)
			}
			k := &keyPair{sv: sv, pub: priv.Public(), pubFile: writePub(t, priv.Public())}
			d := e.push(t, "curves/"+tc.alg, "v1")
			if err := signing.Sign(d, k.sv); err != nil {
				t.Fatal(err)
			}
			if err := signing.AttestBundle(d, k.sv, k.pub, slsaV1, mustJSON(t, slsaV1Predicate("https://builder.example/b", "https://github.com/bank/app"))); err != nil {
				t.Fatal(err)
			}
			s := newService(t, e, keyAuthorityCfg("release", k))
			v := verifyOne(t, s, d.String())
			if sigAuthorities(v) != "release/cosign" || v.Signatures[0].Algorithm != tc.alg {
				t.Errorf("Verify() signatures = %s, want release/cosign with algorithm %s: %s", sigAuthorities(v), tc.alg, dump(v))
			}
			if len(v.Attestations) != 1 || v.Attestations[0].PredicateType != slsaV1 {
				t.Errorf("Verify() attestations = %v, want the SLSA v1 bundle: %s", v.Attestations, dump(v))
			}
		})
	}
}
