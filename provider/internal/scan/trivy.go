package scan

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"time"

	"github.com/imagetrust/imagetrust/provider/internal/jsonpass"
)

// trivyReport is the subset of Trivy's JSON report (SchemaVersion 2) the scan value needs.
type trivyReport struct {
	SchemaVersion seenInt        `json:"SchemaVersion"`
	Trivy         *trivyVersion  `json:"Trivy"`
	CreatedAt     flexTime       `json:"CreatedAt"`
	ArtifactName  seenString     `json:"ArtifactName"`
	Metadata      trivyMetadata  `json:"Metadata"`
	Results       []*trivyResult `json:"Results"`
}

type trivyVersion struct {
	Version string `json:"Version"`
}

type trivyMetadata struct {
	ImageID     string   `json:"ImageID"`
	RepoDigests []string `json:"RepoDigests"`
}

type trivyResult struct {
	Target          string      `json:"Target"`
	Vulnerabilities []trivyVuln `json:"Vulnerabilities"`
	// Findings the scanner suppressed (--show-suppressed). They are counted again here: a
	// suppression is honoured only from a trusted VEX authority.
	Modified []trivyModified `json:"ExperimentalModifiedFindings"`
}

type trivyModified struct {
	Type    string    `json:"Type"`
	Finding trivyVuln `json:"Finding"`
}

type trivyVuln struct {
	VulnerabilityID string   `json:"VulnerabilityID"`
	VendorIDs       []string `json:"VendorIDs"`
	PkgName         string   `json:"PkgName"`
	PkgIdentifier   struct {
		PURL string `json:"PURL"`
	} `json:"PkgIdentifier"`
	InstalledVersion string         `json:"InstalledVersion"`
	FixedVersion     string         `json:"FixedVersion"`
	Status           string         `json:"Status"`
	Severity         string         `json:"Severity"`
	SeveritySource   string         `json:"SeveritySource"`
	VendorSeverity   vendorSeverity `json:"VendorSeverity"`
}

// vendorSeverity is a finding's VendorSeverity, each vendor's severity (trivy-db: 0 UNKNOWN …
// 4 CRITICAL), kept as its JSON object's text, checked to decode into a map[string]int. Every
// Trivy finding carries one, and it is read only for a finding without a Severity, which
// reports seldom have: a map per finding (two allocations and its keys' copies) was built for
// nothing. Decoded, it is exactly the map a map[string]int field would hold (null clears it,
// a repeated VendorSeverity key merges into it, a repeated vendor's last value wins).
type vendorSeverity []byte

// UnmarshalJSON keeps a copy of the object's text, once it decodes into a map[string]int.
func (v *vendorSeverity) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*v = nil
		return nil
	}
	if *v == nil && intObject(b) { // the usual object, checked in one pass
		*v = bytes.Clone(b) // b is the decoder's text, which its caller may reuse
		return nil
	}
	m, err := vendorSeverity(b).decode()
	if err != nil {
		return err
	}
	if *v == nil {
		*v = bytes.Clone(b)
		return nil
	}
	// A second VendorSeverity: merged, as encoding/json merges into a map.
	merged, err := v.decode()
	if err != nil {
		return err
	}
	maps.Copy(merged, m)
	out, err := json.Marshal(merged)
	*v = out
	return err
}

// decode is the map the text holds.
func (v vendorSeverity) decode() (map[string]int, error) {
	m := map[string]int{}
	return m, json.Unmarshal(v, &m)
}

// of is vendor's severity number, if the object names it.
func (v vendorSeverity) of(vendor string) (int, bool) {
	if v == nil {
		return 0, false
	}
	m, err := v.decode()
	n, ok := m[vendor]
	return n, ok && err == nil
}

func (v *trivyVuln) finding() Finding {
	sev := ParseSeverity(v.Severity)
	if v.Severity == "" {
		// Older reports give only the vendors' severities (trivy-db: 0 UNKNOWN … 4 CRITICAL);
		// the severity source's is the one Trivy shows.
		if n, ok := v.VendorSeverity.of(v.SeveritySource); ok && n >= 0 && n < len(Severities) {
			sev = Severities[len(Severities)-1-n]
		}
	}
	return Finding{
		ID: v.VulnerabilityID, Aliases: v.VendorIDs, Severity: sev,
		Package: v.PkgName, PURL: v.PkgIdentifier.PURL,
		InstalledVersion: v.InstalledVersion, FixedVersion: v.FixedVersion,
		Status: normaliseFixStatus(v.Status),
	}
}

