package scan

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

var (
	digestA = "sha256:" + strings.Repeat("a", 64)
	digestB = "sha256:" + strings.Repeat("b", 64)
	subject = Subject{Repository: "ghcr.io/acme/debian", Digest: digestA}
	t0      = time.Date(2026, 8, 20, 10, 0, 0, 0, time.UTC)
)

func report(at time.Time, fs ...Finding) *Report {
	return &Report{Format: "cosign-vuln/trivy", Scanner: Scanner{Name: "trivy"}, ScannedAt: at, Findings: fs}
}

func signedCand(auth string, signedAt time.Time, r *Report) Candidate {
	return Candidate{Source: SourceAttestation, Authority: auth, Trusted: true, Signed: true, SignedAt: signedAt, Report: r}
}

var (
	high     = Finding{ID: "CVE-2024-0001", Severity: High, Package: "openssl", PURL: "pkg:deb/debian/openssl@3.0.1", InstalledVersion: "3.0.1", FixedVersion: "3.0.2", Status: "fixed"}
	critical = Finding{ID: "CVE-2024-0002", Severity: Critical, Package: "bash", PURL: "pkg:deb/debian/bash@5.1", InstalledVersion: "5.1", Status: "affected"}
	low      = Finding{ID: "CVE-2024-0003", Severity: Low, Package: "zlib", InstalledVersion: "1.2"}
)

func choose(cands []Candidate, vex []*VEXDocument) *Value {
	return Choose("ghcr.io/acme/debian@"+digestA, subject, cands, vex, Choice{Now: t0.Add(time.Hour), ClockSkew: time.Minute})
}

func TestChooseNewestTrustedScanWins(t *testing.T) {
	oldClean := signedCand("ci", t0.Add(-48*time.Hour+time.Second), report(t0.Add(-48*time.Hour)))
	newDirty := signedCand("ci", t0.Add(time.Second), report(t0, high))
	// The old clean scan re-signed (re-pushed) after the newer one: its own time stays old.
	rePushed := signedCand("ci", t0.Add(30*time.Minute), report(t0.Add(-48*time.Hour)))
	for _, order := range [][]Candidate{{oldClean, newDirty, rePushed}, {rePushed, newDirty, oldClean}} {
		v := choose(order, nil)
		if !v.Scanned || v.ScannedAt != "2026-08-20T10:00:00Z" || v.Counts.Of("HIGH") != 1 || v.ScansConsidered != 3 {
			t.Errorf("chosen = scanned %v at %s counts %v considered %d, want the newer dirty scan of 3", v.Scanned, v.ScannedAt, v.Counts, v.ScansConsidered)
		}
	}
	// Same time: the worse report wins.
	v := choose([]Candidate{signedCand("a", time.Time{}, report(t0)), signedCand("b", time.Time{}, report(t0, critical))}, nil)
	if v.Authority != "b" || v.Counts.Of("CRITICAL") != 1 {
		t.Errorf("tie: authority %s counts %v, want b with the CRITICAL", v.Authority, v.Counts)
	}
}

func TestChooseRejects(t *testing.T) {
	// Scan time after the log time: refused.
	v := choose([]Candidate{signedCand("ci", t0, report(t0.Add(10*time.Minute)))}, nil)
	if v.Scanned || v.Reason != ReasonUnverifiable || len(v.Rejected) != 1 || !strings.Contains(v.Rejected[0].Reason, "later than its signature's log time") {
		t.Errorf("future scan: %+v", v)
	}
	// Within the skew: accepted.
	if v := choose([]Candidate{signedCand("ci", t0, report(t0.Add(30*time.Second)))}, nil); !v.Scanned {
		t.Errorf("scan within the skew refused: %+v", v.Rejected)
	}
	// In the future of now.
	v = choose([]Candidate{signedCand("ci", time.Time{}, report(t0.Add(48*time.Hour)))}, nil)
	if v.Scanned || !strings.Contains(v.Rejected[0].Reason, "in the future") {
		t.Errorf("scan in the future: %+v", v)
	}
	// Untrusted only.
	v = choose([]Candidate{{Source: SourceSARIF, Report: report(t0)}}, nil)
	if v.Scanned || v.Reason != ReasonNoTrustedScan || v.Rejected[0].Kind != SourceSARIF {
		t.Errorf("unsigned SARIF: %+v", v)
	}
	// Nothing.
	if v := choose(nil, nil); v.Scanned || v.Reason != ReasonNoScan || v.Counts.Of("CRITICAL") != 0 || v.Findings == nil {
		t.Errorf("no scan: %+v", v)
	}
	// A trusted, malformed scan next to an untrusted one: unverifiable.
	v = choose([]Candidate{{Source: SourceAttestation, Authority: "ci", Trusted: true, Signed: true, Err: &MalformedError{Format: "trivy", Err: errBad}}, {Source: SourceSARIF}}, nil)
	if v.Reason != ReasonUnverifiable {
		t.Errorf("malformed trusted scan: reason %q", v.Reason)
	}
}

