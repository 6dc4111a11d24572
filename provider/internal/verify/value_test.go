package verify

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/imagetrust/imagetrust/provider/internal/server"
	"github.com/imagetrust/imagetrust/provider/internal/wire"
)

// TestEncodedIsEncodingJSON: the cached, pre-encoded answer (fresh and stale) is byte for byte
// what encoding/json writes for the Value, alone and inside a whole response body.
func TestEncodedIsEncodingJSON(t *testing.T) {
	full := &Value{
		Image: "example.com/a/b:v1", Digest: "sha256:" + string(bytes.Repeat([]byte("a"), 64)),
		MediaType: "application/vnd.oci.image.index.v1+json", Signed: true,
		Signatures:   []Signature{{Authority: "release", KeyID: "sha256:00", Algorithm: "ecdsa-p256-sha256", Verified: true, Format: "cosign"}},
		Attestations: []Attestation{{Authority: "release", PredicateType: "https://slsa.dev/provenance/v1", Format: "bundle"}},
		SBOM:         SBOM{Present: true, Format: "spdx", Authority: "release", Unverified: []UnverifiedSBOM{{Format: "cyclonedx", ArtifactType: "a", Digest: "d"}}},
		Provenance:   Provenance{Present: true, BuilderID: "https://b/<x>&y", SourceURI: "git+https://s", BuildType: "t"},
		Platforms:    []Platform{{OS: "linux", Architecture: "arm64", Variant: "v8", Digest: "sha256:1", VerifiedBy: []string{"release"}}},
		TagDigest:    "sha256:2", TagError: "not found: \u2028\"quoted\"\n",
		Rejected: []Rejection{{Kind: "signature", Reason: "layer <x>: wrong key \x01 \xff"}},
		loadedAt: time.Unix(1, 0),
	}
	unsigned := &Value{Image: "example.com/u:v1", Digest: "sha256:3", Signatures: []Signature{}, Attestations: []Attestation{}, Platforms: []Platform{}}
	for _, v := range []*Value{full, unsigned, {}} {
		c, err := v.compact()
		if err != nil {
			t.Fatalf("compact() = %v", err)
		}
		if c.Signed != v.Signed || !c.loadedAt.Equal(v.loadedAt) {
			t.Errorf("compact() kept signed=%v loadedAt=%v, want %v %v", c.Signed, c.loadedAt, v.Signed, v.loadedAt)
		}
		for _, stale := range []bool{false, true} {
			want := *v
			want.Stale = stale
			wantJSON, err := json.Marshal(&want)
			if err != nil {
				t.Fatal(err)
			}
			served := *c
			served.Stale = stale
			got, err := served.encoded()
			if err != nil {
				t.Fatalf("encoded() = %v", err)
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
