package verify

import (
	"bytes"

	"github.com/imagetrust/imagetrust/provider/internal/jsonpass"
)

// scanEnvelope reads a DSSE envelope in the form signers write it — one JSON object whose
// keys are exactly "payloadType", "payload" and "signatures" (objects of "keyid" and "sig"),
// each at most once, every string printable ASCII without escapes — in one pass without
// encoding/json, and returns it with the payload's base64 text as a slice of raw. ok is false
// for anything else (other keys or spellings, escapes, nulls, repeated keys, malformed JSON),
// and the caller decodes with encoding/json as before: an envelope read here is exactly what
// json.Unmarshal reads from it (FuzzScanEnvelope), only without validating and unquoting its
// ~27 KB base64 string twice, and without copying it (env.text: see payloadText).
func scanEnvelope(raw []byte) (env *dsseEnvelope, payload []byte, ok bool) {
	s := envScanner{b: raw}
	env = &dsseEnvelope{}
	var seenType, seenPayload, seenSigs bool
	ok = s.object(func(key []byte) bool {
		switch string(key) {
		case "payloadType":
			v, ok := s.str()
			if !ok || seenType {
				return false
			}
			env.PayloadType, seenType = string(v), true
		case "payload":
			v, ok := s.str()
			if !ok || seenPayload {
				return false
			}
			env.text, payload, seenPayload = v, v, true
		case "signatures":
			if seenSigs {
				return false
			}
			seenSigs = true
			return s.signatures(env)
		default:
			return false
		}
		return true
	})
	if !ok || !s.end() {
		return nil, nil, false
	}
	return env, payload, true
}

// payloadText is the payload's base64 text: as scanEnvelope found it in the envelope's
// bytes (not copied: only keyless verification reads it as a string), or as encoding/json
// decoded it.
func (env *dsseEnvelope) payloadText() string {
	if env.text != nil {
		return string(env.text)
	}
	return env.Payload
}

// envScanner is a position in a JSON text, for scanEnvelope's strict subset only.
type envScanner struct {
	b []byte
	i int
}

