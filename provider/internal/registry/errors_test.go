package registry_test

import (
	"context"
	"encoding/json"
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
		{&registry.TooLargeError{What: "w", Max: 1}, wire.ClassLimitExceeded},
		{&registry.BudgetError{Max: 1}, wire.ClassLimitExceeded},
		{&registry.InvalidManifestError{Ref: "x", What: "index sha256:a", Err: cause}, wire.ClassInvalidManifest},
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

// Content a registry serves wrongly is a final answer, never transient: a manifest
// go-containerregistry cannot decode is "invalid manifest:", response headers over the cap
// "limit exceeded:"; both (and every over-cap error) are cached like not-found.
func TestContentErrorsAreFinal(t *testing.T) {
	var se *json.SyntaxError
	synErr := json.Unmarshal([]byte("{"), &struct{}{})
	if !errors.As(synErr, &se) {
		t.Fatalf("json.Unmarshal({) = %T, want *json.SyntaxError", synErr)
	}
	typeErr := json.Unmarshal([]byte(`{"manifests":1}`), &struct{ Manifests []int }{})
	for _, tc := range []struct {
		name string
		err  error
		want wire.Class
	}{
		{"JSON syntax", &url.Error{Op: "Get", URL: "http://r/v2/x/referrers/sha256:a", Err: synErr}, wire.ClassInvalidManifest},
		{"JSON type", fmt.Errorf("decoding: %w", typeErr), wire.ClassInvalidManifest},
		{"HTTP/1.1 headers over the cap", &url.Error{Op: "Head", URL: "http://r/v2/", Err: errors.New("net/http: server response headers exceeded 65536 bytes; aborted")}, wire.ClassLimitExceeded},
		{"HTTP/2 headers over the cap", errors.New("http2: response header list larger than advertised limit"), wire.ClassLimitExceeded},
		{"budget", &url.Error{Op: "Get", URL: "http://r/v2/", Err: &registry.BudgetError{Max: 3}}, wire.ClassLimitExceeded},
	} {
		got := registry.Classify("r/x:v1", tc.err)
		c := wire.ErrorClass(got)
		if c != tc.want || c.Transient() || !strings.HasPrefix(got.Error(), tc.want.Prefix()) || !registry.IsNegative(got) {
			t.Errorf("%s: Classify(%q) = %q (class %q, negative %v), want class %q first, final", tc.name, tc.err, got, c, registry.IsNegative(got), tc.want)
		}
	}
	if got := registry.Classify("r/x:v1", errors.New("connection reset")); registry.IsNegative(got) {
		t.Errorf("IsNegative(%q) = true, want false for an outage", got)
	}
}
