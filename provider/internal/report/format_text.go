package report

import (
	"encoding/csv"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// writeTable is the default, terminal-friendly format.
func writeTable(w io.Writer, r *Report) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	p := func(format string, args ...any) { fmt.Fprintf(tw, format, args...) }
	p("IMAGETRUST AUDIT REPORT\n")
	for _, l := range evidenceLines(r) {
		p("%s:\t%s\n", l[0], l[1])
	}
	p("\nSUMMARY\n")
	for _, l := range summaryLines(r) {
		p("%s:\t%s\n", l[0], l[1])
	}
	p("\nCONSTRAINT\tACTION\tTOTAL\tSTORED\tLISTED\tLAST AUDIT\tSTATUS\n")
	for _, c := range r.Constraints {
		listed := c.Stored + c.Reevaluated
		p("%s\t%s\t%d\t%d\t%d\t%s\t%s\n", c.ID(), c.EnforcementAction, c.TotalViolations, c.Stored, listed, orNever(c.AuditTimestamp), constraintStatus(c))
	}
	p("\nNAMESPACE\tVIOLATIONS\tOBJECTS\n")
	for _, n := range r.Rollups.ByNamespace {
		p("%s\t%d\t%d\n", n.Key, n.Violations, n.Objects)
	}
	p("\nIMAGE\tVIOLATIONS\tWORKLOADS\tNAMESPACES\tCONSTRAINTS\tPROVIDER FACTS\n")
	for _, i := range r.Rollups.ByImage {
		p("%s\t%d\t%d\t%s\t%s\t%s\n", i.Image, i.Violations, i.Workloads, strings.Join(i.Namespaces, ","), strings.Join(i.Constraints, ","), factsText(i.Facts))
	}
	p("\nWORST OFFENDERS\tVIOLATIONS\tCONSTRAINTS\n")
	for _, o := range r.Rollups.Worst {
		p("%s\t%d\t%s\n", o.Object, o.Violations, strings.Join(o.Constraints, ","))
	}
	p("\nHEALTH\tCHECK\tOBJECT\tMESSAGE\n")
	if len(r.Health) == 0 {
		p("ok\t\t\t\n")
	}
	for _, h := range r.Health {
		p("%s\t%s\t%s\t%s\n", h.Severity, h.Check, h.Object, h.Message)
	}
	if d := r.Diff; d != nil {
		p("\nDIFF since %s (%s): %d new, %d fixed, %d unchanged, %d unverifiable, totalViolations %+d\n",
			d.Since.Format("2006-01-02T15:04:05Z07:00"), d.File, len(d.New), len(d.Fixed), d.Unchanged, d.Unverifiable, d.TotalDelta)
		for _, v := range d.New {
			p("new\t%s\t%s\t%s\n", v.Constraint, v.Object(), v.Message)
		}
		for _, v := range d.Fixed {
			p("fixed\t%s\t%s\t%s\n", v.Constraint, v.Object(), v.Message)
		}
	}
	p("\nCONSTRAINT\tACTION\tOBJECT\tSOURCE\tMESSAGE\n")
	for _, v := range r.Violations {
		p("%s\t%s\t%s\t%s\t%s\n", v.Constraint, v.EnforcementAction, v.Object(), v.Source, v.Message)
	}
	return tw.Flush()
}

// csvHeader is the CSV column list: one row per violation.
var csvHeader = []string{"constraint", "enforcementAction", "group", "version", "kind", "namespace", "name", "container", "image", "source", "message"}

