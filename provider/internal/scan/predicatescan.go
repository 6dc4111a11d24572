package scan

import (
	"encoding/json"
	"slices"
	"sync"
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
// strings it keeps are copied into, a few allocations for all of them rather than one each
// (a report's strings are read and dropped together). Each string is copied once, from the
// text into the buffer's free space; a full buffer is followed by a new one twice its size,
// never grown by append, which would copy every string already handed out into an array no
// string uses. Bytes handed out are never written again; and the buffer is never the text's
// own, which the text's reader may reuse.
type predicateReader struct {
	s *jsonpass.Scanner
	// strs is the current buffer: its bytes up to its length are handed out, the rest is free.
	strs []byte
	// lists backs the lists of strings read.
	lists []string
}

// firstStrs is the buffer's first size: a report of a few findings fits.
const firstStrs = 1 << 10

// free is the buffer's free space (empty, its capacity what is left), a new buffer when none
// is left.
func (r *predicateReader) free() []byte {
	if len(r.strs) == cap(r.strs) {
		r.strs = make([]byte, 0, max(firstStrs, 2*cap(r.strs)))
	}
	return r.strs[len(r.strs):len(r.strs)]
}

// str reads a string value into the buffer.
func (r *predicateReader) str() (string, bool) {
	free := r.free()
	b, ok := r.s.AppendString(free)
	switch {
	case !ok:
		return "", false
	case len(b) == 0:
		return "", true
	case cap(free) > 0 && &b[0] == &free[:1][0]: // appended in place
		r.strs = r.strs[:len(r.strs)+len(b)]
	default:
		// It did not fit: append gave it an array of its own, which it keeps (copying it into
		// a new buffer would copy it twice). The next string starts a new buffer.
		r.strs = r.strs[:len(r.strs):len(r.strs)]
	}
	return unsafe.String(&b[0], len(b)), true //nolint:gosec // G103: bytes handed out are never written again (predicateReader)
}

// copiedBytes is b (not empty) copied into the buffer, capped at its length (appending to it
// copies it).
func (r *predicateReader) copiedBytes(b []byte) []byte {
	if free := r.free(); cap(free) < len(b) {
		r.strs = make([]byte, 0, max(len(b), 2*cap(r.strs)))
	}
	start := len(r.strs)
	r.strs = append(r.strs, b...)
	return r.strs[start:len(r.strs):len(r.strs)]
}

// intObject reports whether raw is an object whose values are ints, in the form Object reads
// (json.Unmarshal decodes it into a map[string]int); anything else is left to encoding/json.
func intObject(raw []byte) bool {
	s := jsonpass.New(raw)
	return s.Object(func([]byte) bool {
		_, ok := s.Int()
		return ok
	}) && s.End()
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
// The lists share backing arrays, each list capped at its length (appending to one copies
// it). A full array is followed by one twice its size, into which only the list being read
// moves: the lists already handed out stay where they are.
func (r *predicateReader) scanStrings(out *[]string) bool {
	if r.s.Null() {
		*out = nil
		return true
	}
	start := len(r.lists)
	ok := r.s.Array(func() bool {
		v, ok := r.str()
		if len(r.lists) == cap(r.lists) {
			next := make([]string, 0, max(8, 2*cap(r.lists)))
			r.lists, start = append(next, r.lists[start:]...), 0
		}
		r.lists = append(r.lists, v)
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
			var ok bool
			res.Vulnerabilities, ok = r.vulns()
			return ok
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

// vulnScratch holds a list of vulnerabilities while it is read; the list is then copied once
// into a slice of its length. Grown in place, a list of 34 went through arrays of 4, 8, 16,
// 32 and 64 vulnerabilities of 160 bytes each (20 KB for 5 KB kept); the scratch array is
// reused by the next list and the next report.
var vulnScratch = sync.Pool{New: func() any { return new([]trivyVuln) }}

// maxScratchVulns: a scratch array that grew beyond this many vulnerabilities (an unusually
// large report) is left to the collector rather than kept for the next read.
const maxScratchVulns = 1024

// vulns reads a list of vulnerabilities (not null) into a slice of its exact length.
func (r *predicateReader) vulns() ([]trivyVuln, bool) {
	sp := vulnScratch.Get().(*[]trivyVuln)
	l := (*sp)[:0]
	ok := r.s.Array(func() bool {
		l = append(l, trivyVuln{})
		return r.vuln(&l[len(l)-1])
	})
	out := make([]trivyVuln, len(l)) // [] for an empty list, as encoding/json
	copy(out, l)
	if cap(l) <= maxScratchVulns {
		clear(l) // the scratch keeps no strings or maps of this report
		*sp = l[:0]
		vulnScratch.Put(sp)
	}
	return out, ok
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
			raw, ok := s.Value()
			if !ok || !intObject(raw) {
				return false
			}
			v.VendorSeverity = r.copiedBytes(raw)
			return true
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
