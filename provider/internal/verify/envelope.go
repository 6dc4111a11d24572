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
	s := jsonpass.New(raw)
	env = &dsseEnvelope{}
	var seen uint64
	ok = s.Object(func(key []byte) bool {
		switch string(key) {
		case "payloadType":
			v, ok := s.Plain()
			env.PayloadType = string(v)
			return ok && jsonpass.Once(&seen, 0)
		case "payload":
			v, ok := s.Plain()
			env.text, payload = v, v
			return ok && jsonpass.Once(&seen, 1)
		case "signatures":
			return jsonpass.Once(&seen, 2) && scanSignatures(s, env)
		}
		return false
	})
	if !ok || !s.End() {
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

// scanSignatures reads the signatures array: objects of "keyid" and "sig", each at most once
// (null, or an element that is not an object: false).
func scanSignatures(s *jsonpass.Scanner, env *dsseEnvelope) bool {
	return s.Array(func() bool {
		if s.Peek() != '{' {
			return false
		}
		var sig struct {
			KeyID string `json:"keyid"`
			Sig   string `json:"sig"`
		}
		var seen uint64
		ok := s.Object(func(key []byte) bool {
			v, ok := s.Plain()
			switch {
			case !ok:
				return false
			case string(key) == "keyid" && jsonpass.Once(&seen, 0):
				sig.KeyID = string(v)
			case string(key) == "sig" && jsonpass.Once(&seen, 1):
				sig.Sig = string(v)
			default:
				return false
			}
			return true
		})
		env.Signatures = append(env.Signatures, sig)
		return ok
	})
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