// isTrivy sniffs a Trivy JSON report: SchemaVersion and Results (or ArtifactName) at the top.
func isTrivy(p *probe) bool { return bool(p.SchemaVersion) && bool(p.Results || p.ArtifactName) }

// DecodeTrivy reads a Trivy JSON report (SchemaVersion 2).
func DecodeTrivy(raw []byte, lim Limits) (*Report, error) {
	var r trivyReport
	if err := strictish(raw, &r); err != nil {
		return nil, malformed("trivy", "", err)
	}
	return r.report(lim)
}

// report normalises a decoded Trivy report.
func (r *trivyReport) report(lim Limits) (*Report, error) {
	const format = "trivy"
	lim = lim.withDefaults()
	if r.SchemaVersion.N != 2 {
		return nil, malformedf(format, "SchemaVersion", "is %d, only 2 is understood", r.SchemaVersion.N)
	}
	out := &Report{Format: format, ScannedAt: r.CreatedAt.Time, Scanner: Scanner{Name: "trivy"}}
	if r.Trivy != nil {
		out.Scanner.Version = r.Trivy.Version
	}
	for _, rd := range r.Metadata.RepoDigests {
		if _, d, ok := strings.Cut(rd, "@"); ok {
			out.Digests = append(out.Digests, d)
		}
	}
	n := 0
	for _, res := range r.Results {
		if res != nil {
			n += len(res.Vulnerabilities) + len(res.Modified)
		}
	}
	if n > 0 {
		out.Findings = make([]Finding, 0, min(n, lim.ReportFindings+1))
	}
	for i, res := range r.Results {
		if res == nil {
			continue
		}
		for j := range res.Vulnerabilities {
			v := &res.Vulnerabilities[j]
			if v.VulnerabilityID == "" {
				return nil, malformedf(format, fmt.Sprintf("Results[%d].Vulnerabilities[%d].VulnerabilityID", i, j), "is empty")
			}
			out.Findings = append(out.Findings, v.finding())
		}
		for j := range res.Modified {
			m := &res.Modified[j]
			if m.Type != "" && m.Type != "vulnerability" {
				continue
			}
			if m.Finding.VulnerabilityID == "" {
				return nil, malformedf(format, fmt.Sprintf("Results[%d].ExperimentalModifiedFindings[%d].Finding.VulnerabilityID", i, j), "is empty")
			}
			out.Findings = append(out.Findings, m.Finding.finding())
		}
		if len(out.Findings) > lim.ReportFindings {
			return nil, &TooLargeError{What: "trivy report findings", Size: int64(len(out.Findings)), Limit: int64(lim.ReportFindings)}
		}
	}
	out.Findings = dedupe(out.Findings)
	return out, nil
}

// flexTime reads an RFC 3339 string, a Unix-seconds number (Trivy before v0.31 wrote
// CreatedAt that way), or null / "" (zero). The zero time 0001-01-01T00:00:00Z is zero.
type flexTime struct{ time.Time }

func (t *flexTime) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || string(b) == "null" {
		return nil
	}
	if b[0] == '"' {
		// A string of printable ASCII without escapes is its bytes; any other is read by
		// encoding/json.
		var s string
		if raw, ok := jsonpass.New(b).Plain(); ok && len(raw) == len(b)-2 {
			// The usual RFC 3339 time is read from the bytes themselves: UnmarshalText parses
			// as time.Parse(time.RFC3339Nano) does, without a string copy; what it refuses
			// (stricter about the layout) goes to time.Parse as before.
			var v time.Time
			if v.UnmarshalText(raw) == nil {
				t.setTime(v)
				return nil
			}
			s = string(raw)
		} else {
			var u string
			if err := json.Unmarshal(b, &u); err != nil {
				return err
			}
			s = u
		}
		if s == "" {
			return nil
		}
		v, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return fmt.Errorf("time %q is not RFC 3339", s)
		}
		t.setTime(v)
		return nil
	}
	n, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return fmt.Errorf("time %s is neither RFC 3339 nor Unix seconds", b)
	}
	if n > 0 {
		t.Time = time.Unix(n, 0).UTC()
	}
	return nil
}

// setTime sets t to v, the zero time 0001-01-01T00:00:00Z (or any of year 1 or before) as
// zero.
func (t *flexTime) setTime(v time.Time) {
	t.Time = v
	if v.Year() <= 1 {
		t.Time = time.Time{}
	}
}

// strictish decodes JSON into v, tolerating unknown fields (reports grow fields every release)
// but not trailing data (json.Unmarshal refuses it).
func strictish(raw []byte, v any) error { return json.Unmarshal(raw, v) }
