package scan

import (
	"errors"
	"fmt"
)

// MalformedError is a report, predicate or VEX document that cannot be read: the scan it
// carries proves nothing. Field names the part that is wrong.
type MalformedError struct {
	Format string
	Field  string
	Err    error
}

func (e *MalformedError) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("malformed %s report: %v", e.Format, e.Err)
	}
	return fmt.Sprintf("malformed %s report: %s: %v", e.Format, e.Field, e.Err)
}

func (e *MalformedError) Unwrap() error { return e.Err }

func malformed(format, field string, err error) error {
	return &MalformedError{Format: format, Field: field, Err: err}
}

func malformedf(format, field, msg string, args ...any) error {
	return &MalformedError{Format: format, Field: field, Err: fmt.Errorf(msg, args...)}
}

// TooLargeError is a report beyond the configured size or finding limits.
type TooLargeError struct {
	What  string
	Size  int64
	Limit int64
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("%s is too large: %d, limit %d", e.What, e.Size, e.Limit)
}

// ErrUnknownFormat is a document none of the decoders recognises.
var ErrUnknownFormat = errors.New("not a Trivy, Grype, SARIF or in-toto vulns report")
