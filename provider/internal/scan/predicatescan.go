package scan

import (
	"encoding/json"
	"slices"
	"unsafe"

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
	r := predicateReader{s: s}
	var seen uint64
	return s.Object(func(key []byte) bool {
		switch string(key) {
		case "scanner":
			return jsonpass.Once(&seen, 0) && r.scanner(p)
		case "metadata":
			return jsonpass.Once(&seen, 1) && scanCosignMetadata(s, &p.Metadata)
		}
		return s.Unknown(key, cosignVulnFields)
	})
}

// predicateReader is one read of a cosign vuln predicate: its scanner, and the buffer the
// strings it keeps are copied into, one allocation for all of them rather than one each (a
// report's strings are read and dropped together). The buffer is only ever appended to, so a
// string handed out never changes (when it grows, the strings already out keep the old array);
// and it is never the text's own buffer, which the text's reader may reuse.
type predicateReader struct {
	s    *jsonpass.Scanner
	strs []byte
	// lists backs the lists of strings read.
	lists []string
}

// firstStrs is the buffer's first size: a report of a few findings fits.
const firstStrs = 1 << 10

// str reads a string value into the buffer.
func (r *predicateReader) str() (string, bool) {
	if r.strs == nil {
		r.strs = make([]byte, 0, firstStrs)
	}
	start := len(r.strs)
	b, ok := r.s.AppendString(r.strs)
	if !ok {
		return "", false
	}
	r.strs = b
	return r.since(start), true
}

// copied is b copied into the buffer.
func (r *predicateReader) copied(b []byte) string {
	if r.strs == nil {
		r.strs = make([]byte, 0, firstStrs)
	}
	start := len(r.strs)
	r.strs = append(r.strs, b...)
	return r.since(start)
}

// since is the string of the buffer's bytes from start on.
func (r *predicateReader) since(start int) string {
	if len(r.strs) == start {
		return ""
	}
	return unsafe.String(&r.strs[start], len(r.strs)-start) //nolint:gosec // G103: bytes before len(r.strs) are never written again (predicateReader)
}

// scanString reads a string field (null leaves it as it is, as in encoding/json).
func (r *predicateReader) scanString(out *string) bool {
	if r.s.Null() {
		return true
	}
	v, ok := r.str()
	*out = v
	return ok
}

// scanStrings reads a list of strings (null: nil; a null element is left to encoding/json).
// The lists share one backing array, each capped at its length (appending to one copies it).
func (r *predicateReader) scanStrings(out *[]string) bool {
	if r.s.Null() {
		*out = nil
		return true
	}
	start := len(r.lists)
	ok := r.s.Array(func() bool {
		v, ok := r.str()
		r.lists = append(grown(r.lists), v)
		return ok
	})
	if len(r.lists) == start {
		*out = []string{}
	} else {
		*out = r.lists[start:len(r.lists):len(r.lists)]
	}
	return ok
}

