package resolve

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/imagetrust/imagetrust/provider/internal/registry"
)

// TestRelabel: each registry error that names a reference, found anywhere in the chain, comes
// back as a copy naming the waiting key; the leader's error is left as it was, and any other
// error passes through unchanged.
func TestRelabel(t *testing.T) {
	const leader, waiter = "reg.example/team/app:leader", "reg.example/team/app:waiter"
	cause := errors.New("the cause")
	for _, tc := range []struct {
		name string
		err  error
		ref  func(error) string
	}{
		{"invalid manifest", &registry.InvalidManifestError{Ref: leader, What: "index sha256:ab", Err: cause}, func(err error) string {
			var e *registry.InvalidManifestError
			errors.As(err, &e)
			return e.Ref
		}},
		{"not found", &registry.NotFoundError{Ref: leader, Err: cause}, func(err error) string {
			var e *registry.NotFoundError
			errors.As(err, &e)
			return e.Ref
		}},
		{"denied", &registry.DeniedError{Ref: leader, Status: 403, Err: cause}, func(err error) string {
			var e *registry.DeniedError
			errors.As(err, &e)
			return e.Ref
		}},
		{"unavailable", &registry.UnavailableError{Ref: leader, Status: 503, Err: cause}, func(err error) string {
			var e *registry.UnavailableError
			errors.As(err, &e)
			return e.Ref
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wrapped := fmt.Errorf("reading the index: %w", tc.err)
			got := relabel(wrapped, waiter)
			if r := tc.ref(got); r != waiter {
				t.Errorf("relabel() names %q, want %q", r, waiter)
			}
			if !strings.Contains(got.Error(), waiter) || strings.Contains(got.Error(), leader) || !errors.Is(got, cause) {
				t.Errorf("relabel() = %q, want the waiter named, not the leader, and the cause kept", got)
			}
			if r := tc.ref(tc.err); r != leader {
				t.Errorf("the leader's error now names %q, want %q", r, leader)
			}
		})
	}
	other := errors.New("index too large")
	if got := relabel(other, waiter); !errors.Is(got, other) || got.Error() != other.Error() {
		t.Errorf("relabel(%v) = %v, want it unchanged", other, got)
	}
}
