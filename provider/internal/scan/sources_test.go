package scan

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/imagetrust/imagetrust/provider/internal/signing"
	"github.com/imagetrust/imagetrust/provider/internal/signing/signingtest"
)

// vexFor is an OpenVEX document about CVE-2019-1549 in libcrypto1.1 of image d.
func vexFor(d name.Digest, status, timestamp string) json.RawMessage {
	return json.RawMessage(`{"@context":"https://openvex.dev/ns/v0.2.0","@id":"https://example.com/vex/1","author":"vendor",
	 "timestamp":"` + timestamp + `","version":1,"statements":[{"vulnerability":{"name":"CVE-2019-1549"},
	 "products":[{"@id":"pkg:oci/` + d.Context().RepositoryStr()[strings.LastIndex(d.Context().RepositoryStr(), "/")+1:] + `@` + strings.Replace(d.DigestStr(), ":", "%3A", 1) + `",
	   "subcomponents":[{"@id":"pkg:apk/alpine/libcrypto1.1"}]}],
	 "status":"` + status + `","justification":"vulnerable_code_not_in_execute_path"}]}`)
}

func TestScanVEX(t *testing.T) {
	e := newScanEnv(t, envOptions{})
	vuln := sample(t, "trivy-image-alpine-310.json")
	at := time.Now().Add(-time.Hour).UTC()
	libcrypto := func(v *Value) *Finding {
		for i := range v.Findings {
			if v.Findings[i].ID == "CVE-2019-1549" && v.Findings[i].Package == "libcrypto1.1" {
				return &v.Findings[i]
			}
		}
		t.Fatalf("no libcrypto1.1 finding in %s", dump(v))
		return nil
	}
	for _, tc := range []struct {
		name       string
		signer     func(e *scanEnv) *signingtest.Key
		status     string
		suppressed bool
		rejected   string
	}{
		{"trusted not_affected", func(e *scanEnv) *signingtest.Key { return e.vendor }, "not_affected", true, ""},
		{"trusted under_investigation", func(e *scanEnv) *signingtest.Key { return e.vendor }, "under_investigation", false, ""},
		{"untrusted authority", func(e *scanEnv) *signingtest.Key { return e.rogue }, "not_affected", false, "no configured authority verified it"},
		{"scanner authority is no VEX authority", func(e *scanEnv) *signingtest.Key { return e.ci }, "not_affected", false, "OpenVEX signed by ci, not a VEX authority"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := e.push(t, "vex/"+strings.ToLower(strings.ReplaceAll(tc.name, " ", "-")), "1")
			e.attest(t, d, e.ci, PredicateCosignVuln, cosignVulnPredicate(t, vuln, at))
			e.attest(t, d, tc.signer(e), PredicateOpenVEXV020, vexFor(d, tc.status, "2026-01-01T00:00:00Z"))
			v := e.scanOne(t, d.String())
			f := libcrypto(v)
			if f.Suppressed() != tc.suppressed || (tc.suppressed && (f.VEX.Authority != "vendor" || v.SuppressedCount != 1)) {
				t.Errorf("suppressed = %v (vex %+v, count %d), want %v", f.Suppressed(), f.VEX, v.SuppressedCount, tc.suppressed)
			}
			if tc.rejected != "" && !strings.Contains(dump(v.Rejected), tc.rejected) {
				t.Errorf("rejected = %s, want %q", dump(v.Rejected), tc.rejected)
			}
			// Other packages are never suppressed.
			for _, g := range v.Findings {
				if g.Package != "libcrypto1.1" && g.VEX != nil {
					t.Errorf("VEX applied to %s", g.Package)
				}
			}
		})
	}
	t.Run("latest statement wins", func(t *testing.T) {
		d := e.push(t, "vex/latest", "1")
		e.attest(t, d, e.ci, PredicateCosignVuln, cosignVulnPredicate(t, vuln, at))
		e.attest(t, d, e.vendor, PredicateOpenVEXV020, vexFor(d, "affected", "2026-03-01T00:00:00Z"))
		e.attest(t, d, e.vendor, PredicateOpenVEXV020, vexFor(d, "not_affected", "2026-01-01T00:00:00Z"))
		if f := libcrypto(e.scanOne(t, d.String())); f.Suppressed() || f.VEX.Status != "affected" {
			t.Errorf("vex = %+v, want the later affected", f.VEX)
		}
	})
}

