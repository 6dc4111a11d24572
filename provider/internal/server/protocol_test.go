package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/imagetrust/imagetrust/provider/internal/jsonpass"
	"github.com/imagetrust/imagetrust/provider/internal/wire"
	"github.com/open-policy-agent/frameworks/constraint/pkg/externaldata"
)

func TestDecodeRequest(t *testing.T) {
	keys, err := DecodeRequest(requestBody(t, "nginx", "ghcr.io/a/b@sha256:"+fmt.Sprintf("%064x", 1)), 10)
	if err != nil {
		t.Fatalf("DecodeRequest() = %v", err)
	}
	if len(keys) != 2 || keys[0] != "nginx" {
		t.Errorf("DecodeRequest() keys = %q, want [nginx ghcr.io/…]", keys)
	}
	// The older apiVersion spelling is accepted too.
	if _, err := DecodeRequest([]byte(`{"apiVersion":"externaldata.gatekeeper.sh/v1alpha1","kind":"ProviderRequest","request":{"keys":["a"]}}`), 10); err != nil {
		t.Errorf("DecodeRequest(v1alpha1) = %v, want nil", err)
	}
	_, err = DecodeRequest([]byte(`{"kind":1}`), 10)
	var re *RequestError
	if !errors.As(err, &re) || re.Status != 400 {
		t.Errorf("DecodeRequest(kind 1) = %v, want a *RequestError with status 400", err)
	}
}

// FuzzDecodeRequest: decoding never panics, every failure is a *RequestError, and what decodes
// round-trips and respects the key cap.
func FuzzDecodeRequest(f *testing.F) {
	f.Add(requestBody(f, "nginx", "ghcr.io/a/b:1"))
	f.Add(requestBody(f))
	f.Add([]byte(`{"apiVersion":"externaldata.gatekeeper.sh/v1beta1","kind":"ProviderRequest","request":{"keys":null}}`))
	f.Add([]byte(`{"apiVersion":"externaldata.gatekeeper.sh/v1beta1","kind":"ProviderRequest","request":{"keys":[1,2]}}`))
	f.Add([]byte(`{"kind":"ProviderRequest","request":{"keys":["\u0000","\ud800"]}}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"request":`))
	f.Fuzz(func(t *testing.T, body []byte) {
		const maxKeys = 5
		keys, err := DecodeRequest(body, maxKeys)
		if err != nil {
			var re *RequestError
			if !errors.As(err, &re) || re.Msg == "" || re.Status < 400 {
				t.Fatalf("DecodeRequest(%q) = %v, want a *RequestError with a message", body, err)
			}
			return
		}
		if len(keys) > maxKeys {
			t.Fatalf("DecodeRequest(%q) returned %d keys, cap %d", body, len(keys), maxKeys)
		}
		u := Dedupe(slices.Clone(keys))
		for i := range u {
			for j := i + 1; j < len(u); j++ {
				if u[i] == u[j] {
					t.Fatalf("Dedupe(%q) kept %q twice", keys, u[i])
				}
			}
		}
		again, err := DecodeRequest(mustMarshal(t, externaldata.NewProviderRequest(keys)), maxKeys)
		if err != nil || !slices.Equal(again, keys) && len(keys) > 0 {
			t.Fatalf("round trip of %q = %q, %v", keys, again, err)
		}
	})
}

func mustMarshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func keys100() []string {
	keys := make([]string, 100)
	for i := range keys {
		keys[i] = fmt.Sprintf("registry.bank.internal/team-%d/app-%d:v1.%d.0", i%7, i, i)
	}
	return keys
}

func BenchmarkDecodeRequest100(b *testing.B) {
	body := requestBody(b, keys100()...)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		keys, err := DecodeRequest(body, 1000)
		if err != nil || len(keys) != 100 {
			b.Fatal(err)
		}
		_ = Dedupe(keys)
	}
}

