package scan

import (
	"encoding/json"
	"fmt"
	"strconv"
)

// reportDoc is scanner.result of a cosign vuln predicate decoded in the same json.Unmarshal
// as the predicate: the top-level fields of every report format it may carry (Trivy JSON,
// Grype JSON, SARIF 2.1.0; their field names do not overlap), so the report is read once
// instead of being kept raw, sniffed and decoded again.
type reportDoc struct {
	trivyReport
	grypeDocument
	sarifLog
}

// report detects the format as DecodeReport does and normalises the report. decided is false
// when the decoded fields cannot tell the format exactly: an absent list and a null one decode
// alike, and the sniff treats a null Results, matches or runs as present. The caller then reads
// the raw report with DecodeReport.
func (d *reportDoc) report(lim Limits) (r *Report, decided bool, err error) {
	format := ""
	// Each nil list is tried as absent and as present (null); the format is decided when
	// every combination gives the same one.
	for combo := range 8 {
		results := d.Results != nil || combo&1 != 0
		matches := d.Matches != nil || combo&2 != 0
		runs := d.Runs != nil || combo&4 != 0
		f := sniff(d.SchemaVersion.Set, results, d.ArtifactName.Set, matches, d.Version.Set, runs)
		if combo == 0 {
			format = f
		} else if f != format {
			return nil, false, nil
		}
	}
	switch format {
	case "trivy":
		r, err = d.trivyReport.report(lim)
	case "grype":
		r, err = d.grypeDocument.report(lim)
	case "sarif":
		r, err = d.sarifLog.report(lim)
	default:
		err = ErrUnknownFormat
	}
	return r, true, err
}

// sniff is DecodeReport's format detection over which top-level fields are present: Trivy
// (SchemaVersion and Results or ArtifactName), else Grype (matches), else SARIF (version and
// runs); "" when none.
func sniff(schemaVersion, results, artifactName, matches, version, runs bool) string {
	switch {
	case schemaVersion && (results || artifactName):
		return "trivy"
	case matches:
		return "grype"
	case version && runs:
		return "sarif"
	}
	return ""
}

// seenString is a string field that records whether it was present, even as null.
type seenString struct {
	Set bool
	S   string
}

func (s *seenString) UnmarshalJSON(b []byte) error {
	s.Set = true
	if string(b) == "null" {
		return nil
	}
	if len(b) < 2 || b[0] != '"' {
		return fmt.Errorf("%s is not a string", b)
	}
	return json.Unmarshal(b, &s.S)
}

// seenInt is an integer field that records whether it was present, even as null.
type seenInt struct {
	Set bool
	N   int
}

func (n *seenInt) UnmarshalJSON(b []byte) error {
	n.Set = true
	if string(b) == "null" {
		return nil
	}
	v, err := strconv.Atoi(string(b))
	if err != nil {
		return fmt.Errorf("%s is not an integer", b)
	}
	n.N = v
	return nil
}