func TestScanSARIFReferrers(t *testing.T) {
	e := newScanEnv(t, envOptions{})
	sarif := sample(t, "trivy-image-alpine-310.sarif.json")
	created := time.Now().Add(-time.Hour).UTC().Truncate(time.Second).Format(time.RFC3339)

	unsigned := e.push(t, "sarif/unsigned", "1")
	if _, err := signing.AttachReferrer(unsigned, sarifArtifactType, sarif, map[string]string{annCreated: created}); err != nil {
		t.Fatal(err)
	}
	v := e.scanOne(t, unsigned.String())
	if v.Scanned || v.Reason != ReasonNoTrustedScan || !strings.Contains(dump(v.Rejected), "is not signed by a scanner authority") {
		t.Errorf("unsigned SARIF referrer: %s", dump(v))
	}

	for _, tc := range []struct {
		name   string
		signer func(e *scanEnv) *signingtest.Key
		ok     bool
	}{{"scanner", func(e *scanEnv) *signingtest.Key { return e.ci }, true}, {"vex authority", func(e *scanEnv) *signingtest.Key { return e.vendor }, false}, {"rogue", func(e *scanEnv) *signingtest.Key { return e.rogue }, false}} {
		t.Run(tc.name, func(t *testing.T) {
			d := e.push(t, "sarif/"+strings.ReplaceAll(tc.name, " ", "-"), "1")
			r, err := signing.AttachReferrer(d, sarifArtifactType, sarif, map[string]string{annCreated: created})
			if err != nil {
				t.Fatal(err)
			}
			if err := signing.Sign(r, tc.signer(e).Signer); err != nil {
				t.Fatal(err)
			}
			v := e.scanOne(t, d.String())
			if !tc.ok {
				if v.Scanned || v.Reason != ReasonNoTrustedScan {
					t.Errorf("SARIF signed by %s: %s", tc.name, dump(v))
				}
				return
			}
			if !v.Scanned || v.Source != SourceSARIF || v.Format != "sarif/trivy" || v.Authority != "ci" || v.ScannedAt != created || v.Counts.Of("MEDIUM") != 4 {
				t.Errorf("signed SARIF referrer: %s", dump(v))
			}
		})
	}
}

func TestScanTrivyOperator(t *testing.T) {
	e := newScanEnv(t, envOptions{operator: true})
	d := e.push(t, "op/app", "1")
	other := e.push(t, "op/app", "2")
	doc := func(digest string) []byte {
		return []byte(`{"kind":"VulnerabilityReport","metadata":{"name":"r","namespace":"apps"},"report":{"registry":{"server":"` + e.host + `"},
		  "artifact":{"repository":"op/app","digest":"` + digest + `"},"scanner":{"name":"Trivy","version":"0.60.0"},"updateTimestamp":"` +
			time.Now().Add(-time.Hour).UTC().Format(time.RFC3339) + `","vulnerabilities":[{"vulnerabilityID":"CVE-2024-9","resource":"zlib","installedVersion":"1.2","severity":"CRITICAL"}]}}`)
	}
	key, r, ok, err := DecodeOperatorReport(doc(other.DigestStr()), Limits{})
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	e.op.Set("apps/r", key, r)
	if v := e.scanOne(t, d.String()); v.Scanned || v.Reason != ReasonNoScan {
		t.Errorf("operator report for another digest counted: %s", dump(v))
	}
	key, r, _, _ = DecodeOperatorReport(doc(d.DigestStr()), Limits{})
	e.op.Set("apps/r", key, r)
	v := e.scanOne(t, d.String())
	if !v.Scanned || v.Source != SourceTrivyOperator || v.Authority != AuthorityTrivyOperator || v.Signed || v.Counts.Of("CRITICAL") != 1 {
		t.Errorf("operator report: %s", dump(v))
	}
}

func TestScanIndexFromPlatforms(t *testing.T) {
	e := newScanEnv(t, envOptions{})
	at := time.Now().Add(-3 * time.Hour).UTC().Truncate(time.Second)
	idx, kids := e.pushIndex(t, "multi/app", "1")
	e.attest(t, kids[0], e.ci, PredicateCosignVuln, cosignVulnPredicate(t, []byte(cleanTrivy), at.Add(time.Hour)))
	v := e.scanOne(t, idx.String())
	if v.Scanned || v.Reason != ReasonNoScan || len(v.Platforms) != 2 || !v.Platforms[0].Scanned || v.Platforms[1].Platform != "linux/arm64/v8" {
		t.Errorf("one platform scanned: %s", dump(v))
	}
	e.attest(t, kids[1], e.ci, PredicateCosignVuln, cosignVulnPredicate(t, sample(t, "grype-image.json"), at))
	// The first answer was scanned=false; without a cache it is looked up again.
	v = e.scanOne(t, e.host+"/multi/app:1")
	if !v.Scanned || v.Counts.Of("CRITICAL") != 1 || v.ScannedAt != at.Format(time.RFC3339) || v.Digest != idx.DigestStr() || len(v.Platforms) != 2 {
		t.Errorf("both platforms scanned: %s", dump(v))
	}
	// An index with a scan of its own is answered from it.
	e.attest(t, idx, e.ci, PredicateCosignVuln, cosignVulnPredicate(t, []byte(cleanTrivy), at))
	if v := e.scanOne(t, idx.String()); !v.Scanned || len(v.Platforms) != 0 || v.Counts.Of("CRITICAL") != 0 {
		t.Errorf("index with its own scan: %s", dump(v))
	}
}
