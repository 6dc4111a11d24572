package verify

import (
	"reflect"
	"testing"
)

// TestReferrersFallbackTag: against a registry without the OCI referrers API, the first image
// of a repository costs the API's 404 and the sha256-<hex> fallback tag; after that the
// provider reads the fallback tag only. Referrers pushed there (a Sigstore bundle) verify.
func TestReferrersFallbackTag(t *testing.T) {
	e := newEnvReferrers(t, false)
	k := newKey(t, "ecdsa")
	auth := keyAuthorityCfg("release", k)
	auth.Formats = []string{"bundle"}
	s := newService(t, e, auth)

	bundled := func(tag string) string {
		d := e.push(t, "fallback/app", tag)
		attachKeyBundle(t, d, k, statementJSON(t, "v1", "x", d.DigestStr(), cosignSignPredicate, map[string]any{}), cosignSignPredicate)
		return d.String()
	}
	first, second := bundled("v1"), bundled("v2")

	e.resetRequests()
	v := verifyOne(t, s, first)
	if sigAuthorities(v) != "release/bundle" {
		t.Fatalf("Verify(first) signatures = %q, want release/bundle: %s", sigAuthorities(v), dump(v))
	}
	// The registry's /v2/ ping (once per repository); HEAD for the media type; referrers API
	// (404), fallback tag, bundle manifest, bundle blob.
	want := map[string]int{"GET ping": 1, "HEAD manifests": 1, "GET referrers": 1, "GET manifests": 2, "GET blobs": 1}
	if got := e.resetRequests(); !reflect.DeepEqual(got, want) {
		t.Errorf("requests for the first image = %v, want %v", got, want)
	}

	v = verifyOne(t, s, second)
	if sigAuthorities(v) != "release/bundle" {
		t.Fatalf("Verify(second) signatures = %q, want release/bundle: %s", sigAuthorities(v), dump(v))
	}
	delete(want, "GET ping")
	delete(want, "GET referrers")
	if got := e.resetRequests(); !reflect.DeepEqual(got, want) {
		t.Errorf("requests for the second image = %v, want %v (no referrers API request)", got, want)
	}

	// An image with no referrers at all: the missing fallback tag means none, not an error.
	d := e.push(t, "fallback/app", "unsigned")
	if v := verifyOne(t, s, d.String()); v.Signed {
		t.Errorf("Verify(unsigned) = %s, want signed=false", dump(v))
	}
}

// TestUnknownSignatureKind: which artifact types the provider does not verify are still
// reported as rejected signatures or attestations, and which are other artifacts.
func TestUnknownSignatureKind(t *testing.T) {
	for _, tc := range []struct{ artifactType, want string }{
		{"application/vnd.cncf.notary.signature", "signature"},
		{"application/vnd.dev.cosign.artifact.att.v1+json", "attestation"},
		{"application/vnd.dev.cosign.artifact.wasm.v1+json", "signature"},
		{"application/vnd.example.attestation.v1+json", "attestation"},
		{"application/vnd.in-toto.provenance+dsse", "attestation"},
		{"application/pgp-signature", "signature"},
		{"application/vnd.example.sig+json", "signature"},
		{"application/sarif+json", ""},
		{"application/vnd.example.sigma+json", ""},
		{"application/vnd.oci.image.manifest.v1+json", ""},
		{"application/vnd.openvex+json", ""},
		{"", ""},
	} {
		if got := unknownSignatureKind(tc.artifactType); got != tc.want {
			t.Errorf("unknownSignatureKind(%q) = %q, want %q", tc.artifactType, got, tc.want)
		}
	}
}
