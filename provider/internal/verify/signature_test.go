package verify

import (
	"bytes"
	"crypto"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
)

// TestCheckErrors: what the checks reject is a *RejectedError (a denial), with sentinels for
// "no authority verified it" and "about another image".
func TestCheckErrors(t *testing.T) {
	k, other := newKey(t, "ecdsa"), newKey(t, "rsa")
	ka, err := newKeyAuthority(k.pub, crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	auths := []*authority{{name: "k", key: ka, cosign: true, bundle: true, attestations: true}}
	digest := "sha256:" + strings.Repeat("cd", 32)
	otherDigest := "sha256:" + strings.Repeat("ef", 32)
	d, _ := name.NewDigest("example.com/app@" + digest)
	od, _ := name.NewDigest("example.com/app@" + otherDigest)
	sign := func(kp *keyPair, p []byte) map[string]string {
		sig, err := kp.sv.SignMessage(bytes.NewReader(p))
		if err != nil {
			t.Fatal(err)
		}
		return map[string]string{annSignature: b64(sig)}
	}
	p, op := cosignPayload(t, d), cosignPayload(t, od)

	tests := []struct {
		name string
		err  error
		is   error
	}{
		{"valid", func() error { _, err := checkSimpleSigning(auths, sign(k, p), p, digest); return err }(), nil},
		{"wrong key", func() error { _, err := checkSimpleSigning(auths, sign(other, p), p, digest); return err }(), ErrNoAuthority},
		{"other digest", func() error { _, err := checkSimpleSigning(auths, sign(k, op), op, digest); return err }(), ErrOtherImage},
		{"attestation about another image", func() error {
			_, err := checkDSSE(auths, nil, dsseSign(t, k, statementJSON(t, "v1", "x", otherDigest, slsaV1, slsa1Predicate)), digest, nil, nil)
			return err
		}(), ErrOtherImage},
		{"attestation by another key", func() error {
			_, err := checkDSSE(auths, nil, dsseSign(t, other, statementJSON(t, "v1", "x", digest, slsaV1, slsa1Predicate)), digest, nil, nil)
			return err
		}(), ErrNoAuthority},
	}
	for _, tc := range tests {
		if tc.is == nil {
			if tc.err != nil {
				t.Errorf("%s: err = %v, want nil", tc.name, tc.err)
			}
			continue
		}
		var re *RejectedError
		if !errors.As(tc.err, &re) {
			t.Errorf("%s: err = %v (%T), want a *RejectedError", tc.name, tc.err, tc.err)
		}
		if !errors.Is(tc.err, tc.is) {
			t.Errorf("%s: err = %v, want errors.Is(%v)", tc.name, tc.err, tc.is)
		}
	}
}
