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
	findings   []string
	size       int
}

// interner hands out one copy of each finding's JSON. It forgets everything when it holds
// maxInterned strings (answers keep theirs; later ones start sharing again), so it never
// grows past that whatever the cache evicts.
type interner struct {
	mu sync.Mutex
	m  map[string]string
}

const maxInterned = 1 << 16

func (in *interner) intern(b []byte) string {
	in.mu.Lock()
	defer in.mu.Unlock()
	if s, ok := in.m[string(b)]; ok {
		return s
	}
	if in.m == nil || len(in.m) >= maxInterned {
		in.m = make(map[string]string)
	}
	s := string(b)
	in.m[s] = s
	return s
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
	e := &encoded{head: raw[:i:i], tail: raw[i:], findings: make([]string, len(fs))}
	e.size = len(raw)
	var buf [1 << 10]byte // a row is seldom longer; intern copies it
	row := buf[:0]
	for j := range fs {
		if row, err = fs[j].appendRow(row[:0]); err != nil {
			return nil, err
		}
		e.findings[j] = in.intern(row)
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
	for j, f := range e.findings {
		if j > 0 {
			b = append(b, ',')
		}
		b = append(b, f...)
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

// staleEncoded is a cached answer served stale: its JSON with "stale":true as the last field
// (wire.Appender). Its encoded value must be an object (encoded.isObject).
type staleEncoded struct{ e *encoded }

// AppendJSON appends the encoded value with its closing '}' replaced by staleField.
func (s staleEncoded) AppendJSON(b []byte) []byte {
	b = s.e.AppendJSON(b)
	return append(b[:len(b)-1], staleField...)
}

// Len is the length of the stale answer.
func (s staleEncoded) Len() int { return s.e.size - 1 + len(staleField) }

// MarshalJSON returns the stale answer, for encoding/json.
func (s staleEncoded) MarshalJSON() ([]byte, error) {
	return s.AppendJSON(make([]byte, 0, s.Len())), nil
}
