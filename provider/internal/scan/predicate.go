package scan

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// Predicate types of vulnerability scans and VEX documents.
const (
	PredicateCosignVuln  = "https://cosign.sigstore.dev/attestation/vuln/v1"
	PredicateInTotoV01   = "https://in-toto.io/attestation/vulns/v0.1"
	PredicateInTotoV02   = "https://in-toto.io/attestation/vulns/v0.2"
	PredicateOpenVEX     = "https://openvex.dev/ns"
	PredicateOpenVEXV020 = "https://openvex.dev/ns/v0.2.0"
)

// IsScanPredicate reports whether a predicate type carries a vulnerability scan.
func IsScanPredicate(t string) bool {
	return t == PredicateCosignVuln || t == PredicateInTotoV01 || t == PredicateInTotoV02
}

// IsVEXPredicate reports whether a predicate type carries an OpenVEX document.
func IsVEXPredicate(t string) bool {
	return t == PredicateOpenVEX || strings.HasPrefix(t, PredicateOpenVEX+"/")
}

// DecodeReport reads a scanner's own report, detecting its format: Trivy JSON, Grype JSON or
// SARIF 2.1.0 (Trivy or Grype).
func DecodeReport(raw []byte, lim Limits) (*Report, error) {
	lim = lim.withDefaults()
	if int64(len(raw)) > lim.ReportBytes {
		return nil, &TooLargeError{What: "scan report", Size: int64(len(raw)), Limit: lim.ReportBytes}
	}
	var p probe
	if err := json.Unmarshal(raw, &p); err != nil {
		return nil, malformed("scan", "", err)
	}
	switch {
	case isTrivy(&p):
		return DecodeTrivy(raw, lim)
	case isGrype(&p):
		return DecodeGrype(raw, lim)
	case isSARIF(&p):
		return DecodeSARIF(raw, lim)
	}
	return nil, ErrUnknownFormat
}

// probe notes which top-level fields a report has (present, even as null), without keeping
// their content.
type probe struct {
	SchemaVersion, Results, ArtifactName presence
	Matches                              presence `json:"matches"`
	Version                              presence `json:"version"`
	Runs                                 presence `json:"runs"`
}

// presence records that a field was there and skips its value.
type presence bool

func (p *presence) UnmarshalJSON([]byte) error {
	*p = true
	return nil
}

// cosignScanner and cosignMetadata are the parts of cosign's vuln predicate
// (COSIGN_VULN_ATTESTATION_SPEC.md) besides the scanner's result.
type cosignScanner struct {
	URI     string `json:"uri"`
	Version string `json:"version"`
	DB      struct {
		URI     string `json:"uri"`
		Version string `json:"version"`
	} `json:"db"`
}

type cosignMetadata struct {
	ScanStartedOn  flexTime `json:"scanStartedOn"`
	ScanFinishedOn flexTime `json:"scanFinishedOn"`
}

// cosignVuln is cosign's vuln predicate with its result decoded in the same pass.
type cosignVuln struct {
	Scanner struct {
		cosignScanner
		Result *reportDoc `json:"result"`
	} `json:"scanner"`
	Metadata cosignMetadata `json:"metadata"`
}

// cosignVulnRaw keeps the result raw, for DecodeReport.
type cosignVulnRaw struct {
	Scanner struct {
		cosignScanner
		Result json.RawMessage `json:"result"`
	} `json:"scanner"`
	Metadata cosignMetadata `json:"metadata"`
}

// DecodePredicate reads the predicate of a verified scan attestation.
func DecodePredicate(predicateType string, raw []byte, lim Limits) (*Report, error) {
	lim = lim.withDefaults()
	if int64(len(raw)) > lim.ReportBytes {
		return nil, &TooLargeError{What: "scan predicate", Size: int64(len(raw)), Limit: lim.ReportBytes}
	}
	switch predicateType {
	case PredicateCosignVuln:
		return decodeCosignVuln(raw, lim)
	case PredicateInTotoV01, PredicateInTotoV02:
		return decodeInTotoVulns(predicateType, raw, lim)
	}
	return nil, fmt.Errorf("predicate type %q is not a vulnerability scan", predicateType)
}

