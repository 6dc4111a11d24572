package verify

import (
	"bytes"
	"context"
	"crypto"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
)

// FuzzVerifyLayers feeds arbitrary signature payloads, annotations, DSSE envelopes and bundles
// to the parsers and verifiers: nothing may panic, and whatever verifies must be about the
// image's digest.
func FuzzVerifyLayers(f *testing.F) {
	k := newKey(f, "ecdsa")
	auths, err := compileAuthorities(context.Background(), nil)
	if err != nil {
		f.Fatal(err)
	}
	ka, err := newKeyAuthority(k.pub, crypto.SHA256)
	if err != nil {
		f.Fatal(err)
	}
	auths = append(auths, &authority{name: "k", key: ka, cosign: true, bundle: true, attestations: true})
	digest := "sha256:" + strings.Repeat("ab", 32)
	d, _ := name.NewDigest("example.com/app@" + digest)
	payload := cosignPayload(f, d)
	sig, _ := k.sv.SignMessage(bytes.NewReader(payload))
	stmt := statementJSON(f, "v1", "x", digest, slsaV1, slsa1Predicate)
	env := dsseSign(f, k, stmt)
	f.Add(payload, base64.StdEncoding.EncodeToString(sig), env, []byte(`{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json"}`), "")
	f.Add([]byte("{}"), "!!", []byte(`{"payloadType":"application/vnd.in-toto+json","payload":"e30=","signatures":[{"sig":"AA=="}]}`), []byte("null"), "-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----")
	f.Fuzz(func(t *testing.T, payload []byte, sigAnn string, envelope, bundle []byte, certAnn string) {
		ann := map[string]string{annSignature: sigAnn}
		if certAnn != "" {
			ann[annCert] = certAnn
			ann[annBundle] = certAnn
		}
		if sigs, err := checkSimpleSigning(auths, ann, payload, digest); err == nil {
			var ss simpleSigning
			if json.Unmarshal(payload, &ss) != nil || ss.Critical.Image.DockerManifestDigest != digest || len(sigs) == 0 {
				t.Fatalf("checkSimpleSigning verified a payload not about %s: %q", digest, payload)
			}
		}
		if vs, err := checkDSSE(auths, ann, envelope, digest, nil, nil); err == nil {
			if vs.st == nil || len(vs.sigs) == 0 {
				t.Fatalf("checkDSSE returned an empty result without error")
			}
		}
		if vs, err := checkBundle(auths, bundle, digest, nil); err == nil {
			if vs.st == nil || len(vs.sigs) == 0 {
				t.Fatalf("checkBundle returned an empty result without error")
			}
		}
		_, _ = parseStatement(payload, digest, nil)
		_, _ = summariseProvenance(slsaV1, payload)
		_, _ = summariseProvenance(slsaV02, payload)
	})
}
