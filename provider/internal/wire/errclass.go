package wire

import (
	"errors"
	"strings"
)

// Class is the class of a per-key error: the first word(s) of every per-key error the provider
// returns, followed by ": ". Gatekeeper passes the message to Rego unchanged, and the templates
// decide on the class alone (library/lib reads the transient classes), so these strings are a
// contract between the Go that writes them and the Rego that reads them.
type Class string

// The classes, in the order a key meets them on its way through a lookup.
const (
	// ClassInvalidReference: the key is not an image reference the runtime would pull.
	ClassInvalidReference Class = "invalid reference"
	// ClassInvalidQuery: the key's query (after '#', on an endpoint that takes one) is not one
	// the endpoint understands.
	ClassInvalidQuery Class = "invalid query"
	// ClassNotAllowed: the reference names a registry that is not configured, or a registry
	// tried to send the provider somewhere it may not go.
	ClassNotAllowed Class = "registry not allowed"
	// ClassNotFound: the registry answered that the repository, tag or digest does not exist.
	ClassNotFound Class = "not found"
	// ClassDenied: the registry refused the provider's credentials.
	ClassDenied Class = "denied"
	// ClassLimitExceeded: what the registry served for the key exceeded one of the provider's
	// caps (a response, manifest or blob larger than its byte cap, more requests or platforms
	// than a key's budget). The registry's content, not an outage: never transient.
	ClassLimitExceeded Class = "limit exceeded"
	// ClassInvalidManifest: the registry served a manifest, index or referrers list that is not
	// what it claims to be (not valid JSON, not the schema of its media type). Content is
	// addressed by digest, so a retry reads the same bytes: never transient.
	ClassInvalidManifest Class = "invalid manifest"
	// ClassUnavailable: the registry gave no usable answer (5xx, 429, connection errors).
	ClassUnavailable Class = "unavailable"
	// ClassTimedOut: no answer within the deadline.
	ClassTimedOut Class = "timed out"
)

// Classes lists every class.
var Classes = []Class{ClassInvalidReference, ClassInvalidQuery, ClassNotAllowed, ClassNotFound, ClassDenied, ClassLimitExceeded, ClassInvalidManifest, ClassUnavailable, ClassTimedOut}

// Prefix is how a message of this class starts: the class and ": ".
func (c Class) Prefix() string { return string(c) + ": " }

// Transient reports whether the class is an availability failure (the answer may differ on a
// retry): the only classes a constraint's failOpen may admit.
func (c Class) Transient() bool { return c == ClassUnavailable || c == ClassTimedOut }

// Message returns detail prefixed with the class.
func (c Class) Message(detail string) string { return c.Prefix() + detail }

// ClassOf returns the class a per-key error message starts with.
func ClassOf(msg string) (Class, bool) {
	for _, c := range Classes {
		if strings.HasPrefix(msg, c.Prefix()) {
			return c, true
		}
	}
	return "", false
}

// Classed is implemented by the provider's typed per-key errors: each knows its class, and its
// Error() starts with that class's Prefix.
type Classed interface {
	error
	Class() Class
}

// ErrorClass returns the class of err: that of the first error in its chain that knows its
// class (errors.As), or ClassUnavailable for an error that does not (an unexpected failure
// while answering: no answer was given).
func ErrorClass(err error) Class {
	var c Classed
	if errors.As(err, &c) {
		return c.Class()
	}
	return ClassUnavailable
}

// ErrorMessage is the per-key error text for err and its class: the message of the first
// error in its chain that knows its class (so wrappers such as *url.Error never come before
// the class word), or the whole message prefixed with ClassUnavailable.
func ErrorMessage(err error) (string, Class) {
	var c Classed
	if errors.As(err, &c) {
		return c.Error(), c.Class()
	}
	return ClassUnavailable.Message(err.Error()), ClassUnavailable
}
