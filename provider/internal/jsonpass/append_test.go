package jsonpass

import (
	"encoding/json"
	"strings"
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

// BenchmarkAppendString: a key of /v1/scan's shape (repository@digest), nothing to escape.
func BenchmarkAppendString(b *testing.B) {
	s := "registry.example:5000/team/bench/app@sha256:" + strings.Repeat("0123456789abcdef", 4)
	buf := make([]byte, 0, 256)
	b.SetBytes(int64(len(s)))
	for b.Loop() {
		buf = AppendString(buf[:0], s)
	}
}