func writeCSV(w io.Writer, r *Report) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(csvHeader); err != nil {
		return err
	}
	for _, v := range r.Violations {
		rec := []string{v.Constraint, v.EnforcementAction, v.Group, v.Version, v.Kind, v.Namespace, v.Name, v.Container, v.Image, v.Source, v.Message}
		for i, f := range rec {
			rec[i] = csvSafe(f)
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// csvSafe keeps spreadsheet programs from reading cluster data as a formula.
func csvSafe(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// newMDEscaper escapes cluster data for a Markdown table cell.
func newMDEscaper() func(string) string {
	r := strings.NewReplacer("|", `\|`, "\n", " ", "<", "&lt;", ">", "&gt;", "`", "\\`", "*", `\*`, "_", `\_`, "[", `\[`, "]", `\]`)
	return r.Replace
}

func writeMarkdown(w io.Writer, r *Report) error {
	mdEscape := newMDEscaper()
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("# Image policy audit report\n\n")
	p("| Evidence | |\n|---|---|\n")
	for _, l := range evidenceLines(r) {
		p("| %s | %s |\n", l[0], mdEscape(l[1]))
	}
	p("\n## Summary\n\n| | |\n|---|---:|\n")
	for _, l := range summaryLines(r) {
		p("| %s | %s |\n", l[0], mdEscape(l[1]))
	}
	p("\n## Constraints\n\n| Constraint | Action | Total | Stored | Listed | Last audit | Status |\n|---|---|---:|---:|---:|---|---|\n")
	for _, c := range r.Constraints {
		p("| %s | %s | %d | %d | %d | %s | %s |\n", mdEscape(c.ID()), c.EnforcementAction, c.TotalViolations, c.Stored, c.Stored+c.Reevaluated, orNever(c.AuditTimestamp), mdEscape(constraintStatus(c)))
	}
	p("\n## By namespace\n\n| Namespace | Violations | Objects |\n|---|---:|---:|\n")
	for _, n := range r.Rollups.ByNamespace {
		p("| %s | %d | %d |\n", mdEscape(n.Key), n.Violations, n.Objects)
	}
	p("\n## By image\n\n| Image | Violations | Workloads | Namespaces | Constraints | Provider facts |\n|---|---:|---:|---|---|---|\n")
	for _, i := range r.Rollups.ByImage {
		p("| %s | %d | %d | %s | %s | %s |\n", mdEscape(i.Image), i.Violations, i.Workloads, mdEscape(strings.Join(i.Namespaces, ", ")), mdEscape(strings.Join(i.Constraints, ", ")), mdEscape(factsText(i.Facts)))
	}
	p("\n## Worst offenders\n\n| Object | Violations | Constraints |\n|---|---:|---|\n")
	for _, o := range r.Rollups.Worst {
		p("| %s | %d | %s |\n", mdEscape(o.Object), o.Violations, mdEscape(strings.Join(o.Constraints, ", ")))
	}
	p("\n## Health\n\n")
	if len(r.Health) == 0 {
		p("No problems found.\n")
	} else {
		p("| Severity | Check | Object | Message |\n|---|---|---|---|\n")
		for _, h := range r.Health {
			p("| %s | %s | %s | %s |\n", h.Severity, h.Check, mdEscape(h.Object), mdEscape(h.Message))
		}
	}
	if d := r.Diff; d != nil {
		p("\n## Changes since %s\n\n%d new, %d fixed, %d unchanged, %d unverifiable; totalViolations %+d.\n\n", d.Since.Format("2006-01-02T15:04:05Z07:00"), len(d.New), len(d.Fixed), d.Unchanged, d.Unverifiable, d.TotalDelta)
		if len(d.New)+len(d.Fixed) > 0 {
			p("| Change | Constraint | Object | Message |\n|---|---|---|---|\n")
			for _, v := range d.New {
				p("| new | %s | %s | %s |\n", mdEscape(v.Constraint), mdEscape(v.Object()), mdEscape(v.Message))
			}
			for _, v := range d.Fixed {
				p("| fixed | %s | %s | %s |\n", mdEscape(v.Constraint), mdEscape(v.Object()), mdEscape(v.Message))
			}
		}
	}
	p("\n## Violations\n\n| Constraint | Action | Object | Source | Message |\n|---|---|---|---|---|\n")
	for _, v := range r.Violations {
		p("| %s | %s | %s | %s | %s |\n", mdEscape(v.Constraint), v.EnforcementAction, mdEscape(v.Object()), v.Source, mdEscape(v.Message))
	}
	_, err := io.WriteString(w, b.String())
	return err
}