// decodeCosignVuln reads the predicate and its report in one json.Unmarshal. When that fails,
// or the decoded fields cannot tell the report's format exactly, it reads the predicate again
// with the report kept raw and DecodeReport: the answer (or the error) is the same either way,
// only the common case is cheaper.
func decodeCosignVuln(raw []byte, lim Limits) (*Report, error) {
	var p cosignVuln
	if err := json.Unmarshal(raw, &p); err == nil {
		return decodedCosignVuln(&p, func() json.RawMessage { return raw }, lim)
	}
	return decodeCosignVulnRaw(raw, lim)
}

// decodedCosignVuln finishes a cosign vuln predicate decoded without error (here or in its
// statement's decode, see Service.predicateTarget); when the decoded fields cannot tell the
// report's format exactly, it reads the raw predicate again. lim has its defaults.
func decodedCosignVuln(p *cosignVuln, raw func() json.RawMessage, lim Limits) (*Report, error) {
	if p.Scanner.Result == nil {
		return nil, errEmptyResult()
	}
	inner, decided, err := p.Scanner.Result.report(lim)
	if decided {
		if err != nil {
			return nil, fmt.Errorf("cosign vuln predicate scanner.result: %w", err)
		}
		return cosignReport(inner, &p.Scanner.cosignScanner, &p.Metadata), nil
	}
	return decodeCosignVulnRaw(raw(), lim)
}

// decodeCosignVulnRaw reads the predicate with its result kept raw, then the result with
// DecodeReport.
func decodeCosignVulnRaw(raw []byte, lim Limits) (*Report, error) {
	const format = "cosign-vuln"
	var pr cosignVulnRaw
	if err := strictish(raw, &pr); err != nil {
		return nil, malformed(format, "", err)
	}
	res := bytes.TrimSpace(pr.Scanner.Result)
	if len(res) == 0 || string(res) == "null" {
		return nil, errEmptyResult()
	}
	inner, err := DecodeReport(res, lim)
	if err != nil {
		return nil, fmt.Errorf("cosign vuln predicate scanner.result: %w", err)
	}
	return cosignReport(inner, &pr.Scanner.cosignScanner, &pr.Metadata), nil
}

// errEmptyResult: an empty result cannot be told from a scan that never ran, so it is no scan
// at all.
func errEmptyResult() error {
	return malformedf("cosign-vuln", "scanner.result", "is empty; a clean scan carries the scanner's report with no findings")
}

// cosignReport completes the report of a cosign vuln predicate's result with the predicate's
// scanner and times.
func cosignReport(inner *Report, sc *cosignScanner, md *cosignMetadata) *Report {
	inner.Format = cosignFormat(inner.Format)
	if name, ver := scannerFromURI(sc.URI); name != "" {
		inner.Scanner.Name = name
		if inner.Scanner.Version == "" {
			inner.Scanner.Version = ver
		}
	}
	if sc.Version != "" {
		inner.Scanner.Version = sc.Version
	}
	if sc.DB.Version != "" {
		inner.Scanner.DB.Version = sc.DB.Version
	}
	switch {
	case !md.ScanFinishedOn.IsZero():
		inner.ScannedAt = md.ScanFinishedOn.Time
	case !md.ScanStartedOn.IsZero():
		inner.ScannedAt = md.ScanStartedOn.Time
	}
	return inner
}

// cosignFormat is the format of a cosign vuln predicate whose result is in format f.
func cosignFormat(f string) string {
	switch f {
	case "trivy":
		return "cosign-vuln/trivy"
	case "grype":
		return "cosign-vuln/grype"
	}
	return "cosign-vuln/" + f
}

// scannerFromURI reads "pkg:github/aquasecurity/trivy@v0.50.0" as ("trivy", "v0.50.0").
func scannerFromURI(uri string) (string, string) {
	if !strings.HasPrefix(uri, "pkg:") {
		return "", ""
	}
	rest := strings.TrimPrefix(uri, "pkg:")
	rest, ver, _ := strings.Cut(rest, "@")
	if i := strings.LastIndex(rest, "/"); i >= 0 {
		rest = rest[i+1:]
	}
	return strings.ToLower(rest), ver
}