func BenchmarkEncodeResponse100(b *testing.B) {
	items := make([]wire.Item, 100)
	for i, k := range keys100() {
		// The shape of a /v1/resolve value, pre-encoded as the resolve service does.
		items[i] = wire.Item{Key: k, Value: wire.Encoded(fmt.Sprintf(
			`{"image":%q,"digest":"sha256:%064x","mediaType":"application/vnd.oci.image.manifest.v1+json"}`, k, i))}
	}
	b.ReportAllocs()
	var n int
	for b.Loop() {
		body, err := EncodeResponse(items, false, "")
		if err != nil {
			b.Fatal(err)
		}
		n = len(body)
	}
	b.SetBytes(int64(n))
}

// TestEncodeResponseMatchesEncodingJSON: the hand-written encoder produces the same document as
// encoding/json for the frameworks type.
func TestEncodeResponseMatchesEncodingJSON(t *testing.T) {
	for _, tc := range []struct {
		name       string
		items      []wire.Item
		idempotent bool
		sysErr     string
	}{
		{"empty", nil, false, ""},
		{"system error", nil, true, "malformed \"x\"\n"},
		{"mixed", []wire.Item{
			{Key: "nginx", Value: "docker.io/library/nginx:latest@sha256:" + fmt.Sprintf("%064x", 7)},
			{Key: "bad\x00\xff\u2028<&>", Error: "invalid reference: \"bad\"\t\\"},
			{Key: "raw", Value: json.RawMessage(`{"image":"a","platforms":[{"os":"linux"}],"stale":true}`)},
			{Key: "encoded", Value: wire.Encoded(`{"image":"b","signed":false}`)},
			{Key: "map", Value: map[string]any{"n": 1.5, "b": true}},
			{Key: "nil"},
			{Key: "", Value: 3},
		}, true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := EncodeResponse(tc.items, tc.idempotent, tc.sysErr)
			if err != nil {
				t.Fatal(err)
			}
			// The same items as frameworks' type: the wire format Gatekeeper decodes.
			var theirs []externaldata.Item
			for _, it := range tc.items {
				theirs = append(theirs, externaldata.Item{Key: it.Key, Value: it.Value, Error: it.Error})
			}
			want, err := json.Marshal(&externaldata.ProviderResponse{
				APIVersion: ResponseAPIVersion, Kind: externaldata.ProviderResponseKind,
				Response: externaldata.Response{Idempotent: tc.idempotent, Items: theirs, SystemError: tc.sysErr},
			})
			if err != nil {
				t.Fatal(err)
			}
			var g, w any
			if err := json.Unmarshal(got, &g); err != nil {
				t.Fatalf("EncodeResponse() = %s: invalid JSON: %v", got, err)
			}
			_ = json.Unmarshal(want, &w)
			if !reflect.DeepEqual(g, w) {
				t.Errorf("EncodeResponse() = %s\nwant (encoding/json) %s", got, want)
			}
		})
	}
	if _, err := EncodeResponse([]wire.Item{{Key: "k", Value: json.RawMessage(`{"a":`)}}, false, ""); err == nil {
		t.Errorf("EncodeResponse(invalid raw value) = nil error, want an error")
	}
}

func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "nginx", "a\"b\\c", "\x00\x1f\x7f", "\xff\xfe", "\u2028\u2029", "<>&", "é漢字🙂"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := jsonpass.AppendString(nil, s)
		var back string
		if err := json.Unmarshal(got, &back); err != nil {
			t.Fatalf("AppendString(%q) = %s: invalid JSON: %v", s, got, err)
		}
		want, _ := json.Marshal(s)
		var wantBack string
		_ = json.Unmarshal(want, &wantBack)
		if back != wantBack {
			t.Fatalf("appendString(%q) decodes to %q, encoding/json's to %q", s, back, wantBack)
		}
	})
}

// BenchmarkHandler100 is the server's own cost for a warm 100-key batch: decode, dedupe, a
// lookup that answers from memory (pre-encoded values, as the resolve cache holds them),
// encode, metrics and the batch log line (to io.Discard), without TLS.
func BenchmarkHandler100(b *testing.B) {
	keys := keys100()
	answers := make(map[string]wire.Encoded, len(keys))
	for i, k := range keys {
		answers[k] = wire.Encoded(fmt.Sprintf(`{"image":%q,"digest":"sha256:%064x","mediaType":"application/vnd.oci.image.manifest.v1+json"}`, k, i))
	}
	lk := func(_ context.Context, keys []string) []wire.Item {
		items := make([]wire.Item, len(keys))
		for i, k := range keys {
			items[i] = wire.Item{Key: k, Value: answers[k]}
		}
		return items
	}
	d := defaultDeps(lk)
	d.MaxKeys = 1000
	d.Logger = slog.New(slog.NewJSONHandler(io.Discard, nil))
	h := NewServer(d)
	body := requestBody(b, keys...)
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/resolve", bytes.NewReader(body)))
		if rec.Code != 200 {
			b.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	}
}

