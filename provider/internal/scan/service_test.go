package scan

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/imagetrust/imagetrust/provider/internal/signing"
)

func TestScanSignedAttestations(t *testing.T) {
	e := newScanEnv(t, envOptions{})
	vuln := sample(t, "trivy-image-alpine-310.json")
	at := time.Now().Add(-2 * time.Hour).UTC().Truncate(time.Second)

	tagScheme := e.push(t, "acme/api", "1.0")
	e.attest(t, tagScheme, e.ci, PredicateCosignVuln, cosignVulnPredicate(t, vuln, at))
	bundled := e.push(t, "acme/web", "1.0")
	if err := signing.AttestBundle(bundled, e.ci.Signer, e.ci.Public, PredicateCosignVuln, cosignVulnPredicate(t, vuln, at)); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{tagScheme.String(), bundled.String(), e.host + "/acme/api:1.0"} {
		v := e.scanOne(t, d)
		if !v.Scanned || v.Source != SourceAttestation || v.Authority != "ci" || !v.Signed || v.Format != "cosign-vuln/trivy" {
			t.Fatalf("%s: %s", d, dump(v))
		}
		if v.Counts.Of("MEDIUM") != 4 || v.FixableCounts.Of("MEDIUM") != 4 || v.FindingsTotal != 4 || v.ScannedAt != at.Format(time.RFC3339) || v.Scanner.Name != "trivy" {
			t.Errorf("%s: counts %v fixable %v total %d at %s scanner %+v", d, v.Counts, v.FixableCounts, v.FindingsTotal, v.ScannedAt, v.Scanner)
		}
		f := v.Findings[0]
		if f.ID == "" || f.Severity != Medium || f.Package == "" || f.FixedVersion == "" {
			t.Errorf("%s: first finding %+v", d, f)
		}
	}
	if v := e.scanOne(t, e.push(t, "acme/none", "1").String()); v.Scanned || v.Reason != ReasonNoScan {
		t.Errorf("image without a scan: %s", dump(v))
	}
}

// TestScanAttacks: each attack leaves the image without a trusted scan, or with the worse one.
func TestScanAttacks(t *testing.T) {
	e := newScanEnv(t, envOptions{})
	vuln := sample(t, "trivy-image-alpine-310.json")
	now := time.Now().UTC().Truncate(time.Second)

	t.Run("untrusted key", func(t *testing.T) {
		d := e.push(t, "attack/untrusted", "1")
		e.attest(t, d, e.rogue, PredicateCosignVuln, cosignVulnPredicate(t, []byte(cleanTrivy), now.Add(-time.Hour)))
		v := e.scanOne(t, d.String())
		if v.Scanned || v.Reason != ReasonNoTrustedScan || len(v.Rejected) == 0 || !strings.Contains(v.Rejected[0].Reason, "no configured authority") {
			t.Errorf("%s", dump(v))
		}
	})
	t.Run("scan signed by the VEX authority", func(t *testing.T) {
		d := e.push(t, "attack/vexsigned", "1")
		e.attest(t, d, e.vendor, PredicateCosignVuln, cosignVulnPredicate(t, []byte(cleanTrivy), now.Add(-time.Hour)))
		v := e.scanOne(t, d.String())
		if v.Scanned || v.Reason != ReasonNoTrustedScan || !strings.Contains(dump(v.Rejected), "signed by vendor, not a scanner authority") {
			t.Errorf("%s", dump(v))
		}
	})
	t.Run("subject is another image", func(t *testing.T) {
		d := e.push(t, "attack/subject", "1")
		other := e.push(t, "attack/subject", "2")
		st, err := signing.Statement(other, PredicateCosignVuln, cosignVulnPredicate(t, []byte(cleanTrivy), now.Add(-time.Hour)))
		if err != nil {
			t.Fatal(err)
		}
		env, err := signing.Envelope(st, e.ci.Signer)
		if err != nil {
			t.Fatal(err)
		}
		if err := signing.AttachEnvelope(d, env); err != nil {
			t.Fatal(err)
		}
		v := e.scanOne(t, d.String())
		if v.Scanned || !strings.Contains(dump(v.Rejected), "not this image") {
			t.Errorf("%s", dump(v))
		}
	})
	t.Run("old clean scan re-pushed after a newer vulnerable one", func(t *testing.T) {
		d := e.push(t, "attack/replay", "1")
		e.attest(t, d, e.ci, PredicateCosignVuln, cosignVulnPredicate(t, []byte(cleanTrivy), now.Add(-72*time.Hour)))
		e.attest(t, d, e.ci, PredicateCosignVuln, cosignVulnPredicate(t, vuln, now.Add(-time.Hour)))
		e.attest(t, d, e.ci, PredicateCosignVuln, cosignVulnPredicate(t, []byte(cleanTrivy), now.Add(-72*time.Hour)))
		v := e.scanOne(t, d.String())
		if !v.Scanned || v.Counts.Of("MEDIUM") != 4 || v.ScansConsidered != 3 || v.ScannedAt != now.Add(-time.Hour).Format(time.RFC3339) {
			t.Errorf("chose %s (counts %v of %d scans)", v.ScannedAt, v.Counts, v.ScansConsidered)
		}
	})
	t.Run("scan from the future", func(t *testing.T) {
		d := e.push(t, "attack/future", "1")
		e.attest(t, d, e.ci, PredicateCosignVuln, cosignVulnPredicate(t, []byte(cleanTrivy), now.Add(24*time.Hour)))
		v := e.scanOne(t, d.String())
		if v.Scanned || v.Reason != ReasonUnverifiable || !strings.Contains(dump(v.Rejected), "in the future") {
			t.Errorf("%s", dump(v))
		}
	})
	t.Run("malformed report", func(t *testing.T) {
		d := e.push(t, "attack/malformed", "1")
		e.attest(t, d, e.ci, PredicateCosignVuln, cosignVulnPredicate(t, []byte(`{"SchemaVersion":2,"Results":[{"Vulnerabilities":[{"PkgName":"x"}]}]}`), now.Add(-time.Hour)))
		v := e.scanOne(t, d.String())
		if v.Scanned || v.Reason != ReasonUnverifiable || !strings.Contains(dump(v.Rejected), "VulnerabilityID: is empty") {
			t.Errorf("%s", dump(v))
		}
	})
}

func TestScanLimits(t *testing.T) {
	e := newScanEnv(t, envOptions{limits: Limits{ReportBytes: 8 << 10, Findings: 1}})
	now := time.Now().UTC()
	t.Run("oversized", func(t *testing.T) {
		d := e.push(t, "limits/big", "1")
		e.attest(t, d, e.ci, PredicateCosignVuln, cosignVulnPredicate(t, sample(t, "trivy-image-alpine-310.json"), now.Add(-time.Hour)))
		v := e.scanOne(t, d.String())
		if v.Scanned || v.Reason != ReasonUnverifiable || !strings.Contains(dump(v.Rejected), "too large") {
			t.Errorf("%s", dump(v))
		}
	})
	t.Run("truncated", func(t *testing.T) {
		d := e.push(t, "limits/many", "1")
		e.attest(t, d, e.ci, PredicateCosignVuln, cosignVulnPredicate(t, sample(t, "grype-image.json"), now.Add(-time.Hour)))
		v := e.scanOne(t, d.String())
		if !v.Scanned || !v.FindingsTruncated || v.FindingsTotal != 2 || len(v.Findings) != 1 || v.Findings[0].Severity != Critical || v.Counts.Of("LOW") != 1 {
			t.Errorf("%s", dump(v))
		}
	})
}

func dump(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
