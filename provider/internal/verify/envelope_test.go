package verify

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/imagetrust/imagetrust/provider/internal/jsonpass"
)

// envelopeSeeds are envelopes as signers write them and near misses that scanEnvelope must
// leave to encoding/json.
func envelopeSeeds() [][]byte {
	payload := base64.StdEncoding.EncodeToString([]byte(`{"_type":"https://in-toto.io/Statement/v1"}`))
	return [][]byte{
		[]byte(`{"payloadType":"application/vnd.in-toto+json","payload":"` + payload + `","signatures":[{"keyid":"","sig":"MEUCIQ=="}]}`),
		[]byte(" {\n \"payload\" : \"" + payload + "\" ,\"signatures\":[ {\"sig\":\"AA==\"} , {\"keyid\":\"k\"} ],\"payloadType\":\"x\"}\n"),
		[]byte(`{"payloadType":"application/vnd.in-toto+json","payload":"` + payload + `","signatures":[]}`),
		[]byte(`{}`),
		[]byte(`{"PayloadType":"application/vnd.in-toto+json","payload":"","signatures":[]}`),
		[]byte(`{"payloadType":"a","payloadType":"b","payload":"","signatures":[]}`),
		[]byte(`{"payloadType":"a\u0062","payload":"","signatures":null}`),
		[]byte(`{"payloadType":"a","payload":"","signatures":[{"sig":"A","sig":"B"}],"other":1}`),
		[]byte(`{"payloadType":"a","payload":"","signatures":[{"sig":"A"}]} x`),
		[]byte(`{"payloadType":"a","payload":"","signatures":[{"sig":"A"},]}`),
		[]byte(`{"payloadType":"é","payload":"","signatures":[]}`),
		[]byte(`[]`),
		[]byte(`null`),
	}
}

// checkScanEnvelope: an envelope scanEnvelope reads is exactly what json.Unmarshal reads.
func checkScanEnvelope(t *testing.T, raw []byte) bool {
	t.Helper()
	env, text, ok := scanEnvelope(raw)
	if !ok {
		return false
	}
	var want dsseEnvelope
	if err := json.Unmarshal(raw, &want); err != nil {
		t.Fatalf("scanEnvelope read %q, which json.Unmarshal rejects: %v", raw, err)
	}
	if len(want.Signatures) == 0 && len(env.Signatures) == 0 {
		want.Signatures, env.Signatures = nil, nil
	}
	if env.Payload != "" || env.payloadText() != want.Payload || want.payloadText() != want.Payload {
		t.Fatalf("scanEnvelope(%q) payload text %q (Payload %q), json.Unmarshal %q", raw, env.payloadText(), env.Payload, want.Payload)
	}
	env.Payload, env.text = env.payloadText(), nil
	if !reflect.DeepEqual(*env, want) {
		t.Fatalf("scanEnvelope(%q) = %+v, json.Unmarshal = %+v", raw, *env, want)
	}
	if string(text) != want.Payload {
		t.Fatalf("scanEnvelope(%q) payload text %q, want %q", raw, text, want.Payload)
	}
	return true
}

func TestScanEnvelopeMatchesJSON(t *testing.T) {
	read := 0
	for _, raw := range envelopeSeeds() {
		if checkScanEnvelope(t, raw) {
			read++
		}
	}
	// The first four are in scanEnvelope's subset; every other seed is left to encoding/json.
	if read != 4 {
		t.Errorf("scanEnvelope read %d seeds, want 4", read)
	}
}

