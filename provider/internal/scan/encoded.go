package scan

import (
	"bytes"
	"encoding/json"
	"errors"
	"sync"
)

// encoded is a cached answer: the value's JSON in parts, each finding's row interned. Images
// whose scans list the same finding (the same CVE in the same package version, as every image
// built on one base image does) share its bytes, so a cached answer costs its image, digest,
// counts and one string header per finding rather than every finding's text again.
//
// Not cache.Packer, which /v1/verify's answers use: a scan answer of 34 findings is about
// 9 KB and 550 quoted pieces, and packing one took 1.2–1.7 ms of CPU (its search for earlier
// pieces grows with the answer) and unpacking about 10 µs, against 0.6 µs here
// (BenchmarkScanCachedValue, BenchmarkScanRenderPacked in the same run).
type encoded struct {
	// head is the JSON up to and including `"findings":[`; tail is the rest from its `]`.
	head, tail []byte
	findings   []*row
	size       int
}

// row is one finding's row as JSON, with what a Filter reads of it. Every cached answer that
// lists the finding shares it.
type row struct {
	json string
	// rank is rowRank of the severity.
	rank int
	// ids are the id and the aliases.
	ids idSet
}

// interner hands out one row per distinct finding row. It forgets everything when it holds
// maxInterned rows (answers keep theirs; later ones start sharing again), so it never grows
// past that whatever the cache evicts.
type interner struct {
	mu sync.Mutex
	m  map[string]*row
}

const maxInterned = 1 << 16

// intern returns the row of f, whose encoding is b.
func (in *interner) intern(b []byte, f *Finding) *row {
	in.mu.Lock()
	defer in.mu.Unlock()
	if r, ok := in.m[string(b)]; ok {
		return r
	}
	if in.m == nil || len(in.m) >= maxInterned {
		in.m = make(map[string]*row)
	}
	r := newRow(string(b), f)
	in.m[r.json] = r
	return r
}

// newRow is the row of f, whose encoding is js.
func newRow(js string, f *Finding) *row {
	r := &row{json: js, rank: rowRank(f.Severity), ids: idSet{ids: make([]string, 0, 1+len(f.Aliases))}}
	r.ids.add(f.ID)
	for _, a := range f.Aliases {
		r.ids.add(a)
	}
	return r
}

// findingsKey is where the top-level findings list starts: the value's fields before it are
// strings (escaped quotes), numbers, booleans and objects without a findings field.
// noFindings is that list empty.
var (
	findingsKey = []byte(`"findings":[`)
	noFindings  = []byte(`"findings":[]`)
)

// encodeValue encodes v in parts, findings interned by in; AppendJSON gives exactly
// json.Marshal(v). Nothing changes an encoded value after it is returned: the cache hands the
// same one to every batch, whose responses append it in place (wire.Appender).
func encodeValue(v *Value, in *interner) (*encoded, error) {
	fs := v.Findings
	if fs == nil {
		raw, err := json.Marshal(v)
		return &encoded{head: raw, size: len(raw)}, err
	}
	v.Findings = []Finding{}
	raw, err := json.Marshal(v)
	v.Findings = fs
	if err != nil {
		return nil, err
	}
	i := bytes.Index(raw, noFindings)
	if i < 0 {
		return nil, errors.New("encoded value has no findings list")
	}
	i += len(findingsKey)
	// raw is json.Marshal's own copy: head and tail share it.
	e := &encoded{head: raw[:i:i], tail: raw[i:], findings: make([]*row, len(fs))}
	e.size = len(raw)
	var buf [1 << 10]byte // a row is seldom longer; intern copies it
	row := buf[:0]
	for j := range fs {
		if row, err = fs[j].appendRow(row[:0]); err != nil {
			return nil, err
		}
		e.findings[j] = in.intern(row, &fs[j])
		e.size += len(row)
	}
	if len(fs) > 1 {
		e.size += len(fs) - 1 // commas
	}
	return e, nil
}

// AppendJSON appends the encoded value to b: exactly json.Marshal of the value it was encoded
// from (wire.Appender).
func (e *encoded) AppendJSON(b []byte) []byte {
	b = append(b, e.head...)
	for j, r := range e.findings {
		if j > 0 {
			b = append(b, ',')
		}
		b = append(b, r.json...)
	}
	return append(b, e.tail...)
}

// Len is the length of the encoded value (wire.Appender).
func (e *encoded) Len() int { return e.size }

// MarshalJSON returns the encoded value, for encoding/json.
func (e *encoded) MarshalJSON() ([]byte, error) { return e.AppendJSON(make([]byte, 0, e.size)), nil }

// isObject reports whether the encoded value ends an object (its last byte is '}').
func (e *encoded) isObject() bool {
	last := e.tail
	if len(last) == 0 {
		last = e.head
	}
	return len(last) > 0 && last[len(last)-1] == '}'
}

// staleField is added to an answer served after it expired because the registry gave none.
const staleField = `,"stale":true}`

// view is a cached answer as one key gets it: its findings filtered (f; nil lists every
// one) and, served stale, "stale":true as its last field (wire.Appender). A stale view's
// encoded value must be an object (encoded.isObject).
type view struct {
	e     *encoded
	f     *Filter
	stale bool
	size  int
	// listed has bit j set when f lists finding j (bits in inline up to 64 findings).
	listed []uint64
	inline [1]uint64
}

// newView is e as filter f and stale make it.
func newView(e *encoded, f *Filter, stale bool) *view {
	v := &view{e: e, f: f, stale: stale, size: e.size}
	if f != nil {
		v.listed = v.inline[:]
		if n := (len(e.findings) + 63) / 64; n > len(v.inline) {
			v.listed = make([]uint64, n)
		}
		v.size = len(e.head) + len(e.tail)
		n := 0
		for j, r := range e.findings {
			if f.lists(r) {
				v.listed[j/64] |= 1 << (j % 64)
				v.size += len(r.json)
				n++
			}
		}
		if n > 1 {
			v.size += n - 1
		}
	}
	if stale {
		v.size += len(staleField) - 1
	}
	return v
}

// AppendJSON appends the answer to b.
func (v *view) AppendJSON(b []byte) []byte {
	if v.f == nil {
		b = v.e.AppendJSON(b)
	} else {
		b = append(b, v.e.head...)
		first := true
		for j, r := range v.e.findings {
			if v.listed[j/64]&(1<<(j%64)) == 0 {
				continue
			}
			if !first {
				b = append(b, ',')
			}
			first = false
			b = append(b, r.json...)
		}
		b = append(b, v.e.tail...)
	}
	if v.stale {
		b = append(b[:len(b)-1], staleField...)
	}
	return b
}

// Len is the length of the answer.
func (v *view) Len() int { return v.size }

// MarshalJSON returns the answer, for encoding/json.
func (v *view) MarshalJSON() ([]byte, error) { return v.AppendJSON(make([]byte, 0, v.size)), nil }
