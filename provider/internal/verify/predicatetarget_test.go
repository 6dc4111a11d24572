package verify

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

const (
	intoDigest = "sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"
	intoType   = "https://example.com/scan/v1"
)

// mapTargets decodes predicates of intoType into a map (which, like a struct, merges a
// repeated key where a raw value is replaced).
func mapTargets(pt string, _ int) any {
	if pt != intoType {
		return nil
	}
	return &map[string]any{}
}

// statementPayload is a statement with the given top-level members, in order.
func statementPayload(members ...string) []byte {
	return []byte("{" + strings.Join(members, ",") + "}")
}

var (
	mType    = `"_type":"https://in-toto.io/Statement/v0.1"`
	mPT      = `"predicateType":"` + intoType + `"`
	mSubject = `"subject":[{"name":"r","digest":{"sha256":"` + strings.TrimPrefix(intoDigest, "sha256:") + `"}}]`
	mPred    = `"predicate":{"scanner":{"result":{"a":1}},"metadata":{"b":"<\u003c>"}}`
)

// checkSameAsRaw parses payload with and without targets and fails unless both give the same
// error, or the same statement with the same predicate. It returns whether the predicate was
// decoded into a target.
func checkSameAsRaw(t *testing.T, payload []byte) bool {
	t.Helper()
	raw, rawErr := parseStatement(payload, intoDigest, nil)
	into, intoErr := parseStatement(payload, intoDigest, mapTargets)
	if (rawErr == nil) != (intoErr == nil) || (rawErr != nil && rawErr.Error() != intoErr.Error()) {
		t.Fatalf("parseStatement(%q): raw error %v, with targets %v", payload, rawErr, intoErr)
	}
	if rawErr != nil {
		return false
	}
	if raw.Type != into.Type || raw.PredicateType != into.PredicateType || !reflect.DeepEqual(raw.Subject, into.Subject) {
		t.Fatalf("parseStatement(%q): raw %+v, with targets %+v", payload, raw, into)
	}
	if into.decoded == nil {
		if string(raw.Predicate) != string(into.Predicate) {
			t.Fatalf("parseStatement(%q): raw predicate %s, kept raw %s", payload, raw.Predicate, into.Predicate)
		}
		return false
	}
	want := map[string]any{}
	if err := json.Unmarshal(raw.Predicate, &want); err != nil {
		t.Fatalf("parseStatement(%q) decoded a predicate the raw decode cannot: %v", payload, err)
	}
	if got := *into.decoded.(*map[string]any); !reflect.DeepEqual(got, want) {
		t.Fatalf("parseStatement(%q): decoded predicate %v, raw %v", payload, got, want)
	}
	st := Statement{Decoded: into.decoded, payload: into.payload}
	if string(st.RawPredicate()) != string(raw.Predicate) {
		t.Fatalf("RawPredicate() = %s, want %s", st.RawPredicate(), raw.Predicate)
	}
	return true
}

func TestStatementIntoMatchesRaw(t *testing.T) {
	cases := []struct {
		name    string
		payload []byte
		decoded bool
	}{
		{"predicate type first", statementPayload(mType, mPT, mSubject, mPred), true},
		{"keys sorted, predicate before its type", statementPayload(mType, mPred, mPT, mSubject), true},
		{"space around the type", []byte(`{"_type":"https://in-toto.io/Statement/v1", "PredicateType" :  "` + intoType + `",` + mSubject + `,` + mPred + `}`), true},
		{"another predicate type", statementPayload(mType, `"predicateType":"https://example.com/other"`, mSubject, mPred), false},
		{"repeated predicate key", statementPayload(mType, mPT, mSubject, mPred, `"predicate":{"metadata":{}}`), false},
		{"repeated predicate key in another case", statementPayload(mType, mPT, mSubject, mPred, `"Predicate":{"metadata":{}}`), false},
		{"repeated predicate key escaped", statementPayload(mType, mPT, mSubject, mPred, `"pr\u0065dicate":{"metadata":{}}`), false},
		{"predicate type escaped", statementPayload(mType, `"pr\u0065dicateType":"https://example.com/other"`, mPT, mSubject, mPred), false},
		{"repeated predicate type, the last another", statementPayload(mType, mPT, mSubject, mPred, `"predicateType":"https://example.com/other"`), false},
		{"null predicate", statementPayload(mType, mPT, mSubject, `"predicate":null`), false},
		{"array predicate", statementPayload(mType, mPT, mSubject, `"predicate":[1,2]`), false},
		{"predicate type not a string", statementPayload(mType, `"predicateType":7`, mSubject, mPred), false},
		{"no predicate", statementPayload(mType, mPT, mSubject), false},
		{"another subject (the same error)", statementPayload(mType, mPT, `"subject":[{"name":"r","digest":{"sha256":"00"}}]`, mPred), false},
		{"malformed", []byte(`{"_type":"https://in-toto.io/Statement/v0.1","predicateType":"` + intoType + `","predicate":{`), false},
		{"wrong _type (the same error)", statementPayload(`"_type":"x"`, mPT, mSubject, mPred), false},
		{"string value spelling the key", statementPayload(mType, mPT, mSubject, mPred, `"note":"predicate"`), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := checkSameAsRaw(t, tc.payload); got != tc.decoded {
				t.Errorf("predicate decoded into the target = %v, want %v", got, tc.decoded)
			}
		})
	}
}

// FuzzStatementInto: whatever the payload, decoding the predicate into a target gives the
// same statement, predicate and error as decoding it raw.
func FuzzStatementInto(f *testing.F) {
	f.Add(statementPayload(mType, mPT, mSubject, mPred))
	f.Add(statementPayload(mType, mPred, mPT, mSubject))
	f.Add(statementPayload(mType, mPT, mSubject, mPred, `"Predicate":{"x":1}`))
	f.Add(statementPayload(mType, mPT, mSubject, `"predicate":null`))
	f.Add(statementPayload(mType, mPT, mSubject, mPred, `"predicateType":"https://example.com/other"`))
	f.Fuzz(func(t *testing.T, payload []byte) {
		checkSameAsRaw(t, payload)
	})
}
