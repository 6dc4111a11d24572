package verify

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	ociremote "github.com/sigstore/cosign/v2/pkg/oci/remote"
	cstatic "github.com/sigstore/cosign/v2/pkg/oci/static"
	ctypes "github.com/sigstore/cosign/v2/pkg/types"
)

// attachSBOMTag stores sbom as `cosign attach sbom` does by default: an image of one layer of
// mediaType under the sha256-<hex>.sbom tag (cosign's SBOMTag and static.NewFile).
func attachSBOMTag(t *testing.T, d name.Digest, mediaType types.MediaType, sbom []byte) {
	t.Helper()
	tag, err := ociremote.SBOMTag(d)
	if err != nil {
		t.Fatal(err)
	}
	img, err := cstatic.NewFile(sbom, cstatic.WithLayerMediaType(mediaType))
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(tag, img); err != nil {
		t.Fatalf("remote.Write(%s) = %v", tag, err)
	}
}

// attachSBOMReferrer stores sbom as `cosign attach sbom --registry-referrers-mode=oci-1-1`
// does: an OCI manifest whose config media type is
// application/vnd.dev.cosign.artifact.sbom.v1+json, one layer of mediaType, subject d.
func attachSBOMReferrer(t *testing.T, d name.Digest, mediaType types.MediaType, sbom []byte) {
	t.Helper()
	desc, err := remote.Head(d)
	if err != nil {
		t.Fatal(err)
	}
	img := mutate.MediaType(mutate.ConfigMediaType(empty.Image, "application/vnd.dev.cosign.artifact.sbom.v1+json"), types.OCIManifestSchema1)
	img, err = mutate.AppendLayers(img, static.NewLayer(sbom, mediaType))
	if err != nil {
		t.Fatal(err)
	}
	withSubject, ok := mutate.Subject(img, *desc).(v1.Image)
	if !ok {
		t.Fatal("mutate.Subject did not return an image")
	}
	dg, err := withSubject.Digest()
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(d.Context().Digest(dg.String()), withSubject); err != nil {
		t.Fatalf("remote.Write(sbom referrer) = %v", err)
	}
}

// TestCosignAttachedSBOMs: SBOMs attached unsigned by `cosign attach sbom` (the .sbom tag, and
// the OCI 1.1 referrer) are listed under sbom.unverified with their format, never counted as a
// verified SBOM. With and without the referrers API.
func TestCosignAttachedSBOMs(t *testing.T) {
	for _, api := range []bool{true, false} {
		t.Run(map[bool]string{true: "referrers API", false: "fallback tag"}[api], func(t *testing.T) {
			e := newEnvReferrers(t, api)
			k := newKey(t, "ecdsa")
			s := newService(t, e, keyAuthorityCfg("release", k))
			d := e.push(t, "sbom/app", "v1")
			signImage(t, d, k)
			attachSBOMTag(t, d, ctypes.SPDXJSONMediaType, []byte(`{"spdxVersion":"SPDX-2.3"}`))
			attachSBOMReferrer(t, d, ctypes.CycloneDXJSONMediaType, []byte(`{"bomFormat":"CycloneDX"}`))
			attachSBOMReferrer(t, d, ctypes.SyftMediaType, []byte(`{"artifacts":[]}`))
			v := verifyOne(t, s, d.String())
			h := d.DigestStr()[len("sha256:"):]
			var got []string
			for _, u := range v.SBOM.Unverified {
				if u.Verified || u.Digest == "" {
					t.Errorf("unverified SBOM %+v: want verified false and a digest", u)
				}
				got = append(got, u.Format+" "+u.MediaType+" "+u.ArtifactType+" "+u.Tag)
			}
			slices.Sort(got)
			want := []string{
				"cyclonedx application/vnd.cyclonedx+json application/vnd.dev.cosign.artifact.sbom.v1+json ",
				"spdx text/spdx+json  sha256-" + h + ".sbom",
				"syft application/vnd.syft+json application/vnd.dev.cosign.artifact.sbom.v1+json ",
			}
			if !slices.Equal(got, want) {
				t.Errorf("sbom.unverified = %q, want %q: %s", got, want, dump(v.SBOM))
			}
			if len(v.Rejected) != 0 || !v.Signed {
				t.Errorf("Verify() = %s, want signed and nothing rejected", dump(v))
			}
			if raw := dump(v.SBOM); strings.Contains(raw, `"present":true`) || strings.Contains(raw, `"formats":["`) {
				t.Errorf("sbom = %s: an unsigned SBOM must never count as verified", raw)
			}
		})
	}
}
