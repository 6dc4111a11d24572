package demo

import (
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"
	"unicode/utf8"
)

// Width is the terminal width the header and the compact table keep to.
const Width = 120

// headerIndent is where the text of a header entry starts, after its label.
const headerIndent = 14

// PrintHeader says what is running, so nobody mistakes the demo for something it is not. Its
// lines fit Width columns.
func PrintHeader(w io.Writer, r *Report) error {
	var b strings.Builder
	fmt.Fprintf(&b, "imagetrust demo: what Gatekeeper would do with %d sample workloads\n\n", len(r.Objects))
	b.WriteString("Running in this process, on loopback only:\n")
	entry := func(label, text string) {
		first := "  " + label + strings.Repeat(" ", max(1, headerIndent-2-len(label)))
		writeLines(&b, Wrap(text, Width, first, strings.Repeat(" ", headerIndent)))
	}
	entry("registry", fmt.Sprintf("go-containerregistry's in-memory registry at %s plays %s "+
		"(the name is replaced by that address in samples and constraints, and shown back as %s below). "+
		"Sample images are signed in cosign's format with the key of authority bank-kms, generated in-process "+
		"(production: a KMS key); two also have a signed SPDX SBOM attestation, one is signed by an unknown key, "+
		"one is unsigned. Every image has a Trivy scan signed by scanner authority ci-trivy (cosign vuln "+
		"attestation): clean, except two images with OpenSSL CVEs.", r.RegistryHost, BankRegistry, BankRegistry))
	entry("provider", fmt.Sprintf("imagetrust-provider's server and services at https://%s: TLS 1.3, "+
		"client certificate required, generated CAs; config %s", r.ProviderAddr, r.ConfigFile))
	entry("mutation", fmt.Sprintf("Gatekeeper's mutation system, the %d Assign mutators of %s "+
		"(tag -> digest via the provider's /v1/mutate; failurePolicy Ignore)", r.Mutators, mutatorsFile))
	entry("validation", "Gatekeeper's constraint framework (Rego, external data over mTLS) reviews the "+
		"mutated object as the validating webhook does, with "+strings.Join(r.Templates, ", "))
	for _, c := range Clusters {
		text := c.Name + " cluster: " + strings.Join(c.Constraints, ", ")
		if len(c.Extra) > 0 {
			var xs []string
			for _, x := range c.Extra {
				xs = append(xs, x.Summary)
			}
			text += fmt.Sprintf(", plus %d demo-only constraints: %s", len(c.Extra), strings.Join(xs, "; "))
		}
		writeLines(&b, Wrap(text, Width, strings.Repeat(" ", headerIndent), strings.Repeat(" ", headerIndent+2)))
	}
	b.WriteString("\nDecision per container: deny (the object is refused), warn (admitted with a warning),\n")
	b.WriteString("mutated (admitted, image pinned to its digest), allow. Digests are shortened.\n\n")
	_, err := io.WriteString(w, b.String())
	return err
}

var digestRE = regexp.MustCompile(`(sha256:[0-9a-f]{12})[0-9a-f]{52}`)

// short abbreviates sha256 digests for display.
func short(s string) string { return digestRE.ReplaceAllString(s, "$1…") }

// reasonRank orders reasons: what decided first (denials, then warnings), then the mutation,
// then the rest.
func reasonRank(s string) int {
	switch {
	case strings.Contains(s, " (deny): "):
		return 0
	case strings.Contains(s, " (warn): "):
		return 1
	case strings.HasPrefix(s, "imagetrust-mutate"):
		return 2
	}
	return 3
}

// displayReasons are a row's reasons in display order, digests shortened; "no violation" when
// there are none.
func displayReasons(row Row) []string {
	reasons := make([]string, 0, len(row.Reasons))
	for _, rs := range row.Reasons {
		reasons = append(reasons, short(rs))
	}
	sort.SliceStable(reasons, func(i, j int) bool { return reasonRank(reasons[i]) < reasonRank(reasons[j]) })
	if len(reasons) == 0 {
		reasons = []string{"no violation"}
	}
	return reasons
}

