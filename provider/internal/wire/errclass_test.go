package wire

import "testing"

func TestClassOf(t *testing.T) {
	for _, c := range Classes {
		got, ok := ClassOf(c.Message("x"))
		if !ok || got != c {
			t.Errorf("ClassOf(%q) = %q, %v, want %q, true", c.Message("x"), got, ok, c)
		}
	}
	for _, msg := range []string{"", "unavailable", "Unavailable: x", "error: unavailable: x", "timed out:x"} {
		if got, ok := ClassOf(msg); ok {
			t.Errorf("ClassOf(%q) = %q, true, want no class", msg, got)
		}
	}
	var transient []Class
	for _, c := range Classes {
		if c.Transient() {
			transient = append(transient, c)
		}
	}
	if len(transient) != 2 || transient[0] != ClassUnavailable || transient[1] != ClassTimedOut {
		t.Errorf("transient classes = %q, want [unavailable timed out]", transient)
	}
}
