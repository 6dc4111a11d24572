package scan

import (
	"fmt"
	"time"
)

// Candidate is one scan found for a digest, verified or not.
type Candidate struct {
	// Source: attestation, sarif-referrer or trivy-operator.
	Source string
	// Authority that verified the scan's signature ("" when none did); trivy-operator for
	// operator reports.
	Authority string
	// Trusted: verified by a configured scanner authority, or an operator report when the
	// operator source is enabled.
	Trusted bool
	// Signed: a signature verified (false for operator reports).
	Signed bool
	// SignedAt is the signature's transparency-log or timestamp-authority time (zero: none).
	SignedAt time.Time
	Report   *Report
	// Err is why the scan is not usable (verification or decoding); Report is then nil.
	Err error
	// ownsReport: Report was decoded for this candidate alone, so Choose may sort and annotate
	// its findings in place; any other report (an operator report the informer keeps for
	// every lookup, a caller's) has its findings copied first.
	ownsReport bool
}

// Choice configures Choose.
type Choice struct {
	// Now is the current time (required).
	Now time.Time
	// ClockSkew tolerated between a scan's own time and its log time, and the current time.
	ClockSkew time.Duration
	Limits    Limits
}

// Choose builds the value for one image from the scans found for its digest and the trusted
// VEX documents about it. The newest usable signed scan wins (by its own scan time; a scan
// without one is older than any that has one; of two at the same time the one with more
// severe findings). An operator report counts only when no signed scan does. A scan whose
// own time is later than its log time (plus ClockSkew), or later than now, is refused: its
// time is not to be believed, and an old scan re-signed later keeps its old time.
func Choose(image string, subject Subject, cands []Candidate, vex []*VEXDocument, c Choice) *Value {
	lim := c.Limits.withDefaults()
	var best *Candidate
	var usable int
	sawUntrusted, sawTrusted := false, false
	v := notScanned(image, subject.Digest, "")
	for i := range cands {
		cd := &cands[i]
		if !cd.Trusted {
			sawUntrusted = true
			reason := "not verified by a configured scanner authority"
			if cd.Err != nil {
				reason = cd.Err.Error()
			}
			v.reject(cd.Source, reason)
			continue
		}
		sawTrusted = true
		if cd.Err != nil || cd.Report == nil {
			reason := "no report"
			if cd.Err != nil {
				reason = cd.Err.Error()
			}
			v.reject(cd.Source, fmt.Sprintf("authority %s: %s", cd.Authority, reason))
			continue
		}
		if err := checkTimes(cd, c.Now, c.ClockSkew); err != nil {
			v.reject(cd.Source, fmt.Sprintf("authority %s: %v", cd.Authority, err))
			continue
		}
		usable++
		if best == nil || newer(cd, best) {
			best = cd
		}
	}
	switch {
	case best == nil && sawTrusted:
		v.Reason = ReasonUnverifiable
		return v
	case best == nil && sawUntrusted:
		v.Reason = ReasonNoTrustedScan
		return v
	case best == nil:
		v.Reason = ReasonNoScan
		return v
	}
	r := best.Report
	v.Scanned, v.Source, v.Format, v.Authority, v.Signed = true, best.Source, r.Format, best.Authority, best.Signed
	sc := r.Scanner
	v.Scanner = &sc
	v.ScannedAt, v.SignedAt = formatTime(r.ScannedAt), formatTime(best.SignedAt)
	if v.ScannedAt == "" && best.Signed {
		// SARIF records no time: the log's time is the latest the scan can have run.
		v.ScannedAt = v.SignedAt
	}
	v.ScansConsidered = usable
	fs := r.Findings
	if !best.ownsReport {
		fs = make([]Finding, len(r.Findings))
		copy(fs, r.Findings)
	}
	ApplyVEX(fs, subject, vex)
	v.fillFindings(fs, lim.Findings)
	return v
}

func checkTimes(cd *Candidate, now time.Time, skew time.Duration) error {
	t := cd.Report.ScannedAt
	if t.IsZero() {
		return nil
	}
	if !cd.SignedAt.IsZero() && t.After(cd.SignedAt.Add(skew)) {
		return fmt.Errorf("scan time %s is later than its signature's log time %s", formatTime(t), formatTime(cd.SignedAt))
	}
	if !now.IsZero() && t.After(now.Add(skew)) {
		return fmt.Errorf("scan time %s is in the future", formatTime(t))
	}
	return nil
}

// newer reports whether a should replace b as the chosen scan.
func newer(a, b *Candidate) bool {
	if a.Signed != b.Signed {
		return a.Signed
	}
	ta, tb := scanTime(a), scanTime(b)
	if !ta.Equal(tb) {
		return ta.After(tb)
	}
	return severityScore(a.Report) > severityScore(b.Report)
}

func scanTime(c *Candidate) time.Time {
	if !c.Report.ScannedAt.IsZero() {
		return c.Report.ScannedAt
	}
	return c.SignedAt
}

// severityScore orders reports by their findings, worst first: counts per severity compared
// from CRITICAL down, packed into one number.
func severityScore(r *Report) int64 {
	var counts [5]int64
	for i := range r.Findings {
		counts[r.Findings[i].Severity.Rank()]++
	}
	var s int64
	for rank := 4; rank >= 0; rank-- {
		s = s*100000 + min(counts[rank], 99999)
	}
	return s
}
