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

// Content a registry controls never becomes a transient class that failOpen admits.
func TestContentClassesAreNotTransient(t *testing.T) {
	for _, c := range []Class{ClassLimitExceeded, ClassInvalidManifest} {
		if c.Transient() {
			t.Errorf("%q.Transient() = true, want false: a registry's content must not be admitted by failOpen", c)
		}
	}
}
