package verify

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/imagetrust/imagetrust/provider/internal/wire"
)

// TestPlatformListIsCappedNotItsVerification: the answer lists the first Limits.Platforms
// platforms with platformsTotal and platformsTruncated, while an authority with
// verifyPlatforms is still held to every platform of the index, listed or not.
func TestPlatformListIsCappedNotItsVerification(t *testing.T) {
	e := newEnv(t)
	k := newKey(t, "ecdsa")
	strict := keyAuthorityCfg("all-platforms", k)
	strict.VerifyPlatforms = true
	s := newService(t, e, strict)
	s.lim.Platforms = 1

	// Index and the listed platform signed, the unlisted one (linux/arm64/v8) not: the strict
	// authority must not count.
	d, kids := e.pushIndex(t, "multi", "v1")
	signImage(t, d, k)
	signImage(t, kids[0], k)
	items := s.Verify(t.Context(), []string{d.String()})
	v := valueOf(t, items[0])
	if len(v.Platforms) != 1 || v.PlatformsTotal != 2 || !v.PlatformsTruncated {
		t.Fatalf("platforms = %+v, total %d, truncated %v; want 1 listed of 2, truncated", v.Platforms, v.PlatformsTotal, v.PlatformsTruncated)
	}
	if sigAuthorities(v) != "" {
		t.Errorf("unlisted platform unsigned: signatures = %s, want none", sigAuthorities(v))
	}
	found := false
	for _, r := range v.Rejected {
		found = found || (r.Kind == "platform" && strings.Contains(r.Reason, "not platform linux/arm64/v8 ("+kids[1].DigestStr()+")"))
	}
	if !found {
		t.Errorf("rejected = %+v, want a platform rejection naming the unlisted linux/arm64/v8", v.Rejected)
	}
	var raw map[string]any
	if err := json.Unmarshal(items[0].Value.(wire.Encoded), &raw); err != nil {
		t.Fatal(err)
	}
	if raw["platformsTotal"] != float64(2) || raw["platformsTruncated"] != true {
		t.Errorf("encoded answer has platformsTotal %v, platformsTruncated %v; want 2, true", raw["platformsTotal"], raw["platformsTruncated"])
	}

	// Every platform signed: the authority counts although one platform is not listed.
	signImage(t, kids[1], k)
	d2, kids2 := e.pushIndex(t, "multi2", "v1")
	for _, x := range append(kids2, d2) {
		signImage(t, x, k)
	}
	v = verifyOne(t, s, d2.String())
	if sigAuthorities(v) != "all-platforms/cosign" || !v.PlatformsTruncated {
		t.Errorf("all platforms signed: signatures = %s, truncated %v; want all-platforms, true", sigAuthorities(v), v.PlatformsTruncated)
	}

	// Within the cap: listed whole, total given, no truncation flag.
	s.lim.Platforms = 2
	d3, _ := e.pushIndex(t, "multi3", "v1")
	v = verifyOne(t, s, d3.String())
	if len(v.Platforms) != 2 || v.PlatformsTotal != 2 || v.PlatformsTruncated {
		t.Errorf("cap 2: %d platforms, total %d, truncated %v; want 2, 2, false", len(v.Platforms), v.PlatformsTotal, v.PlatformsTruncated)
	}
}
