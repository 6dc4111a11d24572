package verify

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/imagetrust/imagetrust/provider/internal/server"
	"github.com/imagetrust/imagetrust/provider/internal/wire"
)

// TestEncodedIsEncodingJSON: the cached per-digest part rendered with the key's image and tag
// (fresh and stale) is byte for byte what encoding/json writes for the Value, alone and inside a
// whole response body.
func TestEncodedIsEncodingJSON(t *testing.T) {
	full, unsigned := goldenValues()
	for _, v := range []*Value{full, unsigned, {Answer: &Answer{}}} {
		c, err := v.split(nil)
		if err != nil {
			t.Fatalf("split() = %v", err)
		}
		if c.IsSigned() != v.Signed || !c.loadedAt.Equal(v.loadedAt) || c.Answer != nil {
			t.Errorf("split() kept signed=%v loadedAt=%v answer=%v, want %v %v <nil>", c.IsSigned(), c.loadedAt, c.Answer, v.Signed, v.loadedAt)
		}
		for _, stale := range []bool{false, true} {
			want := *v
			want.Stale = stale
			wantJSON, err := json.Marshal(&want)
			if err != nil {
				t.Fatal(err)
			}
			got, err := c.render(v.Image, v.TagDigest, v.TagError, false, stale)
			if err != nil {
				t.Fatalf("render() = %v", err)
			}
			if !bytes.Equal(got, wantJSON) {
				t.Errorf("encoded(stale=%v) =\n%s\nwant (encoding/json)\n%s", stale, got, wantJSON)
			}
			// The whole response body, as the server writes it, against the old path (the
			// *Value handed to the encoder).
			gotBody, err := server.EncodeResponse([]wire.Item{{Key: "k", Value: got}}, false, "")
			if err != nil {
				t.Fatal(err)
			}
			wantBody, err := server.EncodeResponse([]wire.Item{{Key: "k", Value: &want}}, false, "")
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(gotBody, wantBody) {
				t.Errorf("response body (stale=%v) =\n%s\nwant\n%s", stale, gotBody, wantBody)
			}
		}
	}
}

// TestGoldenJSON pins the encoding of two answers (fresh and stale) to what encoding/json wrote
// for the flat Value struct before its fields moved behind *Answer: the field order, omitempty
// and escaping of every field are unchanged.
func TestGoldenJSON(t *testing.T) {
	want := []string{
		`{"image":"example.com/a/b:v1","digest":"sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","mediaType":"application/vnd.oci.image.index.v1+json","signed":true,"signatures":[{"authority":"release","keyId":"sha256:00","algorithm":"ecdsa-p256-sha256","verified":true,"format":"cosign"}],"attestations":[{"authority":"release","predicateType":"https://slsa.dev/provenance/v1","format":"bundle"}],"sbom":{"formats":["spdx"],"unverified":[{"format":"cyclonedx","artifactType":"a","digest":"d","verified":false}]},"provenance":[{"builderId":"https://b/\u003cx\u003e\u0026y","sourceUri":"git+https://s","buildType":"t","predicateType":"https://slsa.dev/provenance/v1","authority":"release"}],"platforms":[{"os":"linux","architecture":"arm64","variant":"v8","digest":"sha256:1","verifiedBy":["release"]}],"tagDigest":"sha256:2","tagError":"not found: \u2028\"quoted\"\n","rejected":[{"kind":"signature","reason":"layer \u003cx\u003e: wrong key \u0001 \ufffd"}]}`,
		`{"image":"example.com/a/b:v1","digest":"sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","mediaType":"application/vnd.oci.image.index.v1+json","signed":true,"signatures":[{"authority":"release","keyId":"sha256:00","algorithm":"ecdsa-p256-sha256","verified":true,"format":"cosign"}],"attestations":[{"authority":"release","predicateType":"https://slsa.dev/provenance/v1","format":"bundle"}],"sbom":{"formats":["spdx"],"unverified":[{"format":"cyclonedx","artifactType":"a","digest":"d","verified":false}]},"provenance":[{"builderId":"https://b/\u003cx\u003e\u0026y","sourceUri":"git+https://s","buildType":"t","predicateType":"https://slsa.dev/provenance/v1","authority":"release"}],"platforms":[{"os":"linux","architecture":"arm64","variant":"v8","digest":"sha256:1","verifiedBy":["release"]}],"tagDigest":"sha256:2","tagError":"not found: \u2028\"quoted\"\n","rejected":[{"kind":"signature","reason":"layer \u003cx\u003e: wrong key \u0001 \ufffd"}],"stale":true}`,
		`{"image":"example.com/u:v1","digest":"sha256:3","signed":false,"signatures":[],"attestations":[],"sbom":{"formats":[]},"provenance":[],"platforms":[],"tagDigest":""}`,
		`{"image":"example.com/u:v1","digest":"sha256:3","signed":false,"signatures":[],"attestations":[],"sbom":{"formats":[]},"provenance":[],"platforms":[],"tagDigest":"","stale":true}`,
	}
	full, unsigned := goldenValues()
	i := 0
	for _, v := range []*Value{full, unsigned} {
		c, err := v.split(nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, stale := range []bool{false, true} {
			got, err := c.render(v.Image, v.TagDigest, v.TagError, false, stale)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != want[i] {
				t.Errorf("encoded(%s, stale=%v) =\n%s\nwant\n%s", v.Image, stale, got, want[i])
			}
			i++
		}
	}
}

// goldenValues are two answers whose encoding is pinned in goldenJSON.
func goldenValues() (full, unsigned *Value) {
	full = &Value{Answer: &Answer{
		Image: "example.com/a/b:v1", Digest: "sha256:" + string(bytes.Repeat([]byte("a"), 64)),
		MediaType: "application/vnd.oci.image.index.v1+json", Signed: true,
		Signatures:   []Signature{{Authority: "release", KeyID: "sha256:00", Algorithm: "ecdsa-p256-sha256", Verified: true, Format: "cosign"}},
		Attestations: []Attestation{{Authority: "release", PredicateType: "https://slsa.dev/provenance/v1", Format: "bundle"}},
		SBOM:         SBOM{Formats: []string{"spdx"}, Unverified: []UnverifiedSBOM{{Format: "cyclonedx", ArtifactType: "a", Digest: "d"}}},
		Provenance:   []Provenance{{BuilderID: "https://b/<x>&y", SourceURI: "git+https://s", BuildType: "t", PredicateType: "https://slsa.dev/provenance/v1", Authority: "release"}},
		Platforms:    []Platform{{OS: "linux", Architecture: "arm64", Variant: "v8", Digest: "sha256:1", VerifiedBy: []string{"release"}}},
		TagDigest:    "sha256:2", TagError: "not found: \u2028\"quoted\"\n",
		Rejected: []Rejection{{Kind: "signature", Reason: "layer <x>: wrong key \x01 \xff"}},
	}, loadedAt: time.Unix(1, 0)}
	unsigned = &Value{Answer: &Answer{Image: "example.com/u:v1", Digest: "sha256:3", Signatures: []Signature{}, Attestations: []Attestation{}, Platforms: []Platform{}}}
	unsigned.finish()
	return full, unsigned
}
