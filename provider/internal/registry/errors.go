package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/imagetrust/imagetrust/provider/internal/wire"
)

// NotAllowedError means the reference names a registry that is not configured, or a registry
// response tried to send the provider somewhere it may not go (a redirect or token realm to a
// private address, plain HTTP to a registry not marked insecure).
type NotAllowedError struct {
	Host   string
	Reason string
}

func (e *NotAllowedError) Error() string {
	return e.Class().Message(fmt.Sprintf("%s: %s", e.Host, e.Reason))
}

// Class is wire.ClassNotAllowed.
func (e *NotAllowedError) Class() wire.Class { return wire.ClassNotAllowed }

// NotFoundError means the registry answered that the repository, tag or digest does not exist.
// A final answer: cacheable for a short time.
type NotFoundError struct {
	Ref string
	Err error
}

func (e *NotFoundError) Error() string { return e.Class().Message(fmt.Sprintf("%s: %v", e.Ref, e.Err)) }

// Class is wire.ClassNotFound.
func (e *NotFoundError) Class() wire.Class { return wire.ClassNotFound }
func (e *NotFoundError) Unwrap() error     { return e.Err }

// DeniedError means the registry refused the credentials (401, 403). A final answer for now:
// cacheable for a short time.
type DeniedError struct {
	Ref    string
	Status int
	Err    error
}

func (e *DeniedError) Error() string {
	return e.Class().Message(fmt.Sprintf("registry refused access to %s (HTTP %d): %v", e.Ref, e.Status, e.Err))
}

// Class is wire.ClassDenied.
func (e *DeniedError) Class() wire.Class { return wire.ClassDenied }
func (e *DeniedError) Unwrap() error     { return e.Err }

// UnavailableError means the registry could not give an answer (5xx, 429, timeouts, connection
// errors). Transient: never cached.
type UnavailableError struct {
	Ref    string
	Status int // 0 when there was no HTTP response
	Err    error
}

func (e *UnavailableError) Error() string {
	if e.Status != 0 {
		return e.Class().Message(fmt.Sprintf("registry answered HTTP %d for %s: %v", e.Status, e.Ref, e.Err))
	}
	return e.Class().Message(fmt.Sprintf("%s: %v", e.Ref, e.Err))
}

// Class is wire.ClassUnavailable.
func (e *UnavailableError) Class() wire.Class { return wire.ClassUnavailable }
func (e *UnavailableError) Unwrap() error     { return e.Err }

// InvalidManifestError means the registry served a manifest, index or referrers list that is
// not valid (not JSON, or not the schema of its media type). The bytes behind a digest never
// change, so it is a final answer, not an outage: failOpen never admits it.
type InvalidManifestError struct {
	Ref string
	// What was read: "index sha256:…", "referrers of sha256:…".
	What string
	Err  error
}

func (e *InvalidManifestError) Error() string {
	return e.Class().Message(fmt.Sprintf("%s: %s is not valid: %v", e.Ref, e.What, e.Err))
}

// Class is wire.ClassInvalidManifest.
func (e *InvalidManifestError) Class() wire.Class { return wire.ClassInvalidManifest }
func (e *InvalidManifestError) Unwrap() error     { return e.Err }

// IsNegative reports whether err is a final answer that may be cached briefly: the registry
// said not found or denied, the reference is not allowed, or what the registry served is over
// a cap or invalid (content a retry would read again). Everything else is transient.
func IsNegative(err error) bool {
	var nf *NotFoundError
	var de *DeniedError
	var na *NotAllowedError
	if errors.As(err, &nf) || errors.As(err, &de) || errors.As(err, &na) {
		return true
	}
	var c wire.Classed
	return errors.As(err, &c) && (c.Class() == wire.ClassLimitExceeded || c.Class() == wire.ClassInvalidManifest)
}

// Classify turns an error from a go-containerregistry operation on ref into one of the typed
// errors above (NotAllowedError passes through).
func Classify(ref string, err error) error {
	if err == nil {
		return nil
	}
	// An error that knows its class (ours, or imageref's) is returned itself, not the wrapper
	// around it (go-containerregistry wraps transport errors in *url.Error: "Head \"https://…\":
	// registry not allowed: …"), so the class word comes first.
	var c wire.Classed
	if errors.As(err, &c) {
		return c
	}
	var se *json.SyntaxError
	var ute *json.UnmarshalTypeError
	if errors.As(err, &se) || errors.As(err, &ute) {
		// A manifest, index or referrers list go-containerregistry could not decode.
		return &InvalidManifestError{Ref: ref, What: "what the registry served", Err: err}
	}
	if msg := err.Error(); strings.Contains(msg, "server response headers exceeded") || strings.Contains(msg, "header list larger than") {
		// net/http (HTTP/1.1, HTTP/2) stopped reading headers at MaxResponseHeaderBytes; it has
		// no error type for this.
		return &TooLargeError{What: "registry response headers for " + ref, Max: MaxResponseHeaderBytes}
	}
	if msg := err.Error(); strings.Contains(msg, "is a private or link-local address") {
		// go-containerregistry's own guard (token realm or redirect to an IP literal).
		return &NotAllowedError{Host: ref, Reason: msg}
	}
	var te *transport.Error
	if errors.As(err, &te) {
		for _, d := range te.Errors {
			switch d.Code {
			case transport.ManifestUnknownErrorCode, transport.NameUnknownErrorCode, transport.BlobUnknownErrorCode:
				return &NotFoundError{Ref: ref, Err: err}
			case transport.UnauthorizedErrorCode, transport.DeniedErrorCode:
				return &DeniedError{Ref: ref, Status: te.StatusCode, Err: err}
			}
		}
		switch te.StatusCode {
		case http.StatusNotFound:
			return &NotFoundError{Ref: ref, Err: err}
		case http.StatusUnauthorized, http.StatusForbidden:
			return &DeniedError{Ref: ref, Status: te.StatusCode, Err: err}
		default:
			// 5xx, 429, 408 and anything else unexpected: no answer we could cache.
			return &UnavailableError{Ref: ref, Status: te.StatusCode, Err: err}
		}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return &UnavailableError{Ref: ref, Err: fmt.Errorf("registry did not answer in time: %w", err)}
	}
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, context.Canceled) {
		return &UnavailableError{Ref: ref, Err: err}
	}
	return &UnavailableError{Ref: ref, Err: err}
}
