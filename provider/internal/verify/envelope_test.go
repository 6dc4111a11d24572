package verify

import (
	"encoding/base64"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
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
		env, got, sigs, err := parseEnvelope(raw)
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
		if _, _, _, err := parseEnvelope([]byte(raw)); err == nil || !strings.Contains(err.Error(), want) {
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
