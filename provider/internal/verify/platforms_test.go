package verify

import (
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/imagetrust/imagetrust/provider/internal/config"
)

func TestMultiArch(t *testing.T) {
	e := newEnv(t)
	k := newKey(t, "ecdsa")
	index := keyAuthorityCfg("index-only", k)
	strict := keyAuthorityCfg("all-platforms", k)
	strict.VerifyPlatforms = true
	s := newService(t, e, index, strict)

	d, kids := e.pushIndex(t, "multi", "v1")
	signImage(t, d, k)
	v := verifyOne(t, s, e.host+"/multi:v1")
	if got := len(v.Platforms); got != 2 {
		t.Fatalf("platforms = %+v, want 2", v.Platforms)
	}
	if p := v.Platforms[1]; p.OS != "linux" || p.Architecture != "arm64" || p.Variant != "v8" || p.Digest != kids[1].DigestStr() {
		t.Errorf("platforms[1] = %+v, want linux/arm64/v8 %s", p, kids[1].DigestStr())
	}
	if sigAuthorities(v) != "index-only/cosign" {
		t.Fatalf("signatures = %s, want only index-only: platforms are not signed yet", sigAuthorities(v))
	}
	found := false
	for _, r := range v.Rejected {
		found = found || (r.Kind == "platform" && strings.Contains(r.Reason, "authority all-platforms signed the index but not platform linux/amd64"))
	}
	if !found {
		t.Errorf("rejected = %+v, want a platform rejection naming linux/amd64", v.Rejected)
	}

	// Sign one platform: still missing the other.
	signImage(t, kids[0], k)
	d2, kids2 := e.pushIndex(t, "multi2", "v1")
	signImage(t, d2, k)
	signImage(t, kids2[0], k)
	v = verifyOne(t, s, d2.String())
	if sigAuthorities(v) != "index-only/cosign" {
		t.Errorf("one platform signed: signatures = %s, want only index-only", sigAuthorities(v))
	}

	// Sign every platform: the strict authority counts.
	signImage(t, kids2[1], k)
	v = verifyOne(t, s, d2.String())
	if sigAuthorities(v) != "all-platforms/cosign,index-only/cosign" { // sorted by authority
		t.Errorf("all platforms signed: signatures = %s, want both authorities", sigAuthorities(v))
	}
	for _, p := range v.Platforms {
		if len(p.VerifiedBy) != 1 || p.VerifiedBy[0] != "all-platforms" {
			t.Errorf("platform %s verifiedBy = %v, want [all-platforms]", p.Digest, p.VerifiedBy)
		}
	}
}

func TestTagDrift(t *testing.T) {
	e := newEnv(t)
	k := newKey(t, "ecdsa")
	s := newService(t, e, keyAuthorityCfg("release", k))
	d := e.push(t, "drift", "v1")
	signImage(t, d, k)

	v := verifyOne(t, s, e.host+"/drift:v1@"+d.DigestStr())
	if v.TagDigest != d.DigestStr() || !v.Signed {
		t.Fatalf("before the tag moved: tagDigest = %s signed = %v, want %s true", v.TagDigest, v.Signed, d.DigestStr())
	}
	// Move the tag to another image.
	img, _ := random.Image(64, 1)
	tag, _ := name.NewTag(e.host + "/drift:v1")
	if err := remote.Write(tag, img); err != nil {
		t.Fatal(err)
	}
	moved, _ := img.Digest()
	e.resetRequests()
	v = verifyOne(t, s, e.host+"/drift:v1@"+d.DigestStr())
	if v.Digest != d.DigestStr() || v.TagDigest != moved.String() || !v.Signed {
		t.Errorf("after the tag moved: digest = %s tagDigest = %s signed = %v, want %s %s true", v.Digest, v.TagDigest, v.Signed, d.DigestStr(), moved)
	}
	// The tag's HEAD no longer describes the digest: its media type comes from a HEAD by digest.
	if got := e.resetRequests()["HEAD manifests"]; got != 2 || v.MediaType != string(types.DockerManifestSchema2) {
		t.Errorf("after the tag moved: %d HEADs, mediaType %q; want 2 and %s", got, v.MediaType, types.DockerManifestSchema2)
	}
	// A deleted tag: tagDigest empty, tagError says why.
	v = verifyOne(t, s, e.host+"/drift:gone@"+d.DigestStr())
	if v.TagDigest != "" || !strings.HasPrefix(v.TagError, "not found: ") {
		t.Errorf("missing tag: tagDigest = %q tagError = %q, want empty and a not found error", v.TagDigest, v.TagError)
	}
}

func TestAuthorityScope(t *testing.T) {
	e := newEnv(t)
	k := newKey(t, "ecdsa")
	a := keyAuthorityCfg("team-a", k)
	a.Images = []string{e.host + "/team-a/**"}
	s := newService(t, e, a)
	in := e.push(t, "team-a/app", "v1")
	out := e.push(t, "team-b/app", "v1")
	signImage(t, in, k)
	signImage(t, out, k)
	if v := verifyOne(t, s, in.String()); !v.Signed {
		t.Errorf("Verify(%s) signed = false, want true: the authority covers team-a/**", in)
	}
	if v := verifyOne(t, s, out.String()); v.Signed {
		t.Errorf("Verify(%s) signed = true, want false: the authority covers team-a/** only", out)
	}
	_ = config.Authority{}
}
