package scan

import (
	"slices"
	"strconv"
	"strings"
)

// Severity is a normalised severity: CRITICAL, HIGH, MEDIUM, LOW or UNKNOWN. Trivy, Grype,
// SARIF, in-toto vulns and the Trivy Operator all map onto these five.
type Severity string

// The severities, worst first.
const (
	Critical Severity = "CRITICAL"
	High     Severity = "HIGH"
	Medium   Severity = "MEDIUM"
	Low      Severity = "LOW"
	Unknown  Severity = "UNKNOWN"
)

// Severities lists every severity, worst first (the order of counts in the value).
var Severities = [...]Severity{Critical, High, Medium, Low, Unknown}

// Rank orders severities: CRITICAL 4, HIGH 3, MEDIUM 2, LOW 1, UNKNOWN 0 (as Trivy orders them).
func (s Severity) Rank() int {
	switch s {
	case Critical:
		return 4
	case High:
		return 3
	case Medium:
		return 2
	case Low:
		return 1
	}
	return 0
}

// known reports whether s is one of the five severities.
func (s Severity) known() bool { return slices.Contains(Severities[:], s) }

// ParseSeverity normalises a scanner's severity word, case-insensitively: Trivy's
// UNKNOWN/LOW/MEDIUM/HIGH/CRITICAL, Grype's Negligible/Low/Medium/High/Critical/Unknown (Negligible
// is LOW), OpenVEX/in-toto words, and CVSS scores ("7.5": the CVSS v3 rating bands). Anything
// else is UNKNOWN.
func ParseSeverity(s string) Severity {
	t := strings.TrimSpace(s)
	if t == "" {
		return Unknown
	}
	// ASCII is compared case-insensitively in place: an upper-cased copy would be an
	// allocation per finding of every scanner that writes "Medium". Anything else is
	// upper-cased as Unicode does it ("hıgh" is HIGH), which EqualFold alone does not.
	if !isASCII(t) {
		t = strings.ToUpper(t)
	}
	for _, w := range severityWords {
		if strings.EqualFold(t, w.word) {
			return w.sev
		}
	}
	if !maybeNumber(t) {
		return Unknown
	}
	if f, err := strconv.ParseFloat(t, 64); err == nil {
		return fromCVSS(f)
	}
	return Unknown
}

// severityWords are the words ParseSeverity knows, the common ones first.
var severityWords = [...]struct {
	word string
	sev  Severity
}{
	{"CRITICAL", Critical}, {"HIGH", High}, {"MEDIUM", Medium}, {"LOW", Low}, {"UNKNOWN", Unknown},
	{"IMPORTANT", High}, {"MODERATE", Medium}, {"NEGLIGIBLE", Low}, {"MINOR", Low},
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// maybeNumber reports whether t (not empty) can be a decimal number: a word cannot, and
// ParseFloat's error for one would be an allocation per finding. ParseFloat also reads "Inf"
// and "NaN", which fromCVSS maps to UNKNOWN anyway.
func maybeNumber(t string) bool {
	c := t[0]
	return c >= '0' && c <= '9' || c == '.' || c == '+' || c == '-'
}

// fromCVSS maps a CVSS v3 base score onto its rating band (0.0 "None" is UNKNOWN).
func fromCVSS(f float64) Severity {
	switch {
	case f >= 9.0 && f <= 10.0:
		return Critical
	case f >= 7.0 && f < 9.0:
		return High
	case f >= 4.0 && f < 7.0:
		return Medium
	case f > 0 && f < 4.0:
		return Low
	}
	return Unknown
}

// worse returns the worse of a and b.
func worse(a, b Severity) Severity {
	if b.Rank() > a.Rank() {
		return b
	}
	return a
}
