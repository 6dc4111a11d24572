package attest

import (
	"cmp"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/imagetrust/imagetrust/provider/internal/verify"
)

// Value is the /v1/attestations answer for one image. Only statements that verified against a
// configured authority and name this digest as a subject appear.
type Value struct {
	// Image is the normalised reference; Digest what it resolves to (the written digest when
	// there is one).
	Image  string `json:"image"`
	Digest string `json:"digest"`
	// Statements in a stable order: predicate type, authority, format, _type, predicate,
	// subjects.
	// A statement verified by two authorities appears once for each.
	Statements []Statement `json:"statements"`
	// StatementsTotal counts the verified statements, reported or not.
	StatementsTotal int `json:"statementsTotal"`
	// Truncated: statements were left out (over maxStatements) or reported without their
	// predicates (over maxStatementBytes or maxImageBytes). A policy that must see every
	// predicate denies on it.
	Truncated bool `json:"truncated"`
	// Rejected lists attestations found that did not verify, with why (at most maxRejected).
	Rejected []verify.Rejection `json:"rejected,omitempty"`
	// Stale: served from cache during a registry outage (see cache.maxStale).
	Stale bool `json:"stale,omitempty"`

	// raw is the answer encoded with Stale false, set by compact (a compact Value has only
	// raw, total, truncated and loadedAt); loadedAt is when it was looked up.
	raw       []byte
	total     int
	truncated bool
	loadedAt  time.Time
}

// Statement is one verified in-toto statement as one authority verified it.
type Statement struct {
	// Authority is the configured authority whose signature verified.
	Authority string `json:"authority"`
	// Format is "dsse" (cosign .att layer or in-toto referrer) or "bundle" (Sigstore bundle).
	Format string `json:"format"`
	// Type is the statement's _type (https://in-toto.io/Statement/v0.1 or v1).
	Type          string           `json:"_type"`
	PredicateType string           `json:"predicateType"`
	Subjects      []verify.Subject `json:"subjects"`
	// Predicate is the decoded predicate, or null when Truncated.
	Predicate json.RawMessage `json:"predicate"`
	// Truncated: the statement was over a cap, so Predicate is null and Subjects hold only
	// the subjects naming this digest.
	Truncated bool `json:"truncated"`
}

// maxRejected caps Value.Rejected.
const maxRejected = 16

// newValue builds the answer for digest from the verified contents, within l.
func newValue(image, digest string, c *verify.Contents, l Limits) (*Value, error) {
	v := &Value{Image: image, Digest: digest, Statements: []Statement{}, StatementsTotal: len(c.Statements)}
	var used int64
	for i, ct := range c.Statements {
		if i >= l.Statements {
			v.Truncated = true
			break
		}
		st := Statement{
			Authority: ct.Authority, Format: ct.Format, Type: ct.Type, PredicateType: ct.PredicateType,
			Subjects: ct.Subjects, Predicate: ct.Predicate,
		}
		if st.Subjects == nil {
			st.Subjects = []verify.Subject{}
		}
		n, err := encodedSize(st)
		if err != nil {
			return nil, err
		}
		if n > l.StatementBytes || used+n > l.ImageBytes {
			st.Predicate, st.Subjects, st.Truncated = nil, subjectsNaming(st.Subjects, digest), true
			v.Truncated = true
			if n, err = encodedSize(st); err != nil {
				return nil, err
			}
		}
		used += n
		v.Statements = append(v.Statements, st)
	}
	// Sorted, so that the answer does not depend on the registry's listing order either.
	v.Rejected = slices.Clone(c.Rejected)
	slices.SortFunc(v.Rejected, func(a, b verify.Rejection) int {
		return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Reason, b.Reason))
	})
	if len(v.Rejected) > maxRejected {
		v.Rejected = v.Rejected[:maxRejected]
	}
	return v, nil
}

func encodedSize(st Statement) (int64, error) {
	b, err := json.Marshal(st)
	return int64(len(b)), err
}

// subjectsNaming keeps the subjects whose digest is digest ("sha256:<hex>").
func subjectsNaming(subjects []verify.Subject, digest string) []verify.Subject {
	alg, hexd, _ := strings.Cut(digest, ":")
	out := []verify.Subject{}
	for _, s := range subjects {
		if strings.EqualFold(s.Digest[alg], hexd) {
			out = append(out, verify.Subject{Name: s.Name, Digest: map[string]string{alg: s.Digest[alg]}})
		}
	}
	return out
}

// compact encodes v once: the form the cache keeps and answers are served from.
func (v *Value) compact(now time.Time) (*Value, error) {
	w := *v
	w.Stale = false
	raw, err := json.Marshal(&w)
	if err != nil {
		return nil, err
	}
	return &Value{raw: raw, total: v.StatementsTotal, truncated: v.Truncated, loadedAt: now}, nil
}

// staleField is appended to an answer served after it expired because the registry gave none.
const staleField = `,"stale":true}`

// encoded is the answer's JSON, with "stale":true when stale.
func (v *Value) encoded(stale bool) ([]byte, error) {
	raw := v.raw
	if raw == nil {
		w := *v
		w.Stale = false
		var err error
		if raw, err = json.Marshal(&w); err != nil {
			return nil, err
		}
	}
	if !stale {
		return raw, nil
	}
	if len(raw) == 0 || raw[len(raw)-1] != '}' {
		return nil, errors.New("cached answer is not a JSON object")
	}
	out := make([]byte, 0, len(raw)+len(staleField))
	return append(append(out, raw[:len(raw)-1]...), staleField...), nil
}

// CacheBytes is the memory a cached answer holds (cache.Sizer): the Value and its encoded
// bytes (the pipeline caches only compacted Values). A cached error has no Value: 0.
func (v *Value) CacheBytes() int {
	if v == nil {
		return 0
	}
	const fixed = 160 // the Value itself: strings, slices, counts, time
	return fixed + cap(v.raw)
}