// inTotoVulns is the in-toto vulns predicate, v0.1 (result[].vulnerability) and v0.2
// (result[] flat).
type inTotoVulns struct {
	Scanner struct {
		URI     string `json:"uri"`
		Version string `json:"version"`
		DB      struct {
			URI        string   `json:"uri"`
			Version    string   `json:"version"`
			LastUpdate flexTime `json:"lastUpdate"`
		} `json:"db"`
		Result []inTotoResult `json:"result"`
	} `json:"scanner"`
	Metadata struct {
		ScanStartedOn  flexTime `json:"scanStartedOn"`
		ScanFinishedOn flexTime `json:"scanFinishedOn"`
	} `json:"metadata"`
}

type inTotoResult struct {
	inTotoVuln
	Vulnerability *inTotoVuln `json:"vulnerability"`
}

type inTotoVuln struct {
	ID       string `json:"id"`
	Severity []struct {
		Method string `json:"method"`
		Score  string `json:"score"`
	} `json:"severity"`
	Annotations []map[string]any `json:"annotations"`
}

func decodeInTotoVulns(predicateType string, raw []byte, lim Limits) (*Report, error) {
	format := inTotoFormat(predicateType)
	var p inTotoVulns
	if err := strictish(raw, &p); err != nil {
		return nil, malformed(format, "", err)
	}
	return inTotoReport(predicateType, &p, lim)
}

// inTotoFormat names the format of an in-toto vulns predicate type: "in-toto-vulns/v0.1".
func inTotoFormat(predicateType string) string {
	return "in-toto-vulns/" + predicateType[strings.LastIndex(predicateType, "/")+1:]
}

// inTotoReport checks and normalises a decoded in-toto vulns predicate (decoded by
// decodeInTotoVulns or in its statement's own decode, see Service.predicateTarget). lim has
// its defaults.
func inTotoReport(predicateType string, p *inTotoVulns, lim Limits) (*Report, error) {
	format := inTotoFormat(predicateType)
	if p.Scanner.URI == "" {
		return nil, malformedf(format, "scanner.uri", "is required")
	}
	if p.Scanner.Result == nil {
		return nil, malformedf(format, "scanner.result", "is missing; a clean scan carries an empty list")
	}
	if len(p.Scanner.Result) > lim.ReportFindings {
		return nil, &TooLargeError{What: format + " results", Size: int64(len(p.Scanner.Result)), Limit: int64(lim.ReportFindings)}
	}
	out := &Report{Format: format, Scanner: Scanner{Version: p.Scanner.Version, DB: DB{Version: p.Scanner.DB.Version}}}
	out.Scanner.Name, _ = scannerFromURI(p.Scanner.URI)
	if out.Scanner.Name == "" {
		out.Scanner.Name = p.Scanner.URI
	}
	if !p.Scanner.DB.LastUpdate.IsZero() {
		t := p.Scanner.DB.LastUpdate.Time
		out.Scanner.DB.UpdatedAt = &t
	}
	out.ScannedAt = p.Metadata.ScanFinishedOn.Time
	if out.ScannedAt.IsZero() {
		out.ScannedAt = p.Metadata.ScanStartedOn.Time
	}
	for i := range p.Scanner.Result {
		v := &p.Scanner.Result[i].inTotoVuln
		if p.Scanner.Result[i].Vulnerability != nil {
			v = p.Scanner.Result[i].Vulnerability
		}
		if v.ID == "" {
			return nil, malformedf(format, fmt.Sprintf("scanner.result[%d].id", i), "is empty")
		}
		f := Finding{ID: v.ID, Severity: Unknown}
		for _, s := range v.Severity {
			f.Severity = worse(f.Severity, ParseSeverity(s.Score))
		}
		for _, a := range v.Annotations {
			for k, val := range a {
				s, ok := val.(string)
				if !ok {
					continue
				}
				switch strings.ToLower(k) {
				case "package", "pkgname", "package_name":
					f.Package = s
				case "purl":
					f.PURL = s
				case "installedversion", "installed_version", "version":
					f.InstalledVersion = s
				case "fixedversion", "fixed_version":
					f.FixedVersion = s
				}
			}
		}
		if f.FixedVersion != "" {
			f.Status = "fixed"
		}
		out.Findings = append(out.Findings, f)
	}
	out.Findings = dedupe(out.Findings)
	return out, nil
}
