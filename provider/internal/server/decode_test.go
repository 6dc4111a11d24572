package server

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/imagetrust/imagetrust/provider/internal/wire"
)

// FuzzDecodeCanonicalMatchesEncodingJSON: whatever the reflection-free decoder accepts,
// encoding/json accepts too and reads the same request from it; the requests Gatekeeper sends
// take the fast path.
func FuzzDecodeCanonicalMatchesEncodingJSON(f *testing.F) {
	for _, s := range []string{
		`{"apiVersion":"externaldata.gatekeeper.sh/v1beta1","kind":"ProviderRequest","request":{"keys":["nginx","ghcr.io/a/b:1"]}}`,
		` { "kind" : "ProviderRequest" , "request" : { "keys" : [ ] } , "apiVersion" : "x" } `,
		`{"apiVersion":"a","kind":"ProviderRequest","request":{"keys":["a\u0041"]}}`,
		`{"apiVersion":"a","apiVersion":"b","kind":"ProviderRequest","request":{"keys":["a"]}}`,
		`{"ApiVersion":"a","kind":"ProviderRequest","request":{"keys":["a"]}}`,
		`{"apiVersion":"a","kind":"ProviderRequest","request":{"keys":["a"],"other":1}}`,
		`{"apiVersion":"a","kind":"ProviderRequest","request":{"keys":["a"]}} x`,
		`{"apiVersion":"a","kind":"ProviderRequest","request":{"keys":["é"]}}`,
		`{"apiVersion":"a","kind":"ProviderRequest","request":{"keys":null}}`,
		`{"apiVersion":"a","kind":"ProviderRequest","request":{"keys":["a",]}}`,
		`{"apiVersion":"a",}`,
		`{}`,
		`{"request":{"keys":["a"]},"extra":[1,2]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		fast, ok := decodeCanonical(body)
		if !ok {
			return
		}
		var slow wire.ProviderRequest
		if err := json.Unmarshal(body, &slow); err != nil {
			t.Fatalf("decodeCanonical(%q) accepted what encoding/json rejects: %v", body, err)
		}
		if !reflect.DeepEqual(fast, slow) {
			t.Fatalf("decodeCanonical(%q) = %#v, encoding/json = %#v", body, fast, slow)
		}
	})
}

// TestGatekeeperRequestTakesFastPath: the body Gatekeeper's client sends (frameworks'
// NewProviderRequest, encoding/json) is read without reflection.
func TestGatekeeperRequestTakesFastPath(t *testing.T) {
	body := requestBody(t, keys100()...)
	req, ok := decodeCanonical(body)
	if !ok {
		t.Fatalf("decodeCanonical(Gatekeeper's request) fell back to encoding/json: %s", body)
	}
	if !reflect.DeepEqual(req.Request.Keys, keys100()) || req.Kind != wire.ProviderRequestKind {
		t.Errorf("decodeCanonical() = %#v, want the 100 keys of kind %s", req, wire.ProviderRequestKind)
	}
}
