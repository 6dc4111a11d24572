package config

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Scan configures POST /v1/scan: whose vulnerability scans and VEX documents are trusted, and
// how scans are read. Scanner and VEX authorities take the same key, KMS and keyless forms as
// `authorities`, in their own lists: constraints of K8sImageVulnerabilities name them
// (scannerAuthorities, vexAuthorities), and the keys stay here.
type Scan struct {
	// Scanners are the authorities whose signed scans (cosign vuln, in-toto vulns attestations,
	// signed SARIF referrers) count.
	Scanners []Authority `json:"scanners,omitempty"`
	// VEXAuthorities are the authorities whose signed OpenVEX attestations may mark findings
	// not_affected or fixed.
	VEXAuthorities []Authority `json:"vexAuthorities,omitempty"`
	// Deadline for a whole /v1/scan batch (default 2.5s).
	Deadline Duration `json:"deadline"`
	// ClockSkew tolerated between a scan's own time and its signature's log time, and the
	// provider's clock (default 2m, at most 1h).
	ClockSkew Duration `json:"clockSkew"`
	// MaxFindings listed per image; the rest are counted and the value says it was truncated
	// (default 100).
	MaxFindings int `json:"maxFindings"`
	// MaxReportBytes caps a report, predicate or VEX document (default 8 MiB). It also bounds
	// the DSSE envelopes and bundles read for scans.
	MaxReportBytes int64 `json:"maxReportBytes"`
	// MaxReportFindings: a report with more findings is refused (default 20,000).
	MaxReportFindings int `json:"maxReportFindings"`
	// SARIF reads SARIF referrers (application/sarif+json); they count only when the referrer
	// itself is signed by a scanner authority (default true).
	SARIF *bool `json:"sarif,omitempty"`
	// TrivyOperator reads Trivy Operator reports from the cluster (default off).
	TrivyOperator TrivyOperator `json:"trivyOperator"`
}

// TrivyOperator configures the Trivy Operator source: VulnerabilityReport and
// ClusterVulnerabilityReport objects, watched with an informer and indexed by
// repository@digest. Its scans are unsigned; constraints accept them by naming the authority
// "trivy-operator".
type TrivyOperator struct {
	Enabled bool `json:"enabled,omitempty"`
	// Namespaces to watch VulnerabilityReports in (empty: all).
	Namespaces []string `json:"namespaces,omitempty"`
	// Resync period of the informer (default 10m).
	Resync Duration `json:"resync"`
}

// Scan defaults.
const (
	DefaultScanDeadline          = 2500 * time.Millisecond
	DefaultScanClockSkew         = 2 * time.Minute
	DefaultScanMaxFindings       = 100
	DefaultScanMaxReportBytes    = 8 << 20
	DefaultScanMaxReportFindings = 20000
	DefaultTrivyOperatorResync   = 10 * time.Minute
	// TrivyOperatorAuthority is the authority name of operator scans; no configured
	// authority may take it.
	TrivyOperatorAuthority = "trivy-operator"
)

// UsesSARIF reports whether SARIF referrers are read (default true).
func (s *Scan) UsesSARIF() bool { return s.SARIF == nil || *s.SARIF }

// applyDefaults fills the scan section's zero fields.
func (s *Scan) applyDefaults() {
	setDur(&s.Deadline, DefaultScanDeadline)
	setDur(&s.ClockSkew, DefaultScanClockSkew)
	setInt(&s.MaxFindings, DefaultScanMaxFindings)
	setInt64(&s.MaxReportBytes, DefaultScanMaxReportBytes)
	setInt(&s.MaxReportFindings, DefaultScanMaxReportFindings)
	setDur(&s.TrivyOperator.Resync, DefaultTrivyOperatorResync)
}

// validateScan checks the scan section: each scanner and VEX authority as `authorities`
// checks its entries (errors name scan.scanners[i]… and scan.vexAuthorities[i]…), names
// unique across both lists and not "trivy-operator", attestations not turned off for a
// scanner, and the limits in range.
func (c *Config) validateScan() error {
	s := &c.Scan
	seen := map[string]string{}
	for _, list := range []struct {
		field string
		auths []Authority
	}{{"scan.scanners", s.Scanners}, {"scan.vexAuthorities", s.VEXAuthorities}} {
		// The authorities' own validation, with the field paths renamed.
		sub := Config{Authorities: list.auths}
		if err := sub.validateAuthorities(); err != nil {
			var fe *FieldError
			if errors.As(err, &fe) {
				return fieldErr(list.field+strings.TrimPrefix(fe.Field, "authorities"), "%s", fe.Problem)
			}
			return fmt.Errorf("%s: %w", list.field, err)
		}
		for i, a := range list.auths {
			p := fmt.Sprintf("%s[%d]", list.field, i)
			if a.Name == TrivyOperatorAuthority {
				return fieldErr(p+".name", "%q is the authority of Trivy Operator reports; choose another name", a.Name)
			}
			if other, dup := seen[a.Name]; dup {
				return fieldErr(p+".name", "duplicate authority name %q (also %s)", a.Name, other)
			}
			seen[a.Name] = p
			if !a.WantsAttestations() {
				return fieldErr(p+".attestations", "scans and VEX documents are attestations; attestations: false would read none")
			}
			if a.VerifyPlatforms {
				return fieldErr(p+".verifyPlatforms", "applies to image signatures only; a platform manifest's scan is read from the platform manifest")
			}
		}
	}
	if err := positive("scan.deadline", s.Deadline, maxDeadline); err != nil {
		return err
	}
	if s.ClockSkew < 0 || s.ClockSkew.D() > time.Hour {
		return fieldErr("scan.clockSkew", "must be between 0 and 1h, got %s", s.ClockSkew.D())
	}
	if s.MaxFindings < 1 || s.MaxFindings > 1000 {
		return fieldErr("scan.maxFindings", "must be between 1 and 1000, got %d", s.MaxFindings)
	}
	if s.MaxReportBytes < 1<<10 || s.MaxReportBytes > 64<<20 {
		return fieldErr("scan.maxReportBytes", "must be between 1 KiB and 64 MiB, got %d", s.MaxReportBytes)
	}
	if s.MaxReportFindings < 1 || s.MaxReportFindings > 200000 {
		return fieldErr("scan.maxReportFindings", "must be between 1 and 200000, got %d", s.MaxReportFindings)
	}
	for i, ns := range s.TrivyOperator.Namespaces {
		if ns == "" || len(ns) > 63 || strings.ToLower(ns) != ns || strings.ContainsAny(ns, " /.") {
			return fieldErr(fmt.Sprintf("scan.trivyOperator.namespaces[%d]", i), "%q is not a namespace name", ns)
		}
	}
	if err := positive("scan.trivyOperator.resync", s.TrivyOperator.Resync, 24*time.Hour); err != nil {
		return err
	}
	return nil
}
