package verify

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/prometheus/client_golang/prometheus/testutil"
	sigpayload "github.com/sigstore/sigstore/pkg/signature/payload"

	"github.com/imagetrust/imagetrust/provider/internal/imageref"
)

// TestPayloadGuess: a signature layer holding cosign's default payload is verified without
// reading its blob; any other payload is read from the registry and checked as always; and a
// signature that does not verify over the guessed bytes is rejected like any bad signature.
func TestPayloadGuess(t *testing.T) {
	e := newEnv(t)
	k := newKey(t, "ecdsa")
	s := newService(t, e, keyAuthorityCfg("ci", k))

	sign := func(t *testing.T, payload []byte) []byte {
		t.Helper()
		sig, err := k.sv.SignMessage(bytes.NewReader(payload))
		if err != nil {
			t.Fatal(err)
		}
		return sig
	}
	for _, tc := range []struct {
		name string
		// attach signs d and attaches the signature.
		attach     func(t *testing.T, d name.Digest)
		wantSigned bool
		wantBlobs  int // blob GETs
		wantSaved  float64
		wantReason string // in Rejected, when not signed
	}{{
		name:       "cosign's default payload: no blob read",
		attach:     func(t *testing.T, d name.Digest) { signImage(t, d, k) },
		wantSigned: true, wantBlobs: 0, wantSaved: 1,
	}, {
		name: "payload with annotations (cosign sign -a): read",
		attach: func(t *testing.T, d name.Digest) {
			p, err := (&sigpayload.Cosign{Image: d, Annotations: map[string]any{"pipeline": "release"}}).MarshalJSON()
			if err != nil {
				t.Fatal(err)
			}
			attachSig(t, d, p, sign(t, p))
		},
		wantSigned: true, wantBlobs: 1,
	}, {
		name: "signed under another repository name: read",
		attach: func(t *testing.T, d name.Digest) {
			other, err := name.NewDigest("mirror.example/team/app@" + d.DigestStr())
			if err != nil {
				t.Fatal(err)
			}
			p := cosignPayload(t, other)
			attachSig(t, d, p, sign(t, p))
		},
		wantSigned: true, wantBlobs: 1,
	}, {
		name: "guessed payload, signature over other bytes: rejected",
		attach: func(t *testing.T, d name.Digest) {
			attachSig(t, d, cosignPayload(t, d), sign(t, []byte("something else")))
		},
		wantSigned: false, wantBlobs: 0, wantSaved: 1, wantReason: "no configured authority",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			d := e.push(t, "guess/"+strings.ReplaceAll(strings.Fields(tc.name)[0], "'", ""), "v1")
			tc.attach(t, d)
			saved0 := testutil.ToFloat64(s.blobsSaved)
			e.resetRequests()
			v := verifyOne(t, s, d.String())
			if v.Signed != tc.wantSigned {
				t.Fatalf("Verify(%s).Signed = %v, want %v: %s", d, v.Signed, tc.wantSigned, dump(v))
			}
			if got := e.resetRequests()["GET blobs"]; got != tc.wantBlobs {
				t.Errorf("blob GETs = %d, want %d", got, tc.wantBlobs)
			}
			if got := testutil.ToFloat64(s.blobsSaved) - saved0; got != tc.wantSaved {
				t.Errorf("payload reads saved = %v, want %v", got, tc.wantSaved)
			}
			if tc.wantReason != "" && !strings.Contains(dump(v.Rejected), tc.wantReason) {
				t.Errorf("Rejected = %s, want a reason containing %q", dump(v.Rejected), tc.wantReason)
			}
		})
	}
}

// TestSimpleSigningPayload: the repository is named as cosign signs it (index.docker.io for
// Docker Hub).
func TestSimpleSigningPayload(t *testing.T) {
	const dig = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	for _, tc := range []struct{ ref, repo string }{
		{"nginx@" + dig, "index.docker.io/library/nginx"},
		{"docker.io/library/nginx:1.27", "index.docker.io/library/nginx"},
		{"ghcr.io/acme/app:v1", "ghcr.io/acme/app"},
		{"localhost:5000/app@" + dig, "localhost:5000/app"},
	} {
		want := `{"critical":{"identity":{"docker-reference":"` + tc.repo + `"},"image":{"docker-manifest-digest":"` + dig + `"},"type":"cosign container image signature"},"optional":null}`
		// Twice: the first builds the repository's template, the second is made from it.
		for i := range 2 {
			got := simpleSigningPayload(mustParse(t, tc.ref), mustHash(t, dig))
			if string(got) != want {
				t.Errorf("simpleSigningPayload(%s) #%d = %s, want %s", tc.ref, i+1, got, want)
			}
		}
	}
}

func mustParse(t *testing.T, s string) imageref.Ref {
	t.Helper()
	r, err := imageref.Parse(s)
	if err != nil {
		t.Fatalf("imageref.Parse(%q) = %v", s, err)
	}
	return r
}

func mustHash(t *testing.T, s string) v1.Hash {
	t.Helper()
	h, err := v1.NewHash(s)
	if err != nil {
		t.Fatalf("v1.NewHash(%q) = %v", s, err)
	}
	return h
}

// TestSimpleSigningPayloadTemplate: a payload made from a repository's kept template is, byte
// for byte, the one the package cosign uses builds for that digest.
func TestSimpleSigningPayloadTemplate(t *testing.T) {
	refs := []string{"nginx", "docker.io/library/nginx:1.27", "ghcr.io/acme/team/app:v1", "localhost:5000/app", "127.0.0.1:5000/a/b/c@sha256:" + strings.Repeat("a", 64)}
	for _, r := range refs {
		ref := mustParse(t, r)
		for i := range 20 {
			sum := sha256.Sum256([]byte(fmt.Sprint(r, i)))
			h := mustHash(t, "sha256:"+hex.EncodeToString(sum[:]))
			got, want := simpleSigningPayload(ref, h), packagePayload(ref, h)
			if want == nil || !bytes.Equal(got, want) {
				t.Fatalf("simpleSigningPayload(%s, %s) = %s, want %s", r, h, got, want)
			}
		}
	}
}
