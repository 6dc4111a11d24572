package scan

// Limits cap what one report may hold. Zero fields take the defaults.
type Limits struct {
	// ReportBytes: a report, predicate or VEX document (default 8 MiB).
	ReportBytes int64
	// ReportFindings: findings read from one report (default 20,000); a report with more is
	// refused as too large rather than read in part.
	ReportFindings int
	// Findings listed in the value (default 100); the rest are counted, and the value says
	// it was truncated.
	Findings int
}

func (l Limits) withDefaults() Limits {
	if l.ReportBytes <= 0 {
		l.ReportBytes = 8 << 20
	}
	if l.ReportFindings <= 0 {
		l.ReportFindings = 20000
	}
	if l.Findings <= 0 {
		l.Findings = 100
	}
	return l
}