// PrintTable writes the wide table (imagetrust-demo -wide): one line per container with its
// first reason beside it (further reasons continue on the next lines, in the REASON column),
// each object introduced by its scenario, then the summary line. Nothing is wrapped or cut.
func PrintTable(w io.Writer, r *Report) error {
	head := []string{"OBJECT", "CONTAINER", "IMAGE (as written)", "DECISION"}
	width := make([]int, len(head))
	for i, h := range head {
		width[i] = len(h)
	}
	cells := func(o Object, row Row) []string {
		return []string{o.Name, row.Container, short(row.Image), string(row.Decision)}
	}
	for _, o := range r.Objects {
		for _, row := range o.Rows {
			for i, c := range cells(o, row) {
				width[i] = max(width[i], len([]rune(c)))
			}
		}
	}
	var b strings.Builder
	line := func(cols []string, reason string) {
		for i, c := range cols {
			b.WriteString(c)
			b.WriteString(strings.Repeat(" ", width[i]-len([]rune(c))+2))
		}
		b.WriteString(reason)
		b.WriteString("\n")
	}
	line(head, "REASON")
	blank := make([]string, len(head))
	for _, o := range r.Objects {
		verdict := "admitted"
		if !o.Admitted {
			verdict = "DENIED"
		}
		fmt.Fprintf(&b, "-- %s [%s cluster] %s: %s\n", o.Name, o.Cluster, verdict, o.Scenario)
		for _, row := range o.Rows {
			reasons := displayReasons(row)
			line(cells(o, row), reasons[0])
			for _, rs := range reasons[1:] {
				line(blank, rs)
			}
		}
	}
	b.WriteString("\n" + Summary(r) + "\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// Compact table layout: rows are indented under their object's line, reasons under the row.
const (
	rowIndent    = "   "
	reasonIndent = "     - "
	reasonCont   = "       "
)

// PrintCompact writes the table for a terminal of width columns (imagetrust-demo's default):
// each object's scenario line, one short line per container (decision, container, image as
// written) and the container's reasons beneath it, each on its own lines. Long text is
// wrapped, never cut, so no line is wider than width.
func PrintCompact(w io.Writer, r *Report, width int) error {
	if width < 40 {
		return fmt.Errorf("table width %d is too narrow; use at least 40 columns", width)
	}
	head := []string{"DECISION", "CONTAINER"}
	colw := []int{len(head[0]), len(head[1])}
	for _, o := range r.Objects {
		for _, row := range o.Rows {
			colw[0] = max(colw[0], utf8.RuneCountInString(string(row.Decision)))
			colw[1] = max(colw[1], utf8.RuneCountInString(row.Container))
		}
	}
	var b strings.Builder
	row := func(decision, container, image string) {
		first := rowIndent + pad(decision, colw[0]) + "  " + pad(container, colw[1]) + "  "
		if utf8.RuneCountInString(first) > width/2 {
			first = rowIndent + decision + "  " + container + "  "
		}
		writeLines(&b, Wrap(image, width, first, strings.Repeat(" ", utf8.RuneCountInString(first))))
	}
	writeLines(&b, Wrap("Reasons are listed under each container; imagetrust-demo -wide prints one line per container.", width, "", ""))
	row(head[0], head[1], "IMAGE (as written)")
	for _, o := range r.Objects {
		verdict := "admitted"
		if !o.Admitted {
			verdict = "DENIED"
		}
		writeLines(&b, Wrap(fmt.Sprintf("-- %s [%s cluster] %s: %s", o.Name, o.Cluster, verdict, o.Scenario), width, "", rowIndent))
		for _, rw := range o.Rows {
			row(string(rw.Decision), rw.Container, short(rw.Image))
			for _, rs := range displayReasons(rw) {
				writeLines(&b, Wrap(rs, width, reasonIndent, reasonCont))
			}
		}
	}
	b.WriteString("\n")
	writeLines(&b, Wrap(Summary(r), width, "", "  "))
	_, err := io.WriteString(w, b.String())
	return err
}

// pad fills s with spaces to n columns.
func pad(s string, n int) string {
	return s + strings.Repeat(" ", max(0, n-utf8.RuneCountInString(s)))
}

// Wrap breaks text into lines of at most width columns (runes): the first line starts with
// first, the others with rest. Words break at spaces; a word longer than a whole line is split.
func Wrap(text string, width int, first, rest string) []string {
	var lines []string
	prefix := first
	cur := prefix
	n := utf8.RuneCountInString(cur)
	empty := true // cur holds no word yet
	flush := func() {
		lines = append(lines, strings.TrimRight(cur, " "))
		prefix = rest
		cur, n, empty = prefix, utf8.RuneCountInString(prefix), true
	}
	for _, word := range strings.Fields(text) {
		wl := utf8.RuneCountInString(word)
		if !empty && n+1+wl > width {
			flush()
		}
		if !empty {
			cur += " "
			n++
		}
		for n+wl > width && width-n > 0 {
			// The word does not fit even on a line of its own: split it.
			rs := []rune(word)
			cut := width - n
			cur += string(rs[:cut])
			word = string(rs[cut:])
			wl -= cut
			flush()
		}
		cur += word
		n += wl
		empty = false
	}
	if !empty || len(lines) == 0 {
		lines = append(lines, strings.TrimRight(cur, " "))
	}
	return lines
}

// writeLines writes each line followed by a newline.
func writeLines(b *strings.Builder, lines []string) {
	for _, l := range lines {
		b.WriteString(l)
		b.WriteString("\n")
	}
}

// Summary is the one-line outcome.
func Summary(r *Report) string {
	n := map[Decision]int{}
	rows, admitted := 0, 0
	for _, o := range r.Objects {
		if o.Admitted {
			admitted++
		}
		for _, row := range o.Rows {
			n[row.Decision]++
			rows++
		}
	}
	return fmt.Sprintf("summary: %d objects (%d admitted, %d denied), %d containers: %d allow, %d mutated, %d warn, %d deny; provider requests over mTLS: %d mutate, %d verify, %d scan; %.1fs",
		len(r.Objects), admitted, len(r.Objects)-admitted, rows, n[Allow], n[Mutated], n[Warn], n[Deny],
		r.Requests["mutate"], r.Requests["verify"], r.Requests["scan"], r.Elapsed.Seconds())
}
