package config

import (
	"strings"
	"testing"
	"time"
)

func TestAttestationsDefaultsAndValidation(t *testing.T) {
	var c Config
	c.ApplyDefaults()
	a := c.Attestations
	if a.Deadline.D() != DefaultAttestationsDeadline || a.MaxStatements != DefaultAttestationsMaxStatements ||
		a.MaxStatementBytes != DefaultAttestationsMaxStatementBytes || a.MaxImageBytes != DefaultAttestationsMaxImageBytes {
		t.Errorf("defaults = %+v", a)
	}
	if err := c.validateAttestations(); err != nil {
		t.Errorf("validateAttestations(defaults) = %v", err)
	}
	cases := []struct {
		name string
		edit func(a *Attestations)
		want string
	}{
		{"deadline", func(a *Attestations) { a.Deadline = Duration(-time.Second) }, "attestations.deadline: -1s must be positive"},
		{"long deadline", func(a *Attestations) { a.Deadline = Duration(time.Minute) }, "attestations.deadline: 1m0s is longer than the maximum 30s"},
		{"statements", func(a *Attestations) { a.MaxStatements = 1000 }, "attestations.maxStatements: must be between 1 and 256, got 1000"},
		{"statement bytes", func(a *Attestations) { a.MaxStatementBytes = 10 }, "attestations.maxStatementBytes: must be between 1 KiB and 4 MiB, got 10"},
		{"image below statement", func(a *Attestations) { a.MaxImageBytes = 2048 }, "attestations.maxImageBytes: must be between attestations.maxStatementBytes (65536) and 16 MiB, got 2048"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := Config{}
			c.ApplyDefaults()
			tc.edit(&c.Attestations)
			err := c.validateAttestations()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("validateAttestations() = %v, want %q", err, tc.want)
			}
		})
	}
}

// The section decodes strictly from the provider's YAML like every other.
func TestAttestationsDecode(t *testing.T) {
	c, err := Decode([]byte("registries: [{host: ghcr.io}]\nattestations:\n  deadline: 2s\n  maxStatements: 8\n  maxStatementBytes: 4096\n  maxImageBytes: 65536\n"))
	if err != nil {
		t.Fatal(err)
	}
	if a := c.Attestations; a.Deadline.D() != 2*time.Second || a.MaxStatements != 8 || a.MaxStatementBytes != 4096 || a.MaxImageBytes != 65536 {
		t.Errorf("decoded %+v", a)
	}
	if _, err := Decode([]byte("attestations: {maxPredicates: 1}\n")); err == nil || !strings.Contains(err.Error(), "maxPredicates") {
		t.Errorf("unknown field: %v", err)
	}
}