var errBad = errors.New("unexpected end of JSON input")

func TestChooseSignedBeatsOperator(t *testing.T) {
	op := Candidate{Source: SourceTrivyOperator, Authority: AuthorityTrivyOperator, Trusted: true, Report: report(t0.Add(time.Minute))}
	att := signedCand("ci", time.Time{}, report(t0.Add(-time.Hour), high))
	v := choose([]Candidate{op, att}, nil)
	if v.Authority != "ci" || !v.Signed {
		t.Errorf("chosen %s signed %v, want the signed attestation", v.Authority, v.Signed)
	}
	v = choose([]Candidate{op}, nil)
	if v.Authority != AuthorityTrivyOperator || v.Signed || !v.Scanned {
		t.Errorf("operator only: %+v", v)
	}
}

func TestChooseCapsWorstFirst(t *testing.T) {
	var fs []Finding
	for i := 0; i < 30; i++ {
		fs = append(fs, Finding{ID: "CVE-L-" + string(rune('a'+i)), Severity: Low, Package: "p"})
	}
	fs = append(fs, critical, high)
	v := Choose("img", subject, []Candidate{signedCand("ci", time.Time{}, report(t0, fs...))}, nil, Choice{Now: t0, Limits: Limits{Findings: 5}})
	if !v.FindingsTruncated || v.FindingsTotal != 32 || len(v.Findings) != 5 {
		t.Fatalf("truncated %v total %d listed %d, want true 32 5", v.FindingsTruncated, v.FindingsTotal, len(v.Findings))
	}
	if v.Findings[0].ID != critical.ID || v.Findings[1].ID != high.ID || v.Counts.Of("LOW") != 30 || v.FixableCounts.Of("HIGH") != 1 || v.FixableCounts.Of("CRITICAL") != 0 {
		t.Errorf("first findings %s, %s; counts %v fixable %v", v.Findings[0].ID, v.Findings[1].ID, v.Counts, v.FixableCounts)
	}
}

// TestChooseOwnedReport: a report Choose does not own (an operator report every lookup of the
// image shares) keeps its findings as they were — their order, purls, statuses, no VEX note —
// while one decoded for its candidate alone is sorted and annotated in place; the values are
// the same.
func TestChooseOwnedReport(t *testing.T) {
	vex := vexDoc(t, "vendor", `{"@context":"https://openvex.dev/ns/v0.2.0","statements":[{"vulnerability":"CVE-2024-0001","products":["pkg:oci/debian"],"status":"not_affected","justification":"component_not_present"}]}`)
	findings := func() []Finding {
		h := high
		h.PURL += "?arch=amd64"
		low := Finding{ID: "CVE-2024-0003", Severity: Low, Package: "zlib", PURL: "pkg:deb/debian/zlib@1.2?arch=amd64", InstalledVersion: "1.2", FixedVersion: "1.3", Status: "fixed"}
		dup := low
		dup.PURL, dup.Severity = "pkg:deb/debian/zlib@1.2?arch=arm64", Medium // the same once the qualifiers go
		return []Finding{low, h, critical, dup}
	}
	shared := report(t0, findings()...)
	op := Candidate{Source: SourceTrivyOperator, Authority: AuthorityTrivyOperator, Trusted: true, Report: shared}
	var values [][]byte
	for range 2 {
		v := Choose("img", subject, []Candidate{op}, []*VEXDocument{vex}, Choice{Now: t0.Add(time.Hour)})
		if !reflect.DeepEqual(shared.Findings, findings()) {
			t.Fatalf("Choose changed a report it does not own:\n got %+v\nwant %+v", shared.Findings, findings())
		}
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		values = append(values, b)
	}
	owned := signedCand("ci", time.Time{}, report(t0, findings()...))
	owned.Source, owned.Authority, owned.Signed, owned.ownsReport = SourceTrivyOperator, AuthorityTrivyOperator, false, true
	v := Choose("img", subject, []Candidate{owned}, []*VEXDocument{vex}, Choice{Now: t0.Add(time.Hour)})
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	for i, w := range values {
		if !bytes.Equal(b, w) {
			t.Errorf("owned report's value\n%s\nshared report's value %d\n%s", b, i, w)
		}
	}
	if v.FindingsTotal != 3 || v.SuppressedCount != 1 || v.Findings[0].ID != critical.ID || v.Findings[1].Severity != Medium || v.Findings[1].PURL != "pkg:deb/debian/zlib@1.2" {
		t.Errorf("value %s", b)
	}
}

