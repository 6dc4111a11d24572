package report

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
)

// Formats, by -format name.
const (
	FormatTable       = "table"
	FormatJSON        = "json"
	FormatCSV         = "csv"
	FormatMarkdown    = "markdown"
	FormatHTML        = "html"
	FormatOpenReports = "openreports"
	FormatPolicyRep   = "policyreport"
)

// Formats lists every format name.
var Formats = []string{FormatTable, FormatJSON, FormatCSV, FormatMarkdown, FormatHTML, FormatOpenReports, FormatPolicyRep}

// UnknownFormatError names a format that does not exist.
type UnknownFormatError struct{ Format string }

func (e *UnknownFormatError) Error() string {
	return fmt.Sprintf("unknown format %q (formats: %s)", e.Format, strings.Join(Formats, ", "))
}

// Write renders r in format to w.
func Write(w io.Writer, r *Report, format string) error {
	switch format {
	case FormatTable, "":
		return writeTable(w, r)
	case FormatJSON:
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	case FormatCSV:
		return writeCSV(w, r)
	case FormatMarkdown, "md":
		return writeMarkdown(w, r)
	case FormatHTML:
		return writeHTML(w, r)
	case FormatOpenReports, FormatPolicyRep:
		objs, err := PolicyReports(r, flavourOf(format))
		if err != nil {
			return err
		}
		return writeYAMLStream(w, objs)
	}
	return &UnknownFormatError{Format: format}
}

func flavourOf(format string) Flavour {
	if format == FormatPolicyRep {
		return WGPolicy
	}
	return OpenReports
}

// evidenceLines is the evidence header as label/value pairs, shared by the text formats.
func evidenceLines(r *Report) [][2]string {
	e := r.Evidence
	mode := "constraint status only"
	if e.Complete {
		mode = "status, completed by re-evaluation beyond the violations limit"
	}
	scope := "imagetrust constraint kinds"
	if e.AllConstraints {
		scope = "every Gatekeeper constraint kind"
	}
	tmpl := make([]string, 0, len(e.Templates))
	for _, t := range e.Templates {
		v := t.Version
		if v == "" {
			v = "unversioned"
		}
		tmpl = append(tmpl, fmt.Sprintf("%s %s sha256:%s", t.Name, v, short(t.SHA256)))
	}
	return [][2]string{
		{"Generated", e.GeneratedAt.Format("2006-01-02T15:04:05Z07:00")},
		{"Cluster", e.Cluster},
		{"Context", e.Context},
		{"API server", e.Server + " (Kubernetes " + e.KubernetesVersion + ")"},
		{"Gatekeeper", e.GatekeeperVersion},
		{"Audit interval", e.AuditInterval},
		{"Source", mode},
		{"Scope", scope},
		{"Templates", strings.Join(tmpl, "; ")},
		{"Constraints", strings.Join(e.Constraints, ", ")},
	}
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

// summaryLines are the headline numbers as label/value pairs.
func summaryLines(r *Report) [][2]string {
	s := r.Summary
	return [][2]string{
		{"Total violations (Gatekeeper)", fmt.Sprint(s.TotalViolations)},
		{"Listed", fmt.Sprintf("%d (%d from status, %d re-evaluated)", s.Listed, s.FromStatus, s.Reevaluated)},
		{"Not listed", fmt.Sprint(s.Unlisted)},
		{"Count mismatches", fmt.Sprint(s.Mismatches)},
		{"Constraints", fmt.Sprint(s.Constraints)},
		{"Namespaces", fmt.Sprint(s.Namespaces)},
		{"Images", fmt.Sprint(s.Images)},
		{"Health problems", fmt.Sprint(s.Problems)},
	}
}

// factsText summarises provider facts.
func factsText(f *ImageFacts) string {
	if f == nil {
		return ""
	}
	parts := []string{"signed: " + f.Signed}
	if f.Digest != "" {
		parts = append([]string{f.Digest}, parts...)
	}
	if f.Scan != "" {
		parts = append(parts, "scan: "+f.Scan)
	}
	if len(f.Errors) > 0 {
		parts = append(parts, "errors: "+strings.Join(f.Errors, "; "))
	}
	return strings.Join(parts, ", ")
}

// constraintStatus is the one-line completeness of a constraint.
func constraintStatus(c Constraint) string {
	switch {
	case !c.Audited:
		return "not audited"
	case c.Mismatch != "":
		return "mismatch"
	case c.Completed:
		return "complete (re-evaluated)"
	case c.Capped():
		return fmt.Sprintf("capped: %d of %d", c.Stored, c.TotalViolations)
	}
	return "complete"
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
