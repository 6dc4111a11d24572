package verify

import (
	"bytes"
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/imagetrust/imagetrust/provider/internal/config"
)

func TestKeySignaturesBothFormats(t *testing.T) {
	e := newEnv(t)
	for _, kind := range []string{"ecdsa", "ed25519", "rsa"} {
		t.Run(kind, func(t *testing.T) {
			k := newKey(t, kind)
			s := newService(t, e, keyAuthorityCfg("release", k))

			// cosign tag scheme
			d := e.push(t, "app-"+kind, "v1")
			signImage(t, d, k)
			v := verifyOne(t, s, e.host+"/app-"+kind+":v1")
			if !v.Signed || sigAuthorities(v) != "release/cosign" {
				t.Fatalf("Verify(tag scheme) = %s, want one release/cosign signature", dump(v))
			}
			if v.Digest != d.DigestStr() || v.TagDigest != d.DigestStr() {
				t.Errorf("digest = %s, tagDigest = %s, want %s", v.Digest, v.TagDigest, d.DigestStr())
			}
			sig := v.Signatures[0]
			if !sig.Verified || !strings.HasPrefix(sig.KeyID, "sha256:") || sig.Algorithm == "" {
				t.Errorf("signature = %+v, want verified with keyId and algorithm", sig)
			}

			// Sigstore bundle referrer (cosign v3 format)
			d2 := e.push(t, "bundle-"+kind, "v1")
			attachKeyBundle(t, d2, k, statementJSON(t, "v1", d2.Context().String(), d2.DigestStr(), cosignSignPredicate, map[string]any{}), cosignSignPredicate)
			v = verifyOne(t, s, d2.String())
			if !v.Signed || sigAuthorities(v) != "release/bundle" {
				t.Fatalf("Verify(bundle) = %s, want one release/bundle signature", dump(v))
			}
		})
	}
}

func TestUnsignedAndWrongKey(t *testing.T) {
	e := newEnv(t)
	good, bad := newKey(t, "ecdsa"), newKey(t, "ecdsa")
	s := newService(t, e, keyAuthorityCfg("release", good))

	d := e.push(t, "unsigned", "v1")
	v := verifyOne(t, s, d.String())
	if v.Signed || len(v.Signatures) != 0 || len(v.Rejected) != 0 {
		t.Errorf("Verify(unsigned) = %s, want signed=false and nothing rejected", dump(v))
	}

	d = e.push(t, "wrongkey", "v1")
	signImage(t, d, bad)
	v = verifyOne(t, s, d.String())
	if v.Signed {
		t.Fatalf("Verify(wrong key) = %s, want signed=false", dump(v))
	}
	if len(v.Rejected) != 1 || !strings.Contains(v.Rejected[0].Reason, "no configured authority verified it") {
		t.Errorf("Verify(wrong key).rejected = %+v, want one 'no configured authority verified it'", v.Rejected)
	}
}

func TestSignatureAttacks(t *testing.T) {
	e := newEnv(t)
	k := newKey(t, "ecdsa")
	s := newService(t, e, keyAuthorityCfg("release", k))

	tests := []struct {
		name   string
		setup  func(t *testing.T) name.Digest
		reason string
	}{{
		name: "valid signature for another digest",
		setup: func(t *testing.T) name.Digest {
			a, b := e.push(t, "other-a", "v1"), e.push(t, "other-b", "v1")
			payload := cosignPayload(t, b) // names b
			sig, err := k.sv.SignMessage(bytes.NewReader(payload))
			if err != nil {
				t.Fatal(err)
			}
			attachSig(t, a, payload, sig)
			return a
		},
		reason: "payload signs digest",
	}, {
		name: "tampered payload",
		setup: func(t *testing.T) name.Digest {
			d := e.push(t, "tampered", "v1")
			payload := cosignPayload(t, d)
			sig, err := k.sv.SignMessage(bytes.NewReader(payload))
			if err != nil {
				t.Fatal(err)
			}
			tampered := bytes.Replace(payload, []byte(`"optional":null`), []byte(`"optional":{"x":"y"}`), 1)
			if bytes.Equal(tampered, payload) {
				tampered = append(bytes.TrimSuffix(payload, []byte("}")), []byte(`,"extra":1}`)...)
			}
			attachSig(t, d, tampered, sig)
			return d
		},
		reason: "no configured authority verified it",
	}, {
		name: "signature manifest swapped between images",
		setup: func(t *testing.T) name.Digest {
			a, b := e.push(t, "swap", "a"), e.push(t, "swap", "b")
			signImage(t, b, k)
			// Copy b's signature manifest over a's signature tag.
			bh, _ := remoteHash(b)
			ah, _ := remoteHash(a)
			src, err := name.NewTag(b.Context().String() + ":sha256-" + bh + ".sig")
			if err != nil {
				t.Fatal(err)
			}
			desc, err := remote.Get(src)
			if err != nil {
				t.Fatal(err)
			}
			dst, _ := name.NewTag(a.Context().String() + ":sha256-" + ah + ".sig")
			if err := remote.Put(dst, desc); err != nil {
				t.Fatal(err)
			}
			return a
		},
		reason: "payload signs digest",
	}, {
		name: "malformed signature annotation",
		setup: func(t *testing.T) name.Digest {
			d := e.push(t, "malformed", "v1")
			attachSig(t, d, cosignPayload(t, d), []byte{})
			return d
		},
		reason: "malformed signature annotation",
	}, {
		name: "malformed payload",
		setup: func(t *testing.T) name.Digest {
			d := e.push(t, "malformed-payload", "v1")
			payload := []byte("{not json")
			sig, _ := k.sv.SignMessage(bytes.NewReader(payload))
			attachSig(t, d, payload, sig)
			return d
		},
		reason: "malformed simple-signing payload",
	}, {
		name: "oversized signature layer",
		setup: func(t *testing.T) name.Digest {
			d := e.push(t, "oversized", "v1")
			payload := append(cosignPayload(t, d), bytes.Repeat([]byte(" "), 70<<10)...)
			sig, _ := k.sv.SignMessage(bytes.NewReader(payload))
			attachSig(t, d, payload, sig)
			return d
		},
		reason: "exceeds the 65536-byte cap",
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := tc.setup(t)
			v := verifyOne(t, s, d.String())
			if v.Signed || len(v.Signatures) != 0 {
				t.Fatalf("Verify(%s) = %s, want signed=false", tc.name, dump(v))
			}
			found := false
			for _, r := range v.Rejected {
				found = found || strings.Contains(r.Reason, tc.reason)
			}
			if !found {
				t.Errorf("Verify(%s).rejected = %+v, want a reason containing %q", tc.name, v.Rejected, tc.reason)
			}
		})
	}
}

