package verify

import (
	"bytes"
	"encoding/json"
)

// PredicateTargets chooses where the predicate of a verified statement is decoded in the
// statement's own json.Unmarshal: a new non-nil pointer for predicateType, or nil to keep the
// predicate raw (Statement.Predicate). payloadSize is the statement's size in bytes, an upper
// bound of the predicate's. A caller that would decode the predicate anyway saves reading it
// twice.
type PredicateTargets func(predicateType string, payloadSize int) any

// statementInto is statement with the predicate decoded into a target.
type statementInto struct {
	Type          string             `json:"_type"`
	PredicateType string             `json:"predicateType"`
	Subject       []statementSubject `json:"subject"`
	Predicate     any                `json:"predicate"`
}

// decodeStatementInto decodes payload with its predicate in a target of targets, when that
// gives exactly what decoding it raw gives: the payload has one "predicate" key (a repeated
// key would merge into a target but replace a raw value), the predicate type the target was
// chosen for is the one the whole decode ends with, and the decode succeeds with the
// predicate an object in the target. Otherwise ok is false and the caller decodes raw, with
// the errors it always gave.
func decodeStatementInto(payload []byte, targets PredicateTargets) (_ *statement, ok bool) {
	if targets == nil {
		return nil, false
	}
	if st, ok := scanStatement(payload, targets); ok { // the form attesters write, in one pass
		return st, true
	}
	pt, found := predicateTypeGuess(payload)
	if !found {
		return nil, false
	}
	target := targets(pt, len(payload))
	if target == nil {
		return nil, false
	}
	si := statementInto{Predicate: target}
	if err := json.Unmarshal(payload, &si); err != nil || si.PredicateType != pt || si.Predicate != target {
		return nil, false
	}
	return &statement{Type: si.Type, PredicateType: si.PredicateType, Subject: si.Subject, decoded: target, payload: payload}, true
}

// predicateTypeGuess finds, without decoding the payload, the value of its first
// "predicateType" key (matched as encoding/json matches keys: exactly or case-folded). It
// answers false when the payload has other than exactly one "predicate" key or a \u escape
// that spells an ASCII letter (a key written with one could not be told), so no second key
// can decode as the predicate. The guess only chooses the target: the caller checks it
// against the decoded statement.
func predicateTypeGuess(payload []byte) (pt string, ok bool) {
	if !noLetterEscapes(payload) {
		return "", false
	}
	predicates, found := 0, false
	for i := 0; ; i++ {
		j := bytes.IndexByte(payload[i:], '"')
		if j < 0 {
			break
		}
		i += j
		rest := payload[i:]
		switch {
		case hasFoldPrefix(rest, `"predicate"`):
			predicates++
		case !found && hasFoldPrefix(rest, `"predicatetype"`):
			pt, found = keyString(rest[len(`"predicatetype"`):])
		}
	}
	return pt, found && predicates == 1
}

func hasFoldPrefix(b []byte, prefix string) bool {
	return len(b) >= len(prefix) && bytes.EqualFold(b[:len(prefix)], []byte(prefix))
}

// keyString reads `: "<string>"` (JSON space allowed) at the start of b: the value of the
// key just read. ok is false when b does not start so (the quoted word was not a key).
func keyString(b []byte) (string, bool) {
	b = bytes.TrimLeft(b, " \t\r\n")
	if len(b) == 0 || b[0] != ':' {
		return "", false
	}
	b = bytes.TrimLeft(b[1:], " \t\r\n")
	if len(b) == 0 || b[0] != '"' {
		return "", false
	}
	for i := 1; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			var s string
			if json.Unmarshal(b[:i+1], &s) != nil {
				return "", false
			}
			return s, true
		}
	}
	return "", false
}

// noLetterEscapes reports whether no \u escape in b spells an ASCII letter (conservatively:
// a malformed one, or a \u after an escaped backslash, also answers false).
func noLetterEscapes(b []byte) bool {
	for i := 0; ; {
		j := bytes.Index(b[i:], []byte(`\u`))
		if j < 0 {
			return true
		}
		i += j + 2
		if len(b)-i < 4 {
			return false
		}
		var r int
		for _, c := range b[i : i+4] {
			switch {
			case c >= '0' && c <= '9':
				r = r<<4 | int(c-'0')
			case c >= 'a' && c <= 'f':
				r = r<<4 | int(c-'a'+10)
			case c >= 'A' && c <= 'F':
				r = r<<4 | int(c-'A'+10)
			default:
				return false
			}
		}
		if r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' {
			return false
		}
	}
}

// RawPredicate is the predicate as signed: Predicate, or, when it was decoded into a target
// (Decoded), read again from the verified statement.
func (st *Statement) RawPredicate() json.RawMessage {
	if st.Predicate != nil || st.payload == nil {
		return st.Predicate
	}
	var raw statement
	if json.Unmarshal(st.payload, &raw) != nil {
		return nil
	}
	return raw.Predicate
}