func (r *predicateReader) scanner(p *cosignVuln) bool {
	s := r.s
	if s.Null() {
		return true
	}
	sc := &p.Scanner
	var seen uint64
	return s.Object(func(key []byte) bool {
		switch string(key) {
		case "uri":
			return jsonpass.Once(&seen, 0) && r.scanString(&sc.URI)
		case "version":
			return jsonpass.Once(&seen, 1) && r.scanString(&sc.Version)
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
					return jsonpass.Once(&dbSeen, 0) && r.scanString(&sc.DB.URI)
				case "version":
					return jsonpass.Once(&dbSeen, 1) && r.scanString(&sc.DB.Version)
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
			return r.report(sc.Result)
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

// report reads a Trivy report; any field of another format answers false.
func (r *predicateReader) report(d *reportDoc) bool {
	s := r.s
	var seen uint64
	t := &d.trivyReport
	return s.Object(func(key []byte) bool {
		switch string(key) {
		case "SchemaVersion":
			return jsonpass.Once(&seen, 0) && scanUnmarshaler(s, &t.SchemaVersion)
		case "Trivy":
			if !jsonpass.Once(&seen, 1) {
				return false
			}
			if s.Null() {
				return true
			}
			t.Trivy = new(trivyVersion)
			var vSeen uint64
			return s.Object(func(key []byte) bool {
				if string(key) == "Version" {
					return jsonpass.Once(&vSeen, 0) && r.scanString(&t.Trivy.Version)
				}
				return s.Unknown(key, trivyVersionFields)
			})
		case "CreatedAt":
			return jsonpass.Once(&seen, 2) && scanUnmarshaler(s, &t.CreatedAt)
		case "ArtifactName":
			return jsonpass.Once(&seen, 3) && scanUnmarshaler(s, &t.ArtifactName)
		case "Metadata":
			return jsonpass.Once(&seen, 4) && r.metadata(&t.Metadata)
		case "Results":
			if !jsonpass.Once(&seen, 5) {
				return false
			}
			if s.Null() {
				return true
			}
			t.Results = []*trivyResult{}
			return s.Array(func() bool {
				res := new(trivyResult)
				t.Results = append(grown(t.Results), res)
				return r.result(res)
			})
		}
		return s.Unknown(key, reportDocFields)
	})
}

func (r *predicateReader) metadata(m *trivyMetadata) bool {
	s := r.s
	if s.Null() {
		return true
	}
	var seen uint64
	return s.Object(func(key []byte) bool {
		switch string(key) {
		case "ImageID":
			return jsonpass.Once(&seen, 0) && r.scanString(&m.ImageID)
		case "RepoDigests":
			return jsonpass.Once(&seen, 1) && r.scanStrings(&m.RepoDigests)
		}
		return s.Unknown(key, trivyMetadataFields)
	})
}

func (r *predicateReader) result(res *trivyResult) bool {
	s := r.s
	var seen uint64
	return s.Object(func(key []byte) bool {
		switch string(key) {
		case "Target":
			return jsonpass.Once(&seen, 0) && r.scanString(&res.Target)
		case "Vulnerabilities":
			if !jsonpass.Once(&seen, 1) {
				return false
			}
			if s.Null() {
				return true
			}
			res.Vulnerabilities = []trivyVuln{}
			return s.Array(func() bool {
				res.Vulnerabilities = append(grown(res.Vulnerabilities), trivyVuln{})
				return r.vuln(&res.Vulnerabilities[len(res.Vulnerabilities)-1])
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
						return jsonpass.Once(&mSeen, 0) && r.scanString(&m.Type)
					case "Finding":
						return jsonpass.Once(&mSeen, 1) && !s.Null() && r.vuln(&m.Finding)
					}
					return s.Unknown(key, trivyModifiedFields)
				})
				res.Modified = append(grown(res.Modified), m)
				return ok
			})
		}
		return s.Unknown(key, trivyResultFields)
	})
}

func (r *predicateReader) vuln(v *trivyVuln) bool {
	s := r.s
	var seen uint64
	return s.Object(func(key []byte) bool {
		switch string(key) {
		case "VulnerabilityID":
			return jsonpass.Once(&seen, 0) && r.scanString(&v.VulnerabilityID)
		case "VendorIDs":
			return jsonpass.Once(&seen, 1) && r.scanStrings(&v.VendorIDs)
		case "PkgName":
			return jsonpass.Once(&seen, 2) && r.scanString(&v.PkgName)
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
					return jsonpass.Once(&pSeen, 0) && r.scanString(&v.PkgIdentifier.PURL)
				}
				return s.Unknown(key, trivyPkgIDFields)
			})
		case "InstalledVersion":
			return jsonpass.Once(&seen, 4) && r.scanString(&v.InstalledVersion)
		case "FixedVersion":
			return jsonpass.Once(&seen, 5) && r.scanString(&v.FixedVersion)
		case "Status":
			return jsonpass.Once(&seen, 6) && r.scanString(&v.Status)
		case "Severity":
			return jsonpass.Once(&seen, 7) && r.scanString(&v.Severity)
		case "SeveritySource":
			return jsonpass.Once(&seen, 8) && r.scanString(&v.SeveritySource)
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
				v.VendorSeverity[r.copied(key)] = n // a repeated key: the last wins, as in encoding/json
				return ok
			})
		}
		return s.Unknown(key, trivyVulnFields)
	})
}

// grown is l with room for one more element, at least 4 when it has none: a list grows
// 4, 8, 16… rather than 1, 2, 4…, sparing the copies of the small lists reports are full of.
func grown[T any](l []T) []T {
	if len(l) < cap(l) {
		return l
	}
	return slices.Grow(l, max(4, len(l)))
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
