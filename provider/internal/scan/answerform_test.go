package scan

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestAnswerForm: an answer's findings carry their purl without qualifiers and subpath (two
// findings that differed only there are one), no status "fixed" beside a fixed version, and
// every other field as the report said; a platform of an index is listed without findings
// (the index lists their union) but with its counts; an empty scanner database is left out.
func TestAnswerForm(t *testing.T) {
	amdHigh := high
	amdHigh.PURL = "pkg:deb/debian/openssl@3.0.1?arch=amd64&distro=debian-12"
	armHigh := high
	armHigh.PURL = "pkg:deb/debian/openssl@3.0.1?arch=arm64#sub/path"
	crit := critical
	crit.PURL = "pkg:deb/debian/bash@5.1?arch=amd64"
	statusOnly := Finding{ID: "CVE-2024-0009", Severity: Medium, Package: "tar", InstalledVersion: "1.34", Status: "fixed"}
	v := choose([]Candidate{signedCand("ci", time.Time{}, report(t0, amdHigh, armHigh, crit, statusOnly, low))}, nil)
	if v.FindingsTotal != 4 || v.Counts["HIGH"] != 1 || v.FixableCounts["HIGH"] != 1 || v.FixableCounts["MEDIUM"] != 1 {
		t.Fatalf("total %d counts %v fixable %v, want the arch variants counted once", v.FindingsTotal, v.Counts, v.FixableCounts)
	}
	want := map[string]Finding{
		"CVE-2024-0001": {ID: "CVE-2024-0001", Severity: High, Package: "openssl", PURL: "pkg:deb/debian/openssl@3.0.1", InstalledVersion: "3.0.1", FixedVersion: "3.0.2"},
		"CVE-2024-0002": {ID: "CVE-2024-0002", Severity: Critical, Package: "bash", PURL: "pkg:deb/debian/bash@5.1", InstalledVersion: "5.1", Status: "affected"},
		"CVE-2024-0009": statusOnly,
		"CVE-2024-0003": low,
	}
	for _, f := range v.Findings {
		w, ok := want[f.ID]
		if !ok || f.ID != w.ID || f.Severity != w.Severity || f.Package != w.Package || f.PURL != w.PURL ||
			f.InstalledVersion != w.InstalledVersion || f.FixedVersion != w.FixedVersion || f.Status != w.Status || f.VEX != nil {
			t.Errorf("finding %+v, want %+v", f, w)
		}
		delete(want, f.ID)
	}
	if len(want) != 0 {
		t.Errorf("findings missing: %v", want)
	}
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if s := string(raw); strings.Contains(s, `"db"`) || strings.Contains(s, "arch=") || !strings.Contains(s, `"findings":[`) {
		t.Errorf("answer %s", s)
	}

	arm := choose([]Candidate{signedCand("ci", time.Time{}, report(t0, armHigh, crit))}, nil)
	amd := choose([]Candidate{signedCand("ci", time.Time{}, report(t0, amdHigh))}, nil)
	idx := CombinePlatforms("img", digestB, []PlatformScan{{"linux/amd64", amd}, {"linux/arm64", arm}}, Limits{})
	if len(idx.Findings) != 2 || idx.FindingsTotal != 2 || idx.Counts["HIGH"] != 1 || idx.Counts["CRITICAL"] != 1 {
		t.Errorf("index findings %+v total %d counts %v, want the union of 2", idx.Findings, idx.FindingsTotal, idx.Counts)
	}
	for _, p := range idx.Platforms {
		if p.Findings != nil || p.FindingsTotal == 0 || p.Counts["HIGH"] != 1 {
			t.Errorf("platform %s: findings %v total %d counts %v", p.Platform, p.Findings, p.FindingsTotal, p.Counts)
		}
	}
	if len(arm.Findings) != 2 || len(amd.Findings) != 1 {
		t.Error("combining platforms changed the platforms' own values")
	}
	raw, err = json.Marshal(idx)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(raw), `"findings"`); n != 1 {
		t.Errorf("index answer lists findings %d times, want once: %s", n, raw)
	}
	if e, err := encodeValue(idx, &interner{}); err != nil || string(e.appendTo(nil)) != string(raw) {
		t.Errorf("encoded index answer %v:\n got %s\nwant %s", err, e.appendTo(nil), raw)
	}
}
