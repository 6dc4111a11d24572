package wire

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/open-policy-agent/frameworks/constraint/pkg/externaldata"
)

// The local types must encode to the same JSON as frameworks' externaldata types, and each must
// decode what the other encodes, field for field.
func TestRoundTripThroughFrameworks(t *testing.T) {
	req := ProviderRequest{APIVersion: APIVersion, Kind: ProviderRequestKind, Request: Request{Keys: []string{"nginx", "ghcr.io/a/b:v1"}}}
	theirsReq := externaldata.NewProviderRequest(req.Request.Keys)
	mine, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	theirs, err := json.Marshal(theirsReq)
	if err != nil {
		t.Fatal(err)
	}
	if string(mine) != string(theirs) {
		t.Errorf("json.Marshal(ProviderRequest) = %s, want (frameworks) %s", mine, theirs)
	}
	var back externaldata.ProviderRequest
	if err := json.Unmarshal(mine, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(&back, theirsReq) {
		t.Errorf("frameworks decode of ours = %+v, want %+v", back, *theirsReq)
	}
	if ProviderRequestKind != ProviderKind(externaldata.ProviderRequestKind) || ProviderResponseKind != ProviderKind(externaldata.ProviderResponseKind) {
		t.Errorf("kinds = %q, %q, want %q, %q", ProviderRequestKind, ProviderResponseKind, externaldata.ProviderRequestKind, externaldata.ProviderResponseKind)
	}

	for _, tc := range []struct {
		name string
		resp ProviderResponse
	}{
		{"items", ProviderResponse{APIVersion: APIVersion, Kind: ProviderResponseKind, Response: Response{
			Idempotent: true,
			Items: []Item{
				{Key: "a", Value: map[string]any{"digest": "sha256:00", "n": 1.0, "list": []any{"x"}}},
				{Key: "b", Error: "not found: b"},
				{Key: "c", Value: "c@sha256:00"},
				{Key: "d"},
			},
		}}},
		{"system error", ProviderResponse{APIVersion: APIVersion, Kind: ProviderResponseKind, Response: Response{SystemError: "malformed ProviderRequest"}}},
		{"empty", ProviderResponse{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mine, err := json.Marshal(tc.resp)
			if err != nil {
				t.Fatal(err)
			}
			// Ours → frameworks → JSON again: identical bytes.
			var theirs externaldata.ProviderResponse
			if err := json.Unmarshal(mine, &theirs); err != nil {
				t.Fatalf("frameworks decode of %s: %v", mine, err)
			}
			again, err := json.Marshal(theirs)
			if err != nil {
				t.Fatal(err)
			}
			if string(again) != string(mine) {
				t.Errorf("frameworks re-encoding = %s, want %s", again, mine)
			}
			// Frameworks → ours: the same values.
			var back ProviderResponse
			if err := json.Unmarshal(again, &back); err != nil {
				t.Fatal(err)
			}
			want := tc.resp
			if len(want.Response.Items) > 0 {
				// A value decodes as JSON data; the missing value of "d" stays nil.
				var norm ProviderResponse
				if err := json.Unmarshal(mine, &norm); err != nil {
					t.Fatal(err)
				}
				want = norm
			}
			if !reflect.DeepEqual(back, want) {
				t.Errorf("round trip = %+v, want %+v", back, want)
			}
			if theirs.Response.Idempotent != tc.resp.Response.Idempotent || theirs.Response.SystemError != tc.resp.Response.SystemError ||
				len(theirs.Response.Items) != len(tc.resp.Response.Items) || string(theirs.Kind) != string(tc.resp.Kind) {
				t.Errorf("frameworks view = %+v, want the fields of %+v", theirs, tc.resp)
			}
		})
	}
}

// The struct shapes match: same field names, JSON tags and kinds, so no field is lost silently
// when frameworks adds or renames one (this test then fails).
func TestSameShapeAsFrameworks(t *testing.T) {
	for _, p := range []struct{ mine, theirs any }{
		{ProviderRequest{}, externaldata.ProviderRequest{}},
		{Request{}, externaldata.Request{}},
		{ProviderResponse{}, externaldata.ProviderResponse{}},
		{Response{}, externaldata.Response{}},
		{Item{}, externaldata.Item{}},
	} {
		m, o := reflect.TypeOf(p.mine), reflect.TypeOf(p.theirs)
		if m.NumField() != o.NumField() {
			t.Errorf("%s has %d fields, frameworks' %s has %d", m, m.NumField(), o, o.NumField())
			continue
		}
		for i := range m.NumField() {
			fm, fo := m.Field(i), o.Field(i)
			if fm.Name != fo.Name || fm.Tag != fo.Tag || fm.Type.Kind() != fo.Type.Kind() {
				t.Errorf("%s.%s %s `%s`, want %s.%s %s `%s`", m, fm.Name, fm.Type.Kind(), fm.Tag, o, fo.Name, fo.Type.Kind(), fo.Tag)
			}
		}
	}
}