func (s *envScanner) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// next skips space and consumes c.
func (s *envScanner) next(c byte) bool {
	s.space()
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// peek skips space and reports whether c comes next, without consuming it.
func (s *envScanner) peek(c byte) bool {
	s.space()
	return s.i < len(s.b) && s.b[s.i] == c
}

// end reports whether only space is left.
func (s *envScanner) end() bool {
	s.space()
	return s.i == len(s.b)
}

// str reads a string of printable ASCII without escapes and returns its content.
func (s *envScanner) str() ([]byte, bool) {
	if !s.next('"') {
		return nil, false
	}
	start := s.i
	for ; s.i < len(s.b); s.i++ {
		switch c := s.b[s.i]; {
		case c == '"':
			v := s.b[start:s.i]
			s.i++
			return v, true
		case c < 0x20 || c >= 0x7f || c == '\\':
			return nil, false
		}
	}
	return nil, false
}

// object reads {"key": value, ...}; member reads each value after its key and colon.
func (s *envScanner) object(member func(key []byte) bool) bool {
	if !s.next('{') {
		return false
	}
	if s.next('}') {
		return true
	}
	for {
		key, ok := s.str()
		if !ok || !s.next(':') || !member(key) {
			return false
		}
		if s.next('}') {
			return true
		}
		if !s.next(',') {
			return false
		}
	}
}

// signatures reads the signatures array: objects of "keyid" and "sig", each at most once.
func (s *envScanner) signatures(env *dsseEnvelope) bool {
	if !s.next('[') {
		return false
	}
	if s.next(']') {
		return true
	}
	for {
		if !s.peek('{') {
			return false
		}
		var sig struct {
			KeyID string `json:"keyid"`
			Sig   string `json:"sig"`
		}
		var seenKey, seenSig bool
		ok := s.object(func(key []byte) bool {
			v, ok := s.str()
			switch {
			case !ok:
				return false
			case string(key) == "keyid" && !seenKey:
				sig.KeyID, seenKey = string(v), true
			case string(key) == "sig" && !seenSig:
				sig.Sig, seenSig = string(v), true
			default:
				return false
			}
			return true
		})
		if !ok {
			return false
		}
		env.Signatures = append(env.Signatures, sig)
		if s.next(']') {
			return true
		}
		if !s.next(',') {
			return false
		}
	}
}

// PredicateScanner is a PredicateTargets target that reads its predicate itself in the
// statement's one pass (scanStatement). ScanPredicate reads the predicate, an object, from s
// into the target exactly as json.Unmarshal would decode it there, or answers false when it
// cannot tell (the statement is then decoded with encoding/json, into a new target).
type PredicateScanner interface {
	ScanPredicate(s *jsonpass.Scanner) bool
}

// statementFields and subjectFields are the JSON names of statement's and statementSubject's
// fields.
var (
	statementFields = []string{"_type", "predicateType", "subject", "predicate"}
	subjectFields   = []string{"name", "digest"}
)

// scanStatement reads a statement in one pass when it is in the form attesters write — its
// keys spelt exactly and once each, and a target of targets for its predicate type that is a
// PredicateScanner — giving exactly what decodeStatementInto's json.Unmarshal gives
// (FuzzScanStatement holds the two to the same result). A predicate before its predicateType
// (encoding/json writes a map's keys sorted) is read into the target of the type found by
// lastPredicateType, and the statement is kept only when that is its type. ok is false for
// anything else; the caller then decodes as before.
func scanStatement(payload []byte, targets PredicateTargets) (_ *statement, ok bool) {
	if targets == nil {
		return nil, false
	}
	s := jsonpass.New(payload)
	st := &statement{payload: payload}
	var seen uint64
	var ps PredicateScanner
	var guessed bool // the predicate came before its type, read as lastPredicateType's
	target := func() bool {
		var isScanner bool
		ps, isScanner = targets(st.PredicateType, len(payload)).(PredicateScanner)
		return isScanner && ps != nil
	}
	ok = s.Object(func(key []byte) bool {
		switch string(key) {
		case "_type":
			var ok bool
			st.Type, ok = s.String()
			return jsonpass.Once(&seen, 0) && ok
		case "predicateType":
			pt, ok := s.String()
			if !jsonpass.Once(&seen, 1) || !ok || guessed && pt != st.PredicateType {
				return false
			}
			st.PredicateType = pt
			return true
		case "subject":
			return jsonpass.Once(&seen, 2) && scanSubjects(s, &st.Subject)
		case "predicate":
			if !jsonpass.Once(&seen, 3) || s.Peek() != '{' {
				return false
			}
			if seen&(1<<1) == 0 {
				// Before its type: read into the target of the type the statement names last,
				// and kept only if that is its type (checked at the key and below).
				guess, found := lastPredicateType(payload)
				if !found {
					return false
				}
				st.PredicateType, guessed = guess, true
			}
			if !target() {
				return false
			}
			st.decoded = ps
			return ps.ScanPredicate(s)
		}
		return s.Unknown(key, statementFields)
	})
	if !ok || !s.End() || seen&(1<<3) == 0 || guessed && seen&(1<<1) == 0 {
		return nil, false
	}
	return st, true
}

// scanSubjects reads the subject list (null: none; an element that is not an object is left
// to encoding/json).
func scanSubjects(s *jsonpass.Scanner, out *[]statementSubject) bool {
	if s.Null() {
		return true
	}
	*out = []statementSubject{}
	return s.Array(func() bool {
		var sub statementSubject
		var seen uint64
		ok := s.Object(func(key []byte) bool {
			switch string(key) {
			case "name":
				var ok bool
				sub.Name, ok = s.String()
				return jsonpass.Once(&seen, 0) && ok
			case "digest":
				return jsonpass.Once(&seen, 1) && scanDigests(s, &sub.Digest)
			}
			return s.Unknown(key, subjectFields)
		})
		*out = append(*out, sub)
		return ok
	})
}

// scanDigests reads a subject's digest map of algorithm to hex (a repeated algorithm: the last
// wins, as in encoding/json).
func scanDigests(s *jsonpass.Scanner, out *map[string]string) bool {
	if s.Null() {
		return true
	}
	m := map[string]string{}
	*out = m
	return s.Object(func(key []byte) bool {
		if s.Peek() == 'n' {
			return false // null: encoding/json stores ""; left to it
		}
		v, ok := s.String()
		m[string(key)] = v
		return ok
	})
}

// lastPredicateType finds the value of the last "predicateType" key in payload without reading
// what comes before it: encoding/json writes a statement's keys sorted, predicate first, so
// its type follows the ~20 KB predicate by a few bytes. A guess: scanStatement reads the
// predicate into the guessed type's target and keeps it only when the statement's
// predicateType is the guess.
func lastPredicateType(payload []byte) (string, bool) {
	i := bytes.LastIndex(payload, []byte(`"predicateType"`))
	if i < 0 {
		return "", false
	}
	rest := bytes.TrimLeft(payload[i+len(`"predicateType"`):], " \t\r\n")
	if len(rest) == 0 || rest[0] != ':' {
		return "", false
	}
	return jsonpass.New(rest[1:]).String()
}
