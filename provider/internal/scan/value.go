package scan

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"
	"unsafe"
)

// Reasons a value says scanned=false.
const (
	// ReasonNoScan: no scan of any kind was found for the image.
	ReasonNoScan = "no-scan"
	// ReasonNoTrustedScan: scans were found, but none verified against a scanner authority
	// (unsigned SARIF, an untrusted key, another image's subject).
	ReasonNoTrustedScan = "no-trusted-scan"
	// ReasonUnverifiable: a trusted scan was found but cannot be used: malformed, too large,
	// or its scan time is later than its signature's log time.
	ReasonUnverifiable = "unverifiable"
)

// Sources of a scan.
const (
	SourceAttestation   = "attestation"
	SourceSARIF         = "sarif-referrer"
	SourceTrivyOperator = "trivy-operator"
)

// Value is the /v1/scan answer for one image, in answer form AnswerForm (docs/scan.md).
type Value struct {
	// Form is the answer's form: always AnswerForm.
	Form     Form   `json:"form"`
	Image    string `json:"image"`
	Digest   string `json:"digest"`
	Platform string `json:"platform,omitempty"`
	Scanned  bool   `json:"scanned"`
	// Reason is set when Scanned is false: no-scan, no-trusted-scan or unverifiable.
	Reason    string   `json:"reason,omitempty"`
	Source    string   `json:"source,omitempty"`
	Format    string   `json:"format,omitempty"`
	Authority string   `json:"authority,omitempty"`
	Signed    bool     `json:"signed"`
	Scanner   *Scanner `json:"scanner,omitempty"`
	// ScannedAt is the scan's own time (RFC 3339; empty when the report does not say).
	ScannedAt string `json:"scannedAt,omitempty"`
	// SignedAt is the signature's transparency-log or timestamp-authority time, if any.
	SignedAt string `json:"signedAt,omitempty"`
	// ScansConsidered counts the trusted scans of this digest; the newest is the one reported.
	ScansConsidered int    `json:"scansConsidered"`
	Counts          Counts `json:"counts"`
	FixableCounts   Counts `json:"fixableCounts"`
	// SuppressedCount: findings a trusted VEX statement marks not_affected or fixed (counted
	// in Counts too; the constraint decides which VEX authorities it accepts).
	SuppressedCount int `json:"suppressedCount"`
	// Findings are listed in the image's own value, each as a row (Finding.MarshalJSON); a
	// platform's value in Platforms leaves them out (the index's value lists their union).
	Findings          []Finding  `json:"findings,omitzero"`
	FindingsTotal     int        `json:"findingsTotal"`
	FindingsTruncated bool       `json:"findingsTruncated"`
	Platforms         []*Value   `json:"platforms,omitempty"`
	Rejected          []Rejected `json:"rejected,omitempty"`

	// enc is the encoded answer the cache keeps (Scanned and Reason beside it); loadedAt is
	// when it was looked up.
	enc      *encoded
	loadedAt time.Time
}

// Rejected is a scan or VEX document that was found and not counted, with the reason.
type Rejected struct {
	Kind   string `json:"kind"`
	Reason string `json:"reason"`
}

const maxRejected = 16

func (v *Value) reject(kind, reason string) {
	if len(v.Rejected) < maxRejected {
		v.Rejected = append(v.Rejected, Rejected{Kind: kind, Reason: reason})
	}
}

// notScanned is a value with scanned=false.
func notScanned(image, digest, reason string) *Value {
	return &Value{Image: image, Digest: digest, Reason: reason, Findings: []Finding{}}
}

// Counts counts findings by severity, indexed by Severity.Rank. In JSON it is an object with
// every severity a key, as encoding/json writes a map (keys sorted):
// {"CRITICAL":n,"HIGH":n,"LOW":n,"MEDIUM":n,"UNKNOWN":n}. Its counts are int32 (a value's
// findings are capped far below that) so that a cached answer's Value stays small.
type Counts [len(Severities)]int32

// Of is the count of severity s (one of Severities).
func (c Counts) Of(s Severity) int { return int(c[s.Rank()]) }

// countsKeys are the severities in the order encoding/json writes a map's keys (sorted).
var countsKeys = func() []Severity {
	k := Severities
	slices.Sort(k[:])
	return k[:]
}()

// MarshalJSON writes the counts as encoding/json writes a map of every severity to its count.
func (c Counts) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, 80)
	for _, k := range countsKeys {
		b = append(b, ',', '"')
		b = append(b, k...)
		b = append(b, '"', ':')
		b = strconv.AppendInt(b, int64(c[k.Rank()]), 10)
	}
	b[0] = '{' // the first key's comma
	return append(b, '}'), nil
}

// UnmarshalJSON reads an object of severities and counts (for Go readers of the answer).
func (c *Counts) UnmarshalJSON(b []byte) error {
	var m map[string]int32
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	*c = Counts{}
	for k, n := range m {
		s := Severity(k)
		if s.Rank() == 0 && s != Unknown {
			return fmt.Errorf("counts: %q is not a severity", k)
		}
		c[s.Rank()] = n
	}
	return nil
}

// fillFindings sorts, counts and caps findings into v, each in the answer's form (see
// answerForm).
func (v *Value) fillFindings(fs []Finding, limit int) {
	for i := range fs {
		fs[i].answerForm()
	}
	fs = dedupe(fs)
	if fs == nil {
		fs = []Finding{}
	}
	sortFindings(fs)
	v.Counts, v.FixableCounts = Counts{}, Counts{}
	for i := range fs {
		f := &fs[i]
		v.Counts[f.Severity.Rank()]++
		if f.Fixable() {
			v.FixableCounts[f.Severity.Rank()]++
		}
		if f.Suppressed() {
			v.SuppressedCount++
		}
	}
	v.FindingsTotal = len(fs)
	if len(fs) > limit {
		fs, v.FindingsTruncated = fs[:limit], true
	}
	v.Findings = fs
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// CacheBytes is the memory a cached answer holds besides the findings it shares with other
// answers: the Value, its encoded head and tail, and one pointer per finding
// (cache.Sizer).
func (v *Value) CacheBytes() int {
	if v == nil {
		return 0
	}
	n := int(unsafe.Sizeof(*v))
	if e := v.enc; e != nil {
		n += int(unsafe.Sizeof(*e)) + cap(e.head) + cap(e.tail) + cap(e.findings)*int(unsafe.Sizeof((*row)(nil)))
	}
	return n
}

// Encode is the value as JSON.
func (v *Value) Encode() (json.RawMessage, error) { return json.Marshal(v) }
