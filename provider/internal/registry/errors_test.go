package registry_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/imagetrust/imagetrust/provider/internal/batch"
	"github.com/imagetrust/imagetrust/provider/internal/imageref"
	"github.com/imagetrust/imagetrust/provider/internal/registry"
	"github.com/imagetrust/imagetrust/provider/internal/wire"
)

// Every typed per-key error knows its class, and its message starts with it: the contract the
// Rego library reads.
func TestErrorsStartWithTheirClass(t *testing.T) {
	cause := errors.New("cause")
	for _, tc := range []struct {
		err  wire.Classed
		want wire.Class
	}{
		{&imageref.InvalidError{Ref: "x", Reason: "r"}, wire.ClassInvalidReference},
		{&registry.NotAllowedError{Host: "h", Reason: "r"}, wire.ClassNotAllowed},
		{&registry.NotFoundError{Ref: "x", Err: cause}, wire.ClassNotFound},
		{&registry.DeniedError{Ref: "x", Status: 403, Err: cause}, wire.ClassDenied},
		{&registry.UnavailableError{Ref: "x", Err: cause}, wire.ClassUnavailable},
		{&registry.UnavailableError{Ref: "x", Status: 503, Err: cause}, wire.ClassUnavailable},
		{&batch.TimedOutError{Key: "x", After: time.Second, Cause: context.DeadlineExceeded}, wire.ClassTimedOut},
		{&batch.TimedOutError{Key: "x", After: time.Second, Cause: context.Canceled}, wire.ClassTimedOut},
	} {
		if tc.err.Class() != tc.want || !strings.HasPrefix(tc.err.Error(), tc.want.Prefix()) {
			t.Errorf("%T: Class() = %q, Error() = %q, want class %q first", tc.err, tc.err.Class(), tc.err.Error(), tc.want)
		}
		wrapped := fmt.Errorf("outer: %w", tc.err)
		if msg, c := wire.ErrorMessage(wrapped); c != tc.want || msg != tc.err.Error() {
			t.Errorf("ErrorMessage(%q) = %q, %q, want %q, %q", wrapped, msg, c, tc.err.Error(), tc.want)
		}
	}
	if msg, c := wire.ErrorMessage(errors.New("boom")); c != wire.ClassUnavailable || msg != "unavailable: boom" {
		t.Errorf("ErrorMessage(unclassified) = %q, %q, want unavailable: boom", msg, c)
	}
}

// A guard error wrapped by net/http in a *url.Error ("Head \"https://…\": registry not
// allowed: …") is classified as the typed error itself, so the class word comes first.
func TestClassifyUnwrapsToTheTypedError(t *testing.T) {
	na := &registry.NotAllowedError{Host: "10.0.0.1", Reason: "a private address"}
	wrapped := &url.Error{Op: "Head", URL: "https://registry.example/v2/", Err: na}
	got := registry.Classify("registry.example/app:v1", wrapped)
	var out *registry.NotAllowedError
	if !errors.As(got, &out) || !strings.HasPrefix(got.Error(), wire.ClassNotAllowed.Prefix()) {
		t.Errorf("Classify(%q) = %q, want the *NotAllowedError, class first", wrapped, got)
	}
}