func vexDoc(t *testing.T, auth, doc string) *VEXDocument {
	t.Helper()
	d, err := DecodeOpenVEX([]byte(doc), auth, time.Time{}, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestApplyVEX(t *testing.T) {
	notAffected := vexDoc(t, "vendor", `{"@context":"https://openvex.dev/ns/v0.2.0","timestamp":"2026-08-01T00:00:00Z","statements":[
	  {"vulnerability":{"name":"CVE-2024-0001"},"products":[{"@id":"pkg:oci/debian@`+strings.Replace(digestA, ":", "%3A", 1)+`?repository_url=ghcr.io/acme/debian","subcomponents":[{"@id":"pkg:deb/debian/openssl"}]}],
	   "status":"not_affected","justification":"vulnerable_code_not_in_execute_path"}]}`)
	v := choose([]Candidate{signedCand("ci", time.Time{}, report(t0, high, critical))}, []*VEXDocument{notAffected})
	if v.SuppressedCount != 1 || v.Findings[0].ID != critical.ID || v.Findings[1].VEX == nil || v.Findings[1].VEX.Authority != "vendor" || v.Findings[1].VEX.Justification != "vulnerable_code_not_in_execute_path" {
		t.Errorf("suppressed %d, findings %+v", v.SuppressedCount, v.Findings)
	}

	for _, tc := range []struct {
		name, product, status string
		suppressed            bool
	}{
		{"other digest", `{"@id":"pkg:oci/debian@` + strings.Replace(digestB, ":", "%3A", 1) + `"}`, "not_affected", false},
		{"other repository", `{"@id":"pkg:oci/debian?repository_url=docker.io/library/debian"}`, "not_affected", false},
		{"other name", `{"@id":"pkg:oci/alpine"}`, "not_affected", false},
		{"other package", `{"@id":"pkg:oci/debian","subcomponents":[{"@id":"pkg:deb/debian/libssl"}]}`, "not_affected", false},
		{"other package version", `{"@id":"pkg:deb/debian/openssl@3.0.0"}`, "fixed", false},
		{"under investigation", `{"@id":"pkg:oci/debian"}`, "under_investigation", false},
		{"affected", `{"@id":"pkg:oci/debian"}`, "affected", false},
		{"image without digest", `{"@id":"pkg:oci/debian"}`, "not_affected", true},
		{"reference", `{"@id":"ghcr.io/acme/debian@` + digestA + `"}`, "fixed", true},
		{"package purl", `{"@id":"pkg:deb/debian/openssl@3.0.1"}`, "fixed", true},
	} {
		doc := vexDoc(t, "vendor", `{"@context":"https://openvex.dev/ns/v0.2.0","statements":[{"vulnerability":{"name":"CVE-2024-0001"},"products":[`+tc.product+`],"status":"`+tc.status+`"}]}`)
		fs := []Finding{high}
		ApplyVEX(fs, subject, []*VEXDocument{doc})
		if fs[0].Suppressed() != tc.suppressed {
			t.Errorf("%s: suppressed = %v, want %v (vex %+v)", tc.name, fs[0].Suppressed(), tc.suppressed, fs[0].VEX)
		}
	}

	// The latest statement wins, in either order; at the same time, not suppressing wins.
	older := vexDoc(t, "vendor", `{"@context":"https://openvex.dev/ns/v0.2.0","statements":[{"timestamp":"2026-01-01T00:00:00Z","vulnerability":"CVE-2024-0001","products":["pkg:oci/debian"],"status":"not_affected","justification":"component_not_present"}]}`)
	newer := vexDoc(t, "vendor", `{"@context":"https://openvex.dev/ns/v0.2.0","statements":[{"timestamp":"2026-02-01T00:00:00Z","vulnerability":"CVE-2024-0001","products":["pkg:oci/debian"],"status":"affected"}]}`)
	for _, docs := range [][]*VEXDocument{{older, newer}, {newer, older}} {
		fs := []Finding{high}
		ApplyVEX(fs, subject, docs)
		if fs[0].Suppressed() || fs[0].VEX.Status != "affected" {
			t.Errorf("latest statement: %+v", fs[0].VEX)
		}
	}
	same := vexDoc(t, "other", `{"@context":"https://openvex.dev/ns/v0.2.0","statements":[{"timestamp":"2026-02-01T00:00:00Z","vulnerability":"CVE-2024-0001","products":["pkg:oci/debian"],"status":"fixed"}]}`)
	for _, docs := range [][]*VEXDocument{{same, newer}, {newer, same}} {
		fs := []Finding{high}
		ApplyVEX(fs, subject, docs)
		if fs[0].Suppressed() {
			t.Errorf("tie: suppressed by %+v", fs[0].VEX)
		}
	}
}

func TestDecodeOpenVEXSamples(t *testing.T) {
	d, err := DecodeOpenVEX(sample(t, "openvex-oci-product.json"), "aqua", time.Time{}, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	bash := Finding{ID: "CVE-2022-3715", Severity: High, Package: "bash", PURL: "pkg:deb/debian/bash@5.1-2"}
	fs := []Finding{bash}
	ApplyVEX(fs, Subject{Repository: "docker.io/library/debian", Digest: digestA}, []*VEXDocument{d})
	if !fs[0].Suppressed() || fs[0].VEX.Timestamp != "2023-01-17T01:07:16Z" {
		t.Errorf("oci sample: %+v", fs[0].VEX)
	}
	d, err = DecodeOpenVEX(sample(t, "openvex-under-investigation.json"), "doe", time.Time{}, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	fs = []Finding{{ID: "CVE-9876-54321", Severity: High, Package: "bash", PURL: "pkg:apk/wolfi/bash@1.0.0"}}
	ApplyVEX(fs, subject, []*VEXDocument{d})
	if fs[0].Suppressed() || fs[0].VEX == nil || fs[0].VEX.Status != "under_investigation" {
		t.Errorf("under_investigation: %+v", fs[0].VEX)
	}
	d, err = DecodeOpenVEX(sample(t, "openvex-purl-product.json"), "aqua", time.Time{}, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	fs = []Finding{{ID: "CVE-2022-23628", Severity: High, Package: "github.com/open-policy-agent/opa", PURL: "pkg:golang/github.com/open-policy-agent/opa@v0.35.0"}}
	ApplyVEX(fs, subject, []*VEXDocument{d})
	if fs[0].Suppressed() {
		t.Errorf("a Go module product is not this image: %+v", fs[0].VEX)
	}
	for _, bad := range []string{
		`{"@context":"https://example.com","statements":[]}`,
		`{"@context":"https://openvex.dev/ns/v0.2.0","statements":[{"vulnerability":"CVE-1","products":["pkg:oci/x"],"status":"maybe"}]}`,
		`{"@context":"https://openvex.dev/ns/v0.2.0","statements":[{"vulnerability":"CVE-1","products":[],"status":"fixed"}]}`,
		`{"@context":"https://openvex.dev/ns/v0.2.0","statements":[{"vulnerability":{},"products":["pkg:oci/x"],"status":"fixed"}]}`,
	} {
		if _, err := DecodeOpenVEX([]byte(bad), "a", time.Time{}, Limits{}); err == nil {
			t.Errorf("DecodeOpenVEX(%s) = nil error", bad)
		}
	}
}

func TestCombinePlatforms(t *testing.T) {
	amd := choose([]Candidate{signedCand("ci", time.Time{}, report(t0, high))}, nil)
	arm := choose([]Candidate{signedCand("ci", time.Time{}, report(t0.Add(-time.Hour), high, critical))}, nil)
	v := CombinePlatforms("img", digestB, []PlatformScan{{"linux/amd64", amd}, {"linux/arm64", arm}}, Limits{})
	if !v.Scanned || v.Counts.Of("CRITICAL") != 1 || v.Counts.Of("HIGH") != 1 || v.ScannedAt != "2026-08-20T09:00:00Z" || len(v.Platforms) != 2 || v.Platforms[1].Platform != "linux/arm64" {
		t.Errorf("combined: scanned %v counts %v at %s platforms %d", v.Scanned, v.Counts, v.ScannedAt, len(v.Platforms))
	}
	missing := choose(nil, nil)
	v = CombinePlatforms("img", digestB, []PlatformScan{{"linux/amd64", amd}, {"linux/arm64", missing}}, Limits{})
	if v.Scanned || v.Reason != ReasonNoScan {
		t.Errorf("one platform unscanned: scanned %v reason %q", v.Scanned, v.Reason)
	}
	if v := CombinePlatforms("img", digestB, nil, Limits{}); v.Scanned {
		t.Error("no platforms: scanned")
	}
}
