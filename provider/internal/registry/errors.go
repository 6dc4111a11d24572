package registry

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// NotAllowedError means the reference names a registry that is not configured, or a registry
// response tried to send the provider somewhere it may not go (a redirect or token realm to a
// private address, plain HTTP to a registry not marked insecure).
type NotAllowedError struct {
	Host   string
	Reason string
}

func (e *NotAllowedError) Error() string {
	return fmt.Sprintf("registry not allowed: %s: %s", e.Host, e.Reason)
}

// NotFoundError means the registry answered that the repository, tag or digest does not exist.
// A final answer: cacheable for a short time.
type NotFoundError struct {
	Ref string
	Err error
}

func (e *NotFoundError) Error() string { return fmt.Sprintf("not found: %s: %v", e.Ref, e.Err) }
func (e *NotFoundError) Unwrap() error { return e.Err }

// DeniedError means the registry refused the credentials (401, 403). A final answer for now:
// cacheable for a short time.
type DeniedError struct {
	Ref    string
	Status int
	Err    error
}

func (e *DeniedError) Error() string {
	return fmt.Sprintf("denied: registry refused access to %s (HTTP %d): %v", e.Ref, e.Status, e.Err)
}
func (e *DeniedError) Unwrap() error { return e.Err }

// UnavailableError means the registry could not give an answer (5xx, 429, timeouts, connection
// errors). Transient: never cached.
type UnavailableError struct {
	Ref    string
	Status int // 0 when there was no HTTP response
	Err    error
}

func (e *UnavailableError) Error() string {
	if e.Status != 0 {
		return fmt.Sprintf("unavailable: registry answered HTTP %d for %s: %v", e.Status, e.Ref, e.Err)
	}
	return fmt.Sprintf("unavailable: %s: %v", e.Ref, e.Err)
}
func (e *UnavailableError) Unwrap() error { return e.Err }

// IsNegative reports whether err is a final registry answer that may be cached briefly
// (not found, denied). Everything else is transient.
func IsNegative(err error) bool {
	var nf *NotFoundError
	var de *DeniedError
	var na *NotAllowedError
	return errors.As(err, &nf) || errors.As(err, &de) || errors.As(err, &na)
}

// Classify turns an error from a go-containerregistry operation on ref into one of the typed
// errors above (NotAllowedError passes through).
func Classify(ref string, err error) error {
	if err == nil {
		return nil
	}
	var na *NotAllowedError
	var nf *NotFoundError
	var de *DeniedError
	var ue *UnavailableError
	if errors.As(err, &na) || errors.As(err, &nf) || errors.As(err, &de) || errors.As(err, &ue) {
		return err
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
