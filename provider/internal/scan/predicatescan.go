package scan

import (
	"encoding/json"

	"github.com/imagetrust/imagetrust/provider/internal/jsonpass"
	"github.com/imagetrust/imagetrust/provider/internal/verify"
)

// The one-pass read of a cosign vuln predicate carrying a Trivy report (the form `trivy
// image --format cosign-vuln` and `cosign attest --type vuln` write): ScanPredicate fills the
// same cosignVuln json.Unmarshal fills, field for field, in the statement's own pass
// (verify.PredicateScanner), so the report is normalised by the same code either way.
// Anything else — a Grype or SARIF result, a key spelt in another case, a repeated key, a
// null where a list element or map value is, a number that is not an int — answers false,
// and the statement is decoded with encoding/json as before (FuzzCosignVulnScan holds the two
// to the same result).

var _ verify.PredicateScanner = (*cosignVuln)(nil)

// JSON names of the fields read, for jsonpass.Scanner.Unknown. reportDocFields has those of
// every format a result may hold: a Grype or SARIF field is left to encoding/json.
var (
	cosignVulnFields    = []string{"scanner", "metadata"}
	cosignScannerFields = []string{"uri", "version", "db", "result"}
	cosignDBFields      = []string{"uri", "version"}
	cosignMetaFields    = []string{"scanStartedOn", "scanFinishedOn"}
	reportDocFields     = []string{"SchemaVersion", "Trivy", "CreatedAt", "ArtifactName", "Metadata", "Results",
		"matches", "source", "descriptor", "version", "runs"}
	trivyVersionFields  = []string{"Version"}
	trivyMetadataFields = []string{"ImageID", "RepoDigests"}
	trivyResultFields   = []string{"Target", "Vulnerabilities", "ExperimentalModifiedFindings"}
	trivyModifiedFields = []string{"Type", "Finding"}
	trivyVulnFields     = []string{"VulnerabilityID", "VendorIDs", "PkgName", "PkgIdentifier", "InstalledVersion",
		"FixedVersion", "Status", "Severity", "SeveritySource", "VendorSeverity"}
	trivyPkgIDFields = []string{"PURL"}
)

// ScanPredicate reads a cosign vuln predicate (see verify.PredicateScanner).
func (p *cosignVuln) ScanPredicate(s *jsonpass.Scanner) bool {
	var seen uint64
	return s.Object(func(key []byte) bool {
		switch string(key) {
		case "scanner":
			return jsonpass.Once(&seen, 0) && p.scanScanner(s)
		case "metadata":
			return jsonpass.Once(&seen, 1) && scanCosignMetadata(s, &p.Metadata)
		}
		return s.Unknown(key, cosignVulnFields)
	})
}

func (p *cosignVuln) scanScanner(s *jsonpass.Scanner) bool {
	if s.Null() {
		return true
	}
	sc := &p.Scanner
	var seen uint64
	return s.Object(func(key []byte) bool {
		switch string(key) {
		case "uri":
			return jsonpass.Once(&seen, 0) && scanString(s, &sc.URI)
		case "version":
			return jsonpass.Once(&seen, 1) && scanString(s, &sc.Version)
		case "db":
			if !jsonpass.Once(&seen, 2) {
				return false
			}
			if s.Null() {
				return true
			}
			var dbSeen uint64
			return s.Object(func(key []byte) bool {
				switch string(key) {
				case "uri":
					return jsonpass.Once(&dbSeen, 0) && scanString(s, &sc.DB.URI)
				case "version":
					return jsonpass.Once(&dbSeen, 1) && scanString(s, &sc.DB.Version)
				}
				return s.Unknown(key, cosignDBFields)
			})
		case "result":
			if !jsonpass.Once(&seen, 3) {
				return false
			}
			if s.Null() {
				return true
			}
			sc.Result = new(reportDoc)
			return sc.Result.scan(s)
		}
		return s.Unknown(key, cosignScannerFields)
	})
}

func scanCosignMetadata(s *jsonpass.Scanner, md *cosignMetadata) bool {
	if s.Null() {
		return true
	}
	var seen uint64
	return s.Object(func(key []byte) bool {
		switch string(key) {
		case "scanStartedOn":
			return jsonpass.Once(&seen, 0) && scanUnmarshaler(s, &md.ScanStartedOn)
		case "scanFinishedOn":
			return jsonpass.Once(&seen, 1) && scanUnmarshaler(s, &md.ScanFinishedOn)
		}
		return s.Unknown(key, cosignMetaFields)
	})
}

// scan reads a Trivy report; any field of another format answers false.
func (d *reportDoc) scan(s *jsonpass.Scanner) bool {
	var seen uint64
	r := &d.trivyReport
	return s.Object(func(key []byte) bool {
		switch string(key) {
		case "SchemaVersion":
			return jsonpass.Once(&seen, 0) && scanUnmarshaler(s, &r.SchemaVersion)
		case "Trivy":
			if !jsonpass.Once(&seen, 1) {
				return false
			}
			if s.Null() {
				return true
			}
			r.Trivy = new(trivyVersion)
			var vSeen uint64
			return s.Object(func(key []byte) bool {
				if string(key) == "Version" {
					return jsonpass.Once(&vSeen, 0) && scanString(s, &r.Trivy.Version)
				}
				return s.Unknown(key, trivyVersionFields)
			})
		case "CreatedAt":
			return jsonpass.Once(&seen, 2) && scanUnmarshaler(s, &r.CreatedAt)
		case "ArtifactName":
			return jsonpass.Once(&seen, 3) && scanUnmarshaler(s, &r.ArtifactName)
		case "Metadata":
			return jsonpass.Once(&seen, 4) && scanTrivyMetadata(s, &r.Metadata)
		case "Results":
			if !jsonpass.Once(&seen, 5) {
				return false
			}
			if s.Null() {
				return true
			}
			r.Results = []*trivyResult{}
			return s.Array(func() bool {
				res := new(trivyResult)
				r.Results = append(r.Results, res)
				return res.scan(s)
			})
		}
		return s.Unknown(key, reportDocFields)
	})
}