// appended is a wire.Appender over fixed bytes.
type appended []byte

func (a appended) AppendJSON(b []byte) []byte   { return append(b, a...) }
func (a appended) Len() int                     { return len(a) }
func (a appended) MarshalJSON() ([]byte, error) { return a, nil }

// TestEncodeResponseAppender: items whose values are wire.Appender encode to the same bytes as
// the same values as wire.Encoded, and as encoding/json writes them through MarshalJSON; a
// "null" Appender leaves the value out as a null Encoded does; a short Len only costs growth.
func TestEncodeResponseAppender(t *testing.T) {
	values := []string{`{"image":"a","findings":[{"id":"CVE-1"}],"stale":true}`, `{"image":"<b>"}`, `null`, `[1,2]`, `"s"`}
	var asEncoded, asAppender, short []wire.Item
	for i, v := range values {
		k := fmt.Sprintf("key-%d", i)
		asEncoded = append(asEncoded, wire.Item{Key: k, Value: wire.Encoded(v)})
		asAppender = append(asAppender, wire.Item{Key: k, Value: appended(v)})
		short = append(short, wire.Item{Key: k, Value: shortAppender{appended(v)}})
	}
	asEncoded = append(asEncoded, wire.Item{Key: "err", Error: "unavailable: x"}, wire.Item{Value: wire.Encoded(`{}`)})
	asAppender = append(asAppender, wire.Item{Key: "err", Error: "unavailable: x"}, wire.Item{Value: appended(`{}`)})
	short = append(short, wire.Item{Key: "err", Error: "unavailable: x"}, wire.Item{Value: shortAppender{appended(`{}`)}})
	want, err := EncodeResponse(asEncoded, true, "")
	if err != nil {
		t.Fatal(err)
	}
	for name, items := range map[string][]wire.Item{"appender": asAppender, "short Len": short} {
		got, err := EncodeResponse(items, true, "")
		if err != nil || string(got) != string(want) {
			t.Errorf("%s: EncodeResponse = %s, %v\nwant (wire.Encoded) %s", name, got, err, want)
		}
		// Into a reused buffer holding an earlier response: the same bytes.
		got, err = appendResponse([]byte(strings.Repeat("x", 4096)), items, true, "")
		if err != nil || string(got) != string(want) {
			t.Errorf("%s: appendResponse(reused buffer) = %s, %v\nwant %s", name, got, err, want)
		}
	}
	// encoding/json, through MarshalJSON, writes the same document (the null value aside, which
	// encoding/json keeps as "value":null and the encoder leaves out, as for wire.Encoded).
	var theirs []externaldata.Item
	for _, it := range asAppender {
		if a, ok := it.Value.(wire.Appender); ok && string(a.AppendJSON(nil)) == "null" {
			it.Value = nil
		}
		theirs = append(theirs, externaldata.Item{Key: it.Key, Value: it.Value, Error: it.Error})
	}
	viaJSON, err := json.Marshal(&externaldata.ProviderResponse{
		APIVersion: ResponseAPIVersion, Kind: externaldata.ProviderResponseKind,
		Response: externaldata.Response{Idempotent: true, Items: theirs},
	})
	if err != nil {
		t.Fatal(err)
	}
	var g, w any
	if err := json.Unmarshal(want, &g); err != nil {
		t.Fatalf("EncodeResponse() = %s: invalid JSON: %v", want, err)
	}
	_ = json.Unmarshal(viaJSON, &w)
	if !reflect.DeepEqual(g, w) {
		t.Errorf("EncodeResponse() = %s\nwant (encoding/json) %s", want, viaJSON)
	}
}

// shortAppender understates its length.
type shortAppender struct{ appended }

func (shortAppender) Len() int { return 0 }
