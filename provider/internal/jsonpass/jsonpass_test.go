package jsonpass

import (
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"
)

func seeds() []string {
	return []string{
		`{}`, `[]`, `null`, `true`, `false`, `0`, `-0`, `1.5e-3`, `-12E+4`, `"a"`, `"\u00e9\n\"\\\/"`,
		`{"a":[1,{"b":null,"c":"x"}],"d":-1.0}`, " [ 1 , 2 ]\n", `"é"`, "\"\xff\"",
		`01`, `1.`, `.5`, `1e`, `-`, `+1`, `[1,]`, `{"a":1,}`, `{"a" 1}`, `{a:1}`, `"\x"`, `"\u12"`, "\"\t\"",
		`tru`, `nul`, `[`, `{"a":`, `"`, `[1 2]`, `{"a":1 "b":2}`, strings.Repeat("[", 1200) + strings.Repeat("]", 1200),
		`9223372036854775807`, `9223372036854775808`, `1e3`,
		`"a\u0026b\t"`, `"\u003C\u003e\u002F"`, `"\u00Ff"`, `"\u0000\u007f\u0080"`, `"\ud83d\ude00\ud800"`, "\"\x7f\"", `"\u00E9"`,
	}
}

// checkValue: a value Value reads is valid JSON by encoding/json, and every valid JSON text not
// nested deeper than maxDepth is read whole.
func checkValue(t *testing.T, in string) {
	t.Helper()
	s := New([]byte(in))
	v, ok := s.Value()
	whole := ok && s.End()
	if whole && !json.Valid([]byte(in)) {
		t.Fatalf("Value read %q, which encoding/json finds invalid", in)
	}
	if !whole && json.Valid([]byte(in)) && depth(in) <= maxDepth {
		t.Fatalf("Value did not read valid %q", in)
	}
	if whole && strings.TrimSpace(in) != string(v) {
		t.Fatalf("Value(%q) = %q", in, v)
	}
	if in := []byte(in); json.Valid(in) && len(strings.TrimSpace(string(in))) > 0 && strings.TrimSpace(string(in))[0] == '"' {
		got, ok := New(in).String()
		var want string
		if err := json.Unmarshal(in, &want); err != nil || !ok || got != want {
			t.Fatalf("String(%q) = %q, %v; json.Unmarshal: %q, %v", in, got, ok, want, err)
		}
		// AppendString appends the same value after what the buffer holds.
		b, ok := New(in).AppendString([]byte("kept"))
		if !ok || string(b) != "kept"+want {
			t.Fatalf("AppendString(%q) = %q, %v; want %q", in, b, ok, "kept"+want)
		}
	}
	if _, ok := New([]byte(in)).String(); !ok {
		if b, ok := New([]byte(in)).AppendString([]byte("kept")); ok || string(b) != "kept" {
			t.Fatalf("AppendString(%q) = %q, %v where String fails; want the buffer as it was", in, b, ok)
		}
	}
	if n, ok := New([]byte(in)).Int(); ok && whole {
		var want int
		if err := json.Unmarshal([]byte(in), &want); err != nil || n != want {
			t.Fatalf("Int(%q) = %d; json.Unmarshal: %d, %v", in, n, want, err)
		}
	}
}

// depth is the nesting of a text, counting brackets outside strings (a bound for the test).
func depth(in string) int {
	d, m, str, esc := 0, 0, false, false
	for _, c := range []byte(in) {
		switch {
		case esc:
			esc = false
		case str && c == '\\':
			esc = true
		case c == '"':
			str = !str
		case !str && (c == '{' || c == '['):
			d++
			m = max(m, d)
		case !str && (c == '}' || c == ']'):
			d--
		}
	}
	return m
}

func TestValueMatchesJSON(t *testing.T) {
	for _, in := range seeds() {
		checkValue(t, in)
	}
}

func TestUnknown(t *testing.T) {
	fields := []string{"SchemaVersion", "_type"}
	for key, want := range map[string]bool{"Other": true, "schemaversion": false, "Schema_Version": false, "type": false, "_TYPE": false, "SchemaVersion2": true} {
		s := New([]byte(`1`))
		if got := s.Unknown([]byte(key), fields); got != want {
			t.Errorf("Unknown(%q) = %v, want %v", key, got, want)
		}
	}
	var seen uint64
	if !Once(&seen, 3) || Once(&seen, 3) || !Once(&seen, 4) {
		t.Error("Once")
	}
}

func FuzzValue(f *testing.F) {
	for _, s := range seeds() {
		f.Add(s)
	}
	f.Fuzz(checkValue)
}

// TestSpecial8: eight bytes are special exactly when one of them is not a plainByte.
func TestSpecial8(t *testing.T) {
	for c := range 256 {
		for pos := range 8 {
			var b [8]byte
			for i := range b {
				b[i] = 'a'
			}
			b[pos] = byte(c)
			x := uint64(0)
			for i := 7; i >= 0; i-- {
				x = x<<8 | uint64(b[i])
			}
			if got := special8(x); got != !plainByte[c] {
				t.Fatalf("special8 with %#x at %d = %v", c, pos, got)
			}
		}
	}
	if special8(0x6161616161616161) {
		t.Fatal("special8(aaaaaaaa)")
	}
	r := rand.New(rand.NewPCG(1, 2)) //nolint:gosec // a reproducible sequence of test words, not a secret
	for range 1_000_000 {
		x := r.Uint64()
		if r.IntN(2) == 0 {
			x = x&0x3f3f3f3f3f3f3f3f | 0x2020202020202020 // mostly printable
		}
		want := false
		for i := range 8 {
			want = want || !plainByte[byte(x>>(8*i))]
		}
		if special8(x) != want {
			t.Fatalf("special8(%#x) = %v", x, !want)
		}
	}
}

func TestPlain(t *testing.T) {
	for in, want := range map[string]string{`"abc+/="`: "abc+/=", ` ""`: ""} {
		text := []byte(in)
		got, ok := New(text).Plain()
		if !ok || string(got) != want {
			t.Errorf("Plain(%s) = %q, %v; want %q", in, got, ok, want)
		}
		if len(got) > 0 && &got[0] != &text[len(in)-len(want)-1] {
			t.Errorf("Plain(%s) copied its bytes; want a slice of the text", in)
		}
	}
	for _, in := range []string{`"a\u0026b"`, `"a\nb"`, "\"caf\xc3\xa9\"", "\"a\x7fb\"", `"open`, `null`, `12`} {
		if got, ok := New([]byte(in)).Plain(); ok {
			t.Errorf("Plain(%s) = %q, true; want false (not a plain string)", in, got)
		}
	}
}
