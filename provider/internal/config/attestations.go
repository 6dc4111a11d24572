package config

import "time"

// Attestations configures POST /v1/attestations: every verified in-toto statement about an
// image's digest, in full, for templates that read predicates themselves. Statements are
// verified against `authorities`, exactly as /v1/verify verifies attestations; this section
// only bounds the answer.
type Attestations struct {
	// Deadline for a whole /v1/attestations batch (default 2.5s).
	Deadline Duration `json:"deadline"`
	// MaxStatements reported per image; the rest are counted in statementsTotal and the
	// answer says truncated (default 32, at most 256).
	MaxStatements int `json:"maxStatements"`
	// MaxStatementBytes caps one reported statement (its subjects and decoded predicate, as
	// encoded); a larger one is reported without its predicate, marked truncated (default
	// 64 KiB, between 1 KiB and 4 MiB).
	MaxStatementBytes int64 `json:"maxStatementBytes"`
	// MaxImageBytes caps the statements of one image together; statements past it are
	// reported without their predicates, marked truncated (default 256 KiB, at least
	// maxStatementBytes, at most 16 MiB).
	MaxImageBytes int64 `json:"maxImageBytes"`
}

// Attestations defaults.
const (
	DefaultAttestationsDeadline          = 2500 * time.Millisecond
	DefaultAttestationsMaxStatements     = 32
	DefaultAttestationsMaxStatementBytes = 64 << 10
	DefaultAttestationsMaxImageBytes     = 256 << 10
)

// applyDefaults fills the attestations section's zero fields.
func (a *Attestations) applyDefaults() {
	setDur(&a.Deadline, DefaultAttestationsDeadline)
	setInt(&a.MaxStatements, DefaultAttestationsMaxStatements)
	setInt64(&a.MaxStatementBytes, DefaultAttestationsMaxStatementBytes)
	setInt64(&a.MaxImageBytes, DefaultAttestationsMaxImageBytes)
}

// validateAttestations checks the attestations section's limits.
func (c *Config) validateAttestations() error {
	a := &c.Attestations
	if err := positive("attestations.deadline", a.Deadline, maxDeadline); err != nil {
		return err
	}
	if a.MaxStatements < 1 || a.MaxStatements > 256 {
		return fieldErr("attestations.maxStatements", "must be between 1 and 256, got %d", a.MaxStatements)
	}
	if a.MaxStatementBytes < 1<<10 || a.MaxStatementBytes > 4<<20 {
		return fieldErr("attestations.maxStatementBytes", "must be between 1 KiB and 4 MiB, got %d", a.MaxStatementBytes)
	}
	if a.MaxImageBytes < a.MaxStatementBytes || a.MaxImageBytes > 16<<20 {
		return fieldErr("attestations.maxImageBytes", "must be between attestations.maxStatementBytes (%d) and 16 MiB, got %d", a.MaxStatementBytes, a.MaxImageBytes)
	}
	return nil
}