// TestParseEnvelopeBothPaths: the same envelope, in signers' form and with escapes that only
// encoding/json reads, gives the same payload and signatures.
func TestParseEnvelopeBothPaths(t *testing.T) {
	payload := []byte(`{"_type":"https://in-toto.io/Statement/v1","predicateType":"x"}`)
	text := base64.StdEncoding.EncodeToString(payload)
	plain := []byte(`{"payloadType":"application/vnd.in-toto+json","payload":"` + text + `","signatures":[{"keyid":"","sig":"AAEC"}]}`)
	escaped := []byte(`{"payloadType":"application\/vnd.in-toto+json","payload":"` + text + `","signatures":[{"keyid":"","sig":"AAEC"}]}`)
	if _, _, ok := scanEnvelope(escaped); ok {
		t.Fatal("scanEnvelope read an escaped string")
	}
	for _, raw := range [][]byte{plain, escaped} {
		env, got, sigs, err := parseEnvelope(raw, nil)
		if err != nil {
			t.Fatalf("parseEnvelope(%s): %v", raw, err)
		}
		if string(got) != string(payload) || env.PayloadType != intotoPayloadType || len(sigs) != 1 || string(sigs[0]) != "\x00\x01\x02" {
			t.Errorf("parseEnvelope(%s) = %q, %q, %q", raw, env.PayloadType, got, sigs)
		}
	}
	for raw, want := range map[string]string{
		`{"payloadType":"application/vnd.in-toto+json","payload":"!!","signatures":[{"sig":"AA=="}]}`:        "malformed DSSE payload",
		`{"payloadType":"application/vnd.in-toto+json","payload":"` + text + `","signatures":[]}`:            "DSSE envelope has no signatures",
		`{"payloadType":"text/plain","payload":"` + text + `","signatures":[{"sig":"AA=="}]}`:                `DSSE payload type "text/plain"`,
		`{"payloadType":"application/vnd.in-toto+json","payload":"` + text + `","signatures":[{"sig":"*"}]}`: "malformed DSSE signature",
		`{"payloadType":`: "malformed DSSE envelope",
	} {
		if _, _, _, err := parseEnvelope([]byte(raw), nil); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("parseEnvelope(%s) = %v, want an error with %q", raw, err, want)
		}
	}
}

// FuzzScanEnvelope: whatever the input, an envelope scanEnvelope reads is exactly what
// json.Unmarshal reads.
func FuzzScanEnvelope(f *testing.F) {
	for _, s := range envelopeSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		checkScanEnvelope(t, raw)
	})
}

// testPredicate is a PredicateScanner for the statement tests: {"a": string, "n": [int]}.
type testPredicate struct {
	A string `json:"a"`
	N []int  `json:"n"`
}

func (p *testPredicate) ScanPredicate(s *jsonpass.Scanner) bool {
	var seen uint64
	return s.Object(func(key []byte) bool {
		switch string(key) {
		case "a":
			var ok bool
			p.A, ok = s.String()
			return jsonpass.Once(&seen, 0) && ok
		case "n":
			if !jsonpass.Once(&seen, 1) || s.Null() {
				return false
			}
			p.N = []int{}
			return s.Array(func() bool {
				n, ok := s.Int()
				p.N = append(p.N, n)
				return ok
			})
		}
		return s.Unknown(key, []string{"a", "n"})
	})
}

const testPredicateType = "https://example.com/test/v1"

func testTargets(pt string, _ int) any {
	switch pt {
	case testPredicateType:
		return new(testPredicate)
	case slsaV1:
		return new(struct{ X string }) // a target that reads no predicate itself
	}
	return nil
}

func statementSeeds(t testing.TB) (read, left [][]byte) {
	digest := "sha256:" + strings.Repeat("ab", 32)
	pred := map[string]any{"a": "x", "n": []int{1, -2}, "other": []any{map[string]any{"k": "é\n"}, 1.5e3, nil, true}}
	read = [][]byte{
		statementJSON(t, "v1", "example.com/app", digest, testPredicateType, pred), // json.Marshal: predicate first
		[]byte(`{"_type":"https://in-toto.io/Statement/v0.1","predicateType":"` + testPredicateType + `","subject":[{"name":"a","digest":{"sha256":"ab"}}],"predicate":{"a":"y"}}`),
		[]byte(" {\n \"subject\" : [ ] , \"predicate\":{\"n\":[]} ,\"predicateType\":\"" + testPredicateType + "\", \"extra\": {\"a\": [1, {\"b\": null}]}}\n"),
		[]byte(`{"predicateType":"` + testPredicateType + `","subject":null,"predicate":{"a":"caf\u00e9","ab":1}}`),
		[]byte(`{"predicateType":"` + testPredicateType + `","subject":[{"digest":{"sha256":"1","sha256":"2"},"x":1}],"predicate":{}}`),
		[]byte(`{"predicate":{"n":[7]},"predicateType" :  "` + testPredicateType + `","z":{"predicateType":"` + testPredicateType + `"}}`),
	}
	left = [][]byte{
		[]byte(`{"predicateType":"` + testPredicateType + `"}`),
		[]byte(`{"predicateType":"` + testPredicateType + `","predicate":{},"predicate":{}}`),
		[]byte(`{"predicateType":"` + testPredicateType + `","Predicate":{}}`),
		[]byte(`{"predicateType":"` + testPredicateType + `","predicate":null}`),
		[]byte(`{"predicateType":"` + testPredicateType + `","predicate":{"A":"x"}}`),
		[]byte(`{"predicateType":"` + testPredicateType + `","predicate":{"n":[1.5]}}`),
		[]byte(`{"predicateType":"` + slsaV1 + `","predicate":{}}`),
		[]byte(`{"predicateType":"other","predicate":{}}`),
		[]byte(`{"predicate":{},"predicateType":"other"}`),
		[]byte(`{"predicate":{},"predicateType":"other","z":{"predicateType":"` + testPredicateType + `"}}`),
		[]byte(`{"predicate":{"a":"x"},"predicateType":"` + testPredicateType + `","z":{"predicateType":"` + slsaV1 + `"}}`),
		[]byte(`{"predicate":{"a":"x"},"z":"\"predicateType\":\"` + testPredicateType + `\""}`),
		[]byte(`{"predicateType":"` + testPredicateType + `","predicate":{},"subject":[null]}`),
		[]byte(`{"predicateType":"` + testPredicateType + `","predicate":{},"subject":[{"digest":{"sha256":null}}]}`),
		[]byte(`{"predicateType":"` + testPredicateType + `","predicate":{}} {}`),
		[]byte(`{"predicateType":"` + testPredicateType + `","predicate":{},"x":[1,]}`),
		[]byte(`{"predicate\u0054ype":"` + testPredicateType + `","predicate":{}}`),
		[]byte(`{"predicateType":"` + testPredicateType + `","_Type":"x","predicate":{}}`),
		[]byte(`{"predicateType":"` + testPredicateType + `","predicate":{"a":"x"`),
		[]byte(`[]`),
	}
	return read, left
}

