package check

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// Formats are the output formats of WriteReport.
var Formats = []string{"text", "json", "sarif", "junit", "github"}

// WriteOptions configure WriteReport.
type WriteOptions struct {
	// Format is one of Formats (default text).
	Format string
	// Rollup adds the per-image rollup to text output (json always has it).
	Rollup bool
	// Version is the tool version written into SARIF.
	Version string
}

// WriteReport writes rep in the chosen format.
func WriteReport(w io.Writer, rep *Report, o WriteOptions) error {
	bw := bufio.NewWriter(w)
	var err error
	switch o.Format {
	case "", "text":
		err = writeText(bw, rep, o.Rollup)
	case "json":
		enc := json.NewEncoder(bw)
		enc.SetIndent("", "  ")
		err = enc.Encode(rep)
	case "sarif":
		err = writeSARIF(bw, rep, o.Version)
	case "junit":
		err = writeJUnit(bw, rep)
	case "github":
		err = writeGitHub(bw, rep)
	default:
		return fmt.Errorf("unknown output format %q (want one of %s)", o.Format, strings.Join(Formats, ", "))
	}
	if err != nil {
		return err
	}
	return bw.Flush()
}

func writeText(w io.Writer, rep *Report, rollup bool) error {
	for _, f := range rep.Findings {
		where := f.Object
		if f.Container != "" {
			where += " container " + f.Container
		}
		if _, err := fmt.Fprintf(w, "%s:%d:%d: %s %s: %s: %s\n", f.File, f.Line, f.Column, f.Action, f.Constraint, where, f.Message); err != nil {
			return err
		}
	}
	if rollup && len(rep.Images) > 0 {
		fmt.Fprintln(w, "\nimages:")
		for _, r := range rep.Images {
			fmt.Fprintf(w, "  %s: %d finding(s), %d deny [%s]\n", r.Image, r.Findings, r.Deny, strings.Join(r.Constraints, ", "))
			for _, o := range r.Objects {
				fmt.Fprintf(w, "    used by %s\n", o)
			}
		}
	}
	for _, inc := range rep.Incomplete {
		fmt.Fprintf(w, "incomplete: %s\n", inc)
	}
	undecided := ""
	if rep.Summary.Incomplete > 0 {
		undecided = fmt.Sprintf(", %d incomplete", rep.Summary.Incomplete)
	}
	_, err := fmt.Fprintf(w, "%d object(s) checked: %d deny, %d warn, %d dryrun%s\n", rep.Objects, rep.Summary.Deny, rep.Summary.Warn, rep.Summary.DryRun, undecided)
	return err
}

// writeGitHub writes GitHub Actions workflow commands: one annotation per finding on the image
// line (deny and incomplete: error, warn: warning, dryrun: notice), then an error per provider
// failure.
func writeGitHub(w io.Writer, rep *Report) error {
	for _, f := range rep.Findings {
		level := "notice"
		switch f.Action {
		case ActionDeny, ActionIncomplete:
			level = "error"
		case ActionWarn:
			level = "warning"
		}
		msg := f.Object
		if f.Container != "" {
			msg += " container " + f.Container
		}
		msg += ": " + f.Message
		if _, err := fmt.Fprintf(w, "::%s file=%s,line=%d,col=%d,title=%s::%s\n", level,
			ghProperty(f.File), f.Line, f.Column, ghProperty(f.Action+" "+f.Constraint), ghData(msg)); err != nil {
			return err
		}
	}
	for _, inc := range rep.Incomplete {
		if _, err := fmt.Fprintf(w, "::error title=imagetrust check incomplete::%s\n", ghData(inc)); err != nil {
			return err
		}
	}
	return nil
}

// ghData escapes a workflow command's message (actions/toolkit escapeData).
func ghData(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A").Replace(s)
}

// ghProperty escapes a workflow command's property value (actions/toolkit escapeProperty).
func ghProperty(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A", ":", "%3A", ",", "%2C").Replace(s)
}
