package jsonpass

import (
	"encoding/json"
	"testing"
)

// FuzzAppendString holds AppendString to json.Marshal's bytes for every string.
func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "plain", `q"b\s`, "<a>&b", "\b\f\n\r\t\x00\x1f\x7f", "é✓", "\u2028\u2029", "\xff\xfe bad", "pkg:npm/%40scope/x@1.0.0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := AppendString(nil, s); string(got) != string(want) {
			t.Fatalf("AppendString(%q) = %s, json.Marshal gives %s", s, got, want)
		}
	})
}