// checkScanStatement: a statement scanStatement reads is exactly what decodeStatementInto's
// json.Unmarshal reads.
func checkScanStatement(t *testing.T, payload []byte) bool {
	t.Helper()
	got, ok := scanStatement(payload, testTargets)
	if !ok {
		return false
	}
	target := testTargets(got.PredicateType, len(payload))
	si := statementInto{Predicate: target}
	if err := json.Unmarshal(payload, &si); err != nil || si.Predicate != target {
		t.Fatalf("scanStatement read %q, which json.Unmarshal does not read into the target (%v)", payload, err)
	}
	want := statement{Type: si.Type, PredicateType: si.PredicateType, Subject: si.Subject, decoded: target, payload: payload}
	if !reflect.DeepEqual(*got, want) {
		t.Fatalf("scanStatement(%q) = %+v, json.Unmarshal = %+v", payload, *got, want)
	}
	return true
}

func TestScanStatementMatchesJSON(t *testing.T) {
	read, left := statementSeeds(t)
	for _, p := range read {
		if !checkScanStatement(t, p) {
			t.Errorf("scanStatement left %q to encoding/json", p)
		}
	}
	for _, p := range left {
		if checkScanStatement(t, p) {
			t.Errorf("scanStatement read %q, which is not in its form", p)
		}
	}
	// Without targets, or with a target that reads no predicate itself, nothing changes.
	if _, ok := scanStatement(read[0], nil); ok {
		t.Error("scanStatement read a statement without targets")
	}
}

// TestParseStatementBothPaths: the same statement read in one pass and, with an escape in
// its _type, by encoding/json gives the same statement and the same subject check.
func TestParseStatementBothPaths(t *testing.T) {
	digest := "sha256:" + strings.Repeat("cd", 32)
	plain := statementJSON(t, "v1", "example.com/app", digest, testPredicateType, map[string]any{"a": "x", "n": []int{3}})
	escaped := []byte(strings.Replace(string(plain), `"https://in-toto.io/Statement/v1"`, `"https:\/\/in-toto.io\/Statement\/v1"`, 1))
	if _, ok := scanStatement(plain, testTargets); !ok {
		t.Fatal("scanStatement left the plain statement")
	}
	var sts []*statement
	for _, p := range [][]byte{plain, escaped} {
		st, err := parseStatement(p, digest, testTargets)
		if err != nil {
			t.Fatal(err)
		}
		st.payload = nil
		sts = append(sts, st)
		if _, err := parseStatement(p, "sha256:"+strings.Repeat("ef", 32), testTargets); !errors.Is(err, ErrOtherImage) {
			t.Fatalf("another image's digest: %v", err)
		}
	}
	if !reflect.DeepEqual(sts[0], sts[1]) {
		t.Fatalf("the two paths differ:\n%+v\n%+v", sts[0], sts[1])
	}
}

// FuzzScanStatement: whatever the input, a statement scanStatement reads is exactly what
// json.Unmarshal reads.
func FuzzScanStatement(f *testing.F) {
	read, left := statementSeeds(f)
	for _, s := range append(read, left...) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		checkScanStatement(t, payload)
	})
}