func scanTrivyMetadata(s *jsonpass.Scanner, m *trivyMetadata) bool {
	if s.Null() {
		return true
	}
	var seen uint64
	return s.Object(func(key []byte) bool {
		switch string(key) {
		case "ImageID":
			return jsonpass.Once(&seen, 0) && scanString(s, &m.ImageID)
		case "RepoDigests":
			return jsonpass.Once(&seen, 1) && scanStrings(s, &m.RepoDigests)
		}
		return s.Unknown(key, trivyMetadataFields)
	})
}

func (res *trivyResult) scan(s *jsonpass.Scanner) bool {
	var seen uint64
	return s.Object(func(key []byte) bool {
		switch string(key) {
		case "Target":
			return jsonpass.Once(&seen, 0) && scanString(s, &res.Target)
		case "Vulnerabilities":
			if !jsonpass.Once(&seen, 1) {
				return false
			}
			if s.Null() {
				return true
			}
			res.Vulnerabilities = []trivyVuln{}
			return s.Array(func() bool {
				res.Vulnerabilities = append(res.Vulnerabilities, trivyVuln{})
				return res.Vulnerabilities[len(res.Vulnerabilities)-1].scan(s)
			})
		case "ExperimentalModifiedFindings":
			if !jsonpass.Once(&seen, 2) {
				return false
			}
			if s.Null() {
				return true
			}
			res.Modified = []trivyModified{}
			return s.Array(func() bool {
				var m trivyModified
				var mSeen uint64
				ok := s.Object(func(key []byte) bool {
					switch string(key) {
					case "Type":
						return jsonpass.Once(&mSeen, 0) && scanString(s, &m.Type)
					case "Finding":
						return jsonpass.Once(&mSeen, 1) && !s.Null() && m.Finding.scan(s)
					}
					return s.Unknown(key, trivyModifiedFields)
				})
				res.Modified = append(res.Modified, m)
				return ok
			})
		}
		return s.Unknown(key, trivyResultFields)
	})
}

func (v *trivyVuln) scan(s *jsonpass.Scanner) bool {
	var seen uint64
	return s.Object(func(key []byte) bool {
		switch string(key) {
		case "VulnerabilityID":
			return jsonpass.Once(&seen, 0) && scanString(s, &v.VulnerabilityID)
		case "VendorIDs":
			return jsonpass.Once(&seen, 1) && scanStrings(s, &v.VendorIDs)
		case "PkgName":
			return jsonpass.Once(&seen, 2) && scanString(s, &v.PkgName)
		case "PkgIdentifier":
			if !jsonpass.Once(&seen, 3) {
				return false
			}
			if s.Null() {
				return true
			}
			var pSeen uint64
			return s.Object(func(key []byte) bool {
				if string(key) == "PURL" {
					return jsonpass.Once(&pSeen, 0) && scanString(s, &v.PkgIdentifier.PURL)
				}
				return s.Unknown(key, trivyPkgIDFields)
			})
		case "InstalledVersion":
			return jsonpass.Once(&seen, 4) && scanString(s, &v.InstalledVersion)
		case "FixedVersion":
			return jsonpass.Once(&seen, 5) && scanString(s, &v.FixedVersion)
		case "Status":
			return jsonpass.Once(&seen, 6) && scanString(s, &v.Status)
		case "Severity":
			return jsonpass.Once(&seen, 7) && scanString(s, &v.Severity)
		case "SeveritySource":
			return jsonpass.Once(&seen, 8) && scanString(s, &v.SeveritySource)
		case "VendorSeverity":
			if !jsonpass.Once(&seen, 9) {
				return false
			}
			if s.Null() {
				return true
			}
			v.VendorSeverity = map[string]int{}
			return s.Object(func(key []byte) bool {
				n, ok := s.Int()
				v.VendorSeverity[string(key)] = n // a repeated key: the last wins, as in encoding/json
				return ok
			})
		}
		return s.Unknown(key, trivyVulnFields)
	})
}

// scanString reads a string field (null leaves it as it is, as in encoding/json).
func scanString(s *jsonpass.Scanner, out *string) bool {
	if s.Null() {
		return true
	}
	v, ok := s.String()
	*out = v
	return ok
}

// scanStrings reads a list of strings (null: nil; a null element is left to encoding/json).
func scanStrings(s *jsonpass.Scanner, out *[]string) bool {
	if s.Null() {
		*out = nil
		return true
	}
	l := []string{}
	ok := s.Array(func() bool {
		v, ok := s.String()
		l = append(l, v)
		return ok
	})
	*out = l
	return ok
}

// scanUnmarshaler hands a field with its own UnmarshalJSON (flexTime, seenInt, seenString)
// the value's bytes, as encoding/json does; an object or list, which each of them refuses,
// is left to encoding/json.
func scanUnmarshaler(s *jsonpass.Scanner, u json.Unmarshaler) bool {
	if c := s.Peek(); c == '{' || c == '[' {
		return false
	}
	b, ok := s.Value()
	return ok && u.UnmarshalJSON(b) == nil
}
