package verify

import (
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	cmutate "github.com/sigstore/cosign/v2/pkg/oci/mutate"
	ociremote "github.com/sigstore/cosign/v2/pkg/oci/remote"

	"github.com/imagetrust/imagetrust/provider/internal/signing"
)

// signOCI11 signs payloadFor's digest with k and writes the signature as an OCI 1.1 referrer of
// d, with cosign's own code for `cosign sign --registry-referrers-mode=oci-1-1` (artifact type
// application/vnd.dev.cosign.artifact.sig.v1+json, a simple-signing layer with the signature
// annotation).
func signOCI11(t *testing.T, d, payloadFor name.Digest, k *keyPair) {
	t.Helper()
	sig, err := signing.Signature(payloadFor, k.sv)
	if err != nil {
		t.Fatal(err)
	}
	se, err := ociremote.SignedEntity(d)
	if err != nil {
		t.Fatal(err)
	}
	if se, err = cmutate.AttachSignatureToEntity(se, sig); err != nil {
		t.Fatal(err)
	}
	if err := ociremote.WriteSignaturesExperimentalOCI(d, se); err != nil {
		t.Fatalf("WriteSignaturesExperimentalOCI(%s) = %v", d, err)
	}
}

// TestCosignOCI11Signatures: cosign's OCI 1.1 referrer signatures verify like the tag scheme
// (format "referrer"); one by an unknown key, one whose payload names another image, and a
// signature or attestation artifact type the provider does not understand (Notary) are listed
// under rejected with the reason, never skipped. With and without the referrers API.
func TestCosignOCI11Signatures(t *testing.T) {
	for _, api := range []bool{true, false} {
		t.Run(map[bool]string{true: "referrers API", false: "fallback tag"}[api], func(t *testing.T) {
			e := newEnvReferrers(t, api)
			k, other := newKey(t, "ecdsa"), newKey(t, "ecdsa")
			s := newService(t, e, keyAuthorityCfg("release", k))

			d := e.push(t, "oci11/app", "v1")
			signOCI11(t, d, d, k)
			v := verifyOne(t, s, d.String())
			if !v.Signed || sigAuthorities(v) != "release/referrer" || len(v.Rejected) != 0 {
				t.Errorf("Verify(OCI 1.1 signed) = signed %v, signatures %q, rejected %v; want release/referrer and nothing rejected: %s", v.Signed, sigAuthorities(v), v.Rejected, dump(v))
			}

			bad := e.push(t, "oci11/app", "v2")
			signOCI11(t, bad, bad, other) // unknown key
			signOCI11(t, bad, d, k)       // valid, but for another image
			attachReferrer(t, bad, "application/vnd.cncf.notary.signature", []byte(`{"payload":"x"}`))
			attachReferrer(t, bad, "application/vnd.example.attestation.v1+json", []byte(`{}`))
			v = verifyOne(t, s, bad.String())
			if v.Signed {
				t.Errorf("Verify(bad OCI 1.1 signatures) signed = true: %s", dump(v))
			}
			var reasons []string
			for _, r := range v.Rejected {
				reasons = append(reasons, r.Kind+": "+r.Reason)
			}
			got := strings.Join(reasons, "\n")
			for _, want := range []string{
				"signature: referrer sha256:", // …: layer …: no configured authority verified it
				"no configured authority verified it",
				"payload signs digest " + d.DigestStr() + ", not this image",
				"application/vnd.cncf.notary.signature",
				"application/vnd.example.attestation.v1+json",
			} {
				if !strings.Contains(got, want) {
					t.Errorf("rejected =\n%s\nwant an entry containing %q", got, want)
				}
			}
		})
	}
}
