package demo

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// PrintHeader says what is running, so nobody mistakes the demo for something it is not.
func PrintHeader(w io.Writer, r *Report) error {
	var b strings.Builder
	fmt.Fprintf(&b, "imagetrust demo — what Gatekeeper would do with %d sample workloads\n\n", len(r.Objects))
	fmt.Fprintf(&b, "Running in this process (loopback only, nothing leaves the machine):\n")
	fmt.Fprintf(&b, "  registry   go-containerregistry's in-memory registry at %s, playing %s;\n", r.RegistryHost, BankRegistry)
	fmt.Fprintf(&b, "             sample images pushed, most signed (cosign format) with the key of authority\n")
	fmt.Fprintf(&b, "             bank-kms, generated in-process (production keeps it in a KMS); one signed by an\n")
	fmt.Fprintf(&b, "             unknown key, one unsigned. %s is replaced by %s in the samples\n", BankRegistry, r.RegistryHost)
	fmt.Fprintf(&b, "             and constraints before review, and shown as %s below.\n", BankRegistry)
	fmt.Fprintf(&b, "  provider   imagetrust-provider's server and services on https://%s (TLS 1.3, client\n", r.ProviderAddr)
	fmt.Fprintf(&b, "             certificate required; generated CAs), config %s\n", r.ConfigFile)
	fmt.Fprintf(&b, "  mutation   Gatekeeper's mutation system with the %d Assign mutators of %s\n", r.Mutators, mutatorsFile)
	fmt.Fprintf(&b, "             (tag -> digest through /v1/mutate, failurePolicy Ignore)\n")
	fmt.Fprintf(&b, "  validation Gatekeeper's constraint framework (Rego driver, external data over mTLS with\n")
	fmt.Fprintf(&b, "             a client certificate) reviewing the mutated object, as the validating webhook does:\n")
	fmt.Fprintf(&b, "             templates %s\n", strings.Join(r.Templates, ", "))
	for _, c := range Clusters {
		fmt.Fprintf(&b, "             %s cluster: %s", c.Name, strings.Join(c.Constraints, ", "))
		if len(c.Extra) > 0 {
			fmt.Fprintf(&b, " + %d demo-only constraint (warn: SBOM required in namespace reporting)", len(c.Extra))
		}
		b.WriteString("\n")
	}
	b.WriteString("Decision per container: deny (the object is refused), warn (admitted with a warning),\n")
	b.WriteString("mutated (admitted, image pinned to its digest), allow.\n\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// PrintTable writes one row per container (reasons continue on further lines), then the
// summary line.
func PrintTable(w io.Writer, r *Report) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "OBJECT\tCONTAINER\tIMAGE (as written)\tDECISION\tREASON")
	for _, o := range r.Objects {
		verdict := "admitted"
		if !o.Admitted {
			verdict = "DENIED"
		}
		fmt.Fprintf(tw, "# [%s] %s — %s: %s\t\t\t\t\n", o.Cluster, o.Name, verdict, o.Scenario)
		for _, row := range o.Rows {
			reasons := row.Reasons
			if len(reasons) == 0 {
				reasons = []string{"no violation"}
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", o.Name, row.Container, row.Image, row.Decision, reasons[0])
			for _, rs := range reasons[1:] {
				fmt.Fprintf(tw, "\t\t\t\t%s\n", rs)
			}
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintln(w, "\n"+Summary(r))
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
	return fmt.Sprintf("summary: %d objects (%d admitted, %d denied), %d containers: %d allow, %d mutated, %d warn, %d deny; %.1fs",
		len(r.Objects), admitted, len(r.Objects)-admitted, rows, n[Allow], n[Mutated], n[Warn], n[Deny], r.Elapsed.Seconds())
}
