package demo

import (
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"
)

// PrintHeader says what is running, so nobody mistakes the demo for something it is not.
func PrintHeader(w io.Writer, r *Report) error {
	var b strings.Builder
	fmt.Fprintf(&b, "imagetrust demo: what Gatekeeper would do with %d sample workloads\n\n", len(r.Objects))
	fmt.Fprintf(&b, "Running in this process, on loopback only:\n")
	fmt.Fprintf(&b, "  registry    go-containerregistry's in-memory registry at %s plays %s\n", r.RegistryHost, BankRegistry)
	fmt.Fprintf(&b, "              (the name is replaced by that address in samples and constraints, and shown\n")
	fmt.Fprintf(&b, "              back as %s below). Sample images are signed in cosign's format with\n", BankRegistry)
	fmt.Fprintf(&b, "              the key of authority bank-kms, generated in-process (production: a KMS key);\n")
	fmt.Fprintf(&b, "              one also has a signed SPDX SBOM attestation, one is signed by an unknown key,\n")
	fmt.Fprintf(&b, "              one is unsigned.\n")
	fmt.Fprintf(&b, "  provider    imagetrust-provider's server and services at https://%s: TLS 1.3,\n", r.ProviderAddr)
	fmt.Fprintf(&b, "              client certificate required, generated CAs; config %s\n", r.ConfigFile)
	fmt.Fprintf(&b, "  mutation    Gatekeeper's mutation system, the %d Assign mutators of %s\n", r.Mutators, mutatorsFile)
	fmt.Fprintf(&b, "              (tag -> digest via the provider's /v1/mutate; failurePolicy Ignore)\n")
	fmt.Fprintf(&b, "  validation  Gatekeeper's constraint framework (Rego, external data over mTLS) reviews the\n")
	fmt.Fprintf(&b, "              mutated object as the validating webhook does, with %s\n", strings.Join(r.Templates, ", "))
	for _, c := range Clusters {
		fmt.Fprintf(&b, "              %s cluster: %s", c.Name, strings.Join(c.Constraints, ", "))
		if len(c.Extra) > 0 {
			fmt.Fprintf(&b, ",\n                plus %d demo-only constraint: warn when an image has no SBOM (namespace reporting)", len(c.Extra))
		}
		b.WriteString("\n")
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

// PrintTable writes one row per container (further reasons continue on the next lines), each
// object introduced by its scenario, then the summary line.
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
			reasons := append([]string(nil), row.Reasons...)
			sort.SliceStable(reasons, func(i, j int) bool { return reasonRank(reasons[i]) < reasonRank(reasons[j]) })
			if len(reasons) == 0 {
				reasons = []string{"no violation"}
			}
			line(cells(o, row), short(reasons[0]))
			for _, rs := range reasons[1:] {
				line(blank, short(rs))
			}
		}
	}
	b.WriteString("\n" + Summary(r) + "\n")
	_, err := io.WriteString(w, b.String())
	return err
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
	return fmt.Sprintf("summary: %d objects (%d admitted, %d denied), %d containers: %d allow, %d mutated, %d warn, %d deny; provider requests over mTLS: %d mutate, %d verify; %.1fs",
		len(r.Objects), admitted, len(r.Objects)-admitted, rows, n[Allow], n[Mutated], n[Warn], n[Deny],
		r.Requests["mutate"], r.Requests["verify"], r.Elapsed.Seconds())
}
