package verify

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/imagetrust/imagetrust/provider/internal/batch"
	"github.com/imagetrust/imagetrust/provider/internal/cache"
	"github.com/imagetrust/imagetrust/provider/internal/config"
	"github.com/imagetrust/imagetrust/provider/internal/imageref"
	"github.com/imagetrust/imagetrust/provider/internal/registry"
)

// pathLog records the paths of the registry requests it sees.
type pathLog struct {
	mu    sync.Mutex
	paths []string
}

func (l *pathLog) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		l.mu.Lock()
		l.paths = append(l.paths, r.Method+" "+r.URL.Path)
		l.mu.Unlock()
		h.ServeHTTP(w, r)
	})
}

func (l *pathLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.paths
	l.paths = nil
	return out
}

// verifySigsOne runs VerifySignatures for one key and fails on a per-key error.
func verifySigsOne(t testing.TB, s *Service, key string) *Value {
	t.Helper()
	items := s.VerifySignatures(context.Background(), []string{key})
	if items[0].Error != "" {
		t.Fatalf("VerifySignatures(%q) error = %s", key, items[0].Error)
	}
	return valueOf(t, items[0])
}

// TestSignaturesPlan: an image carrying every kind of evidence (a .sig signature, a signed .att
// SLSA provenance, a Sigstore bundle of cosign's sign predicate, a bundle SPDX attestation, an
// in-toto referrer and an unsigned SBOM referrer). /v1/verify/signatures finds the same
// signatures as /v1/verify, says it read signatures only, reports no attestation, SBOM or
// provenance, and never asks the registry for the .att or .sbom tags or the in-toto and SBOM
// referrer manifests.
func TestSignaturesPlan(t *testing.T) {
	var log pathLog
	e := newEnvWrapped(t, true, log.wrap)
	k := newKey(t, "ecdsa")
	s := newService(t, e, keyAuthorityCfg("ci", k))

	d := e.push(t, "everything", "v1")
	signImage(t, d, k)
	attachAtt(t, d, dsseSign(t, k, statementJSON(t, "v1", "x", d.DigestStr(), slsaV02, slsa02Predicate)))
	attachKeyBundle(t, d, k, statementJSON(t, "v1", "x", d.DigestStr(), cosignSignPredicate, map[string]any{}), cosignSignPredicate)
	attachKeyBundle(t, d, k, statementJSON(t, "v1", "x", d.DigestStr(), "https://spdx.dev/Document", map[string]any{"spdxVersion": "SPDX-2.3"}), "https://spdx.dev/Document")
	attachReferrer(t, d, "application/spdx+json", []byte(`{"spdxVersion":"SPDX-2.3"}`))
	key := e.host + "/everything:v1@" + d.DigestStr()
	log.take()

	full := verifyOne(t, s, key)
	fullPaths := log.take()
	sigs := verifySigsOne(t, s, key)
	sigPaths := log.take()

	if full.Reads != "" {
		t.Errorf("/v1/verify reads = %q, want it left out (everything read)", full.Reads)
	}
	if len(full.Attestations) == 0 || len(full.Provenance) == 0 || len(full.SBOM.Formats) == 0 || len(full.SBOM.Unverified) == 0 {
		t.Fatalf("/v1/verify = %s, want attestations, provenance and SBOMs (the fixture is wrong otherwise)", dump(full))
	}
	if sigs.Reads != ReadsSignatures {
		t.Errorf("reads = %q, want %q", sigs.Reads, ReadsSignatures)
	}
	if got, want := sigAuthorities(sigs), sigAuthorities(full); got != want || want != "ci/bundle,ci/cosign" {
		t.Errorf("signatures = %s, want %s as /v1/verify (ci/bundle,ci/cosign)", got, want)
	}
	if !sigs.Signed || sigs.TagDigest != d.DigestStr() || sigs.Digest != d.DigestStr() {
		t.Errorf("signed/digest/tagDigest = %v %s %s, want true and %s", sigs.Signed, sigs.Digest, sigs.TagDigest, d.DigestStr())
	}
	if len(sigs.Attestations) != 0 || len(sigs.Provenance) != 0 || len(sigs.SBOM.Formats) != 0 || len(sigs.SBOM.Unverified) != 0 {
		t.Errorf("VerifySignatures() = %s, want no attestation, provenance or SBOM", dump(sigs))
	}
	tagPrefix := "sha256-" + strings.TrimPrefix(d.DigestStr(), "sha256:")
	for _, p := range sigPaths {
		if strings.Contains(p, tagPrefix+".att") || strings.Contains(p, tagPrefix+".sbom") {
			t.Errorf("signatures plan read %s", p)
		}
	}
	if !slices.ContainsFunc(sigPaths, func(p string) bool { return strings.Contains(p, tagPrefix+".sig") }) ||
		!slices.ContainsFunc(sigPaths, func(p string) bool { return strings.Contains(p, "/referrers/") }) {
		t.Errorf("signatures plan requests %v, want the .sig tag and the referrers list", sigPaths)
	}
	// The full plan reads two more manifests (.att, .sbom), the .att layer, and the SPDX bundle
	// and SBOM referrer are the same; the signatures plan skips the SBOM referrer manifest.
	if len(sigPaths) >= len(fullPaths) {
		t.Errorf("signatures plan sent %d requests, /v1/verify %d; want fewer:\n%v\n%v", len(sigPaths), len(fullPaths), sigPaths, fullPaths)
	}
	t.Logf("requests per image: /v1/verify %d, /v1/verify/signatures %d", len(fullPaths), len(sigPaths))
}

