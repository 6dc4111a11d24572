package report

import (
	"fmt"
	"time"
)

// HealthOptions configure the health checks.
type HealthOptions struct {
	// AuditInterval is Gatekeeper's --audit-interval; an audit older than twice this is stale
	// (optional; default 60 s).
	AuditInterval time.Duration
	// Now is the clock (optional; default the report's generation time).
	Now time.Time
}

// Health checks, by name.
const (
	CheckNotAudited    = "not-audited"
	CheckStaleAudit    = "stale-audit"
	CheckPodError      = "bypod-error"
	CheckNotEnforced   = "not-enforced"
	CheckGenerationLag = "generation-lag"
	CheckNoPodStatus   = "no-pod-status"
	CheckTemplate      = "template-error"
	CheckProvider      = "provider-error"
	CheckMismatch      = "count-mismatch"
	CheckCapped        = "capped"
)

// Health finds what makes the audit results untrustworthy or incomplete.
func Health(r *Report, o HealthOptions) []Finding {
	if o.AuditInterval <= 0 {
		o.AuditInterval = 60 * time.Second
	}
	if o.Now.IsZero() {
		o.Now = r.Evidence.GeneratedAt
	}
	var out []Finding
	add := func(sev, check, obj, format string, args ...any) {
		out = append(out, Finding{Severity: sev, Check: check, Object: obj, Message: fmt.Sprintf(format, args...)})
	}
	for _, t := range r.Templates {
		obj := "ConstraintTemplate/" + t.Name
		if !t.Created {
			add(SeverityError, CheckTemplate, obj, "template is not created (status.created is false): its constraints are not enforced or audited")
		}
		for _, e := range t.Errors {
			add(SeverityError, CheckTemplate, obj, "%s", e)
		}
	}
	for _, p := range r.Providers {
		for _, e := range p.Errors {
			add(SeverityError, CheckProvider, "Provider/"+p.Name, "%s", e)
		}
	}
	for _, c := range r.Constraints {
		obj := c.ID()
		switch ts, err := time.Parse(time.RFC3339, c.AuditTimestamp); {
		case !c.Audited:
			add(SeverityWarning, CheckNotAudited, obj, "no audit has reported on this constraint yet (status.auditTimestamp is empty)")
		case err != nil:
			add(SeverityError, CheckStaleAudit, obj, "status.auditTimestamp %q is not an RFC 3339 time: %v", c.AuditTimestamp, err)
		case o.Now.Sub(ts) > 2*o.AuditInterval:
			add(SeverityError, CheckStaleAudit, obj, "last audit %s is %s old, more than twice the audit interval %s: is the audit pod running?",
				c.AuditTimestamp, o.Now.Sub(ts).Round(time.Second), o.AuditInterval)
		}
		if len(c.ByPod) == 0 {
			add(SeverityWarning, CheckNoPodStatus, obj, "no Gatekeeper pod reports this constraint (status.byPod is empty)")
		}
		for _, p := range c.ByPod {
			for _, e := range p.Errors {
				add(SeverityError, CheckPodError, obj, "pod %s: %s", p.ID, e)
			}
			if !p.Enforced {
				add(SeverityError, CheckNotEnforced, obj, "pod %s does not enforce this constraint (enforced: false)", p.ID)
			}
			if c.Generation > 0 && p.ObservedGeneration < c.Generation {
				add(SeverityWarning, CheckGenerationLag, obj, "pod %s has seen generation %d of %d", p.ID, p.ObservedGeneration, c.Generation)
			}
		}
		if c.Mismatch != "" {
			add(SeverityWarning, CheckMismatch, obj, "%s", c.Mismatch)
		}
		if c.Capped() && !c.Completed {
			add(SeverityWarning, CheckCapped, obj, "status lists %d of %d violations (--constraint-violations-limit); run with --complete to list the rest", c.Stored, c.TotalViolations)
		}
	}
	return out
}