func remoteHash(d name.Digest) (string, error) {
	_, hexd, _ := strings.Cut(d.DigestStr(), ":")
	return hexd, nil
}

func TestPerKeyErrors(t *testing.T) {
	e := newEnv(t)
	k := newKey(t, "ecdsa")
	s := newService(t, e, keyAuthorityCfg("release", k))
	items := s.Verify(context.Background(), []string{
		"docker://rust:1",
		"evil.example.com/app:v1",
		e.host + "/missing:v1",
	})
	want := []string{"invalid reference: ", "registry not allowed: ", "not found: "}
	for i, it := range items {
		if !strings.HasPrefix(it.Error, want[i]) {
			t.Errorf("Verify(%q).error = %q, want prefix %q", it.Key, it.Error, want[i])
		}
	}
}

// TestRegistryReads counts the registry requests per image: the floor for a tag key is one
// HEAD and one GET (the signature manifest; cosign's default payload is known from its digest,
// see payloadGuess) when the authority publishes only cosign signatures; attestations add one
// listing of the digest's tags, which says that the .att and .sbom tags do not exist (so they
// are not read), referrers one GET. A name:tag@digest key (what the mutator writes) costs the same:
// the HEAD of the tag gives tagDigest and the media type at once.
func TestRegistryReads(t *testing.T) {
	e := newEnv(t)
	k := newKey(t, "ecdsa")
	sigOnly := keyAuthorityCfg("release", k)
	sigOnly.Formats = []string{"cosign"}
	no := false
	sigOnly.Attestations = &no
	tests := []struct {
		name string
		auth func() config.Authority
		want map[string]int
	}{
		{"signatures only", func() config.Authority { return sigOnly }, map[string]int{"HEAD manifests": 1, "GET manifests": 1}},
		// + the tag listing (no .att, no .sbom), referrers list, the bundle referrer's manifest
		// and blob.
		{"everything", func() config.Authority { return keyAuthorityCfg("release", k) }, map[string]int{"HEAD manifests": 1, "GET manifests": 2, "GET tags": 1, "GET blobs": 1, "GET referrers": 1}},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newService(t, e, tc.auth())
			repo := fmt.Sprintf("reads%d", i)
			d := e.push(t, repo, "v1")
			signImage(t, d, k)
			// Bundle signature and attestation that a cosign-only authority must not read.
			attachKeyBundle(t, d, k, statementJSON(t, "v1", "x", d.DigestStr(), cosignSignPredicate, map[string]any{}), cosignSignPredicate)
			// Warm the per-repository transport (one /v2/ ping per repository, not per image).
			e.push(t, repo, "v0-warm-transport")
			verifyOne(t, s, e.host+"/"+repo+":v0-warm-transport")
			wantSigs := "release/bundle,release/cosign" // sorted by authority, then format
			if tc.name == "signatures only" {
				wantSigs = "release/cosign"
			}
			for _, key := range []string{e.host + "/" + repo + ":v1", e.host + "/" + repo + ":v1@" + d.DigestStr()} {
				s := newService(t, e, tc.auth()) // no cached answer
				e.resetRequests()
				v := verifyOne(t, s, key)
				got := e.resetRequests()
				if !reflect.DeepEqual(got, tc.want) {
					t.Errorf("registry requests for %s = %v, want %v", key, got, tc.want)
				}
				if sigAuthorities(v) != wantSigs || v.TagDigest != d.DigestStr() || v.MediaType == "" {
					t.Errorf("Verify(%s) = signatures %s, tagDigest %s, mediaType %q; want %s, %s and a media type", key, sigAuthorities(v), v.TagDigest, v.MediaType, wantSigs, d.DigestStr())
				}
			}
		})
	}
}
