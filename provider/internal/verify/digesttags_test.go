package verify

import (
	"fmt"
	"net/http"
	"reflect"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
)

// TestDigestTagsReads: with the default authority, one listing of the digest's tags replaces
// the reads of the .att and .sbom tags (and, on a registry without the referrers API, of the
// fallback tag) that do not exist; those that exist are read and verified as before. Counted
// on the loopback registry's request log, image by image (a fresh Service each: no answer
// cache).
func TestDigestTagsReads(t *testing.T) {
	e := newEnvReferrers(t, false) // no referrers API: referrers live under sha256-<hex>
	k := newKey(t, "ecdsa")
	auth := keyAuthorityCfg("release", k)
	const repo = "listed/app"
	// Learn the registry (ping, transport, the referrers API's 404) on an image of its own.
	verifyOne(t, newService(t, e, auth), e.push(t, repo, "warm").String())

	sbom := []byte(`{"spdxVersion":"SPDX-2.3","name":"app"}`)
	tests := []struct {
		name  string
		setup func(d name.Digest)
		want  map[string]int
		check func(t *testing.T, v *Value)
	}{{
		name:  "signed: HEAD, .sig and the listing only",
		setup: func(d name.Digest) { signImage(t, d, k) },
		want:  map[string]int{"HEAD manifests": 1, "GET manifests": 1, "GET tags": 1},
		check: func(t *testing.T, v *Value) {
			if sigAuthorities(v) != "release/cosign" {
				t.Errorf("signatures = %q, want release/cosign", sigAuthorities(v))
			}
		},
	}, {
		name:  "unsigned: the .sig 404 and the listing",
		setup: func(name.Digest) {},
		want:  map[string]int{"HEAD manifests": 1, "GET manifests": 1, "GET tags": 1},
		check: func(t *testing.T, v *Value) {
			if v.Signed {
				t.Errorf("signed = true, want false")
			}
		},
	}, {
		name: "attested: the listed .att and its envelope are read",
		setup: func(d name.Digest) {
			signImage(t, d, k)
			attachAtt(t, d, dsseSign(t, k, statementJSON(t, "v1", "x", d.DigestStr(), slsaV1, slsa1Predicate)))
		},
		want: map[string]int{"HEAD manifests": 1, "GET manifests": 2, "GET blobs": 1, "GET tags": 1},
		check: func(t *testing.T, v *Value) {
			if len(v.Attestations) != 1 || v.Attestations[0].PredicateType != slsaV1 {
				t.Errorf("attestations = %+v, want one %s", v.Attestations, slsaV1)
			}
		},
	}, {
		name: "bundle referrer: the listed fallback tag, the bundle manifest and blob are read",
		setup: func(d name.Digest) {
			signImage(t, d, k)
			attachKeyBundle(t, d, k, statementJSON(t, "v1", "x", d.DigestStr(), cosignSignPredicate, map[string]any{}), cosignSignPredicate)
		},
		want: map[string]int{"HEAD manifests": 1, "GET manifests": 3, "GET blobs": 1, "GET tags": 1},
		check: func(t *testing.T, v *Value) {
			if sigAuthorities(v) != "release/bundle,release/cosign" {
				t.Errorf("signatures = %q, want release/bundle,release/cosign", sigAuthorities(v))
			}
		},
	}, {
		name: "unsigned SBOM: the listed .sbom is read",
		setup: func(d name.Digest) {
			signImage(t, d, k)
			attachSBOMTag(t, d, "text/spdx+json", sbom)
		},
		want: map[string]int{"HEAD manifests": 1, "GET manifests": 2, "GET tags": 1},
		check: func(t *testing.T, v *Value) {
			if len(v.SBOM.Unverified) != 1 || v.SBOM.Unverified[0].Format != "spdx" {
				t.Errorf("sbom.unverified = %+v, want one spdx", v.SBOM.Unverified)
			}
		},
	}}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tag := fmt.Sprintf("v%d", i)
			d := e.push(t, repo, tag)
			tc.setup(d)
			s := newService(t, e, auth)
			e.resetRequests()
			v := verifyOne(t, s, e.host+"/"+repo+":"+tag)
			if got := e.resetRequests(); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("registry requests = %v, want %v", got, tc.want)
			}
			tc.check(t, v)
		})
	}
}

// TestDigestTagsIgnoredLast: a registry that ignores the listing's last parameter answers
// with a full page of other tags; nothing is concluded from it, every tag is read as without
// the listing (the attestation is found), and the registry is not asked to list again.
func TestDigestTagsIgnoredLast(t *testing.T) {
	e := newEnvWrapped(t, true, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			q := r.URL.Query()
			q.Del("last")
			r.URL.RawQuery = q.Encode()
			next.ServeHTTP(w, r)
		})
	})
	k := newKey(t, "ecdsa")
	auth := keyAuthorityCfg("release", k)
	const repo = "unlisted/app"
	for i := range 12 { // more tags before sha256-… than a page holds
		e.push(t, repo, fmt.Sprintf("a%02d", i))
	}
	e.resetRequests()
	verifyOne(t, newService(t, e, auth), e.host+"/"+repo+":a00")
	if got := e.resetRequests()["GET tags"]; got != 1 {
		t.Fatalf("first image: %d listings, want 1 (a useless page)", got)
	}
	// Remembered: no listing; .sig, .att (+ envelope), .sbom (404), referrers.
	want := map[string]int{"HEAD manifests": 1, "GET manifests": 3, "GET blobs": 1, "GET referrers": 1}
	for i := range 2 {
		tag := fmt.Sprintf("v%d", i)
		d := e.push(t, repo, tag)
		signImage(t, d, k)
		attachAtt(t, d, dsseSign(t, k, statementJSON(t, "v1", "x", d.DigestStr(), slsaV1, slsa1Predicate)))
		e.resetRequests()
		v := verifyOne(t, newService(t, e, auth), e.host+"/"+repo+":"+tag)
		if got := e.resetRequests(); !reflect.DeepEqual(got, want) {
			t.Errorf("image %d: registry requests = %v, want %v", i, got, want)
		}
		if sigAuthorities(v) != "release/cosign" || len(v.Attestations) != 1 {
			t.Errorf("image %d: signatures %q, attestations %+v; want release/cosign and one attestation", i, sigAuthorities(v), v.Attestations)
		}
	}
}