// TestSignaturesPlanTagDriftAndPlatforms: the signatures plan still reports tag drift and, for
// an authority with verifyPlatforms, requires every platform's own signature.
func TestSignaturesPlanTagDriftAndPlatforms(t *testing.T) {
	e := newEnv(t)
	k := newKey(t, "ecdsa")
	strict := keyAuthorityCfg("all-platforms", k)
	strict.VerifyPlatforms = true
	s := newService(t, e, keyAuthorityCfg("index-only", k), strict)

	idx, kids := e.pushIndex(t, "multi", "v1")
	signImage(t, idx, k)
	signImage(t, kids[0], k)
	v := verifySigsOne(t, s, idx.String())
	if len(v.Platforms) != 2 || sigAuthorities(v) != "index-only/cosign" {
		t.Fatalf("one platform signed: platforms %d, signatures %s; want 2 and only index-only", len(v.Platforms), sigAuthorities(v))
	}
	signImage(t, kids[1], k)
	idx2, kids2 := e.pushIndex(t, "multi2", "v1")
	for _, d := range append([]name.Digest{idx2}, kids2...) {
		signImage(t, d, k)
	}
	if v := verifySigsOne(t, s, idx2.String()); sigAuthorities(v) != "all-platforms/cosign,index-only/cosign" {
		t.Errorf("all platforms signed: signatures = %s, want both authorities", sigAuthorities(v))
	}

	d := e.push(t, "drift", "v1")
	signImage(t, d, k)
	img, err := random.Image(64, 1)
	if err != nil {
		t.Fatal(err)
	}
	tag, err := name.NewTag(e.host + "/drift:v1")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(tag, img); err != nil {
		t.Fatal(err)
	}
	moved, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	v = verifySigsOne(t, s, e.host+"/drift:v1@"+d.DigestStr())
	if v.TagDigest != moved.String() || v.Digest != d.DigestStr() || !v.Signed {
		t.Errorf("after drift: digest %s tagDigest %s signed %v, want %s %s true", v.Digest, v.TagDigest, v.Signed, d.DigestStr(), moved)
	}
}

// TestSignaturesPlanSharedCache: even over one cache the two plans never answer from each
// other's entries (the cache key names the plan), and each endpoint's answers are cached.
func TestSignaturesPlanSharedCache(t *testing.T) {
	e := newEnv(t)
	k := newKey(t, "ecdsa")
	c, err := cache.New[*Value](cache.Options{Name: "verify", MaxEntries: 100, TTL: time.Hour, NotFoundTTL: 30 * time.Second, Negative: registry.IsNegative})
	if err != nil {
		t.Fatal(err)
	}
	pool, err := batch.NewPool(8, nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(context.Background(), Options{Authorities: []config.Authority{keyAuthorityCfg("ci", k)},
		Registry: e.reg, Refs: imageref.NewMemo(1024), Pool: pool, Cache: c, UnsignedTTL: 30 * time.Second, Deadline: 30 * time.Second,
		Signatures: Endpoint{Cache: c}})
	if err != nil {
		t.Fatal(err)
	}
	d := e.push(t, "shared", "v1")
	signImage(t, d, k)
	attachAtt(t, d, dsseSign(t, k, statementJSON(t, "v1", "x", d.DigestStr(), slsaV02, slsa02Predicate)))

	if v := verifySigsOne(t, s, d.String()); v.Reads != ReadsSignatures || len(v.Provenance) != 0 {
		t.Fatalf("signatures first: %s, want reads signatures and no provenance", dump(v))
	}
	if v := verifyOne(t, s, d.String()); v.Reads != "" || len(v.Provenance) != 1 {
		t.Fatalf("/v1/verify after it: %s, want everything read (not the cached signatures answer)", dump(v))
	}
	e.resetRequests()
	if v := verifySigsOne(t, s, d.String()); v.Reads != ReadsSignatures || len(v.Provenance) != 0 {
		t.Fatalf("signatures again: %s, want the cached signatures answer", dump(v))
	}
	if n := e.resetRequests(); len(n) != 0 {
		t.Errorf("a cached signatures answer sent registry requests %v", n)
	}
}
