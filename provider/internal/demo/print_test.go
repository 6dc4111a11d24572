package demo

// The printers alone, on a report written here (the whole demo runs in demo_test.go and in
// cmd/imagetrust-demo's tests).

import (
	"bytes"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestWrap(t *testing.T) {
	tests := []struct {
		text, first, rest string
		width             int
		want              []string
	}{
		{"short text", "", "", 20, []string{"short text"}},
		{"one two three four", "", "  ", 9, []string{"one two", "  three", "  four"}},
		{"one two", "- ", "  ", 20, []string{"- one two"}},
		{"", "- ", "  ", 20, []string{"-"}},
		{"abcdefghij", "> ", "  ", 6, []string{"> abcd", "  efgh", "  ij"}},
		{"a abcdefghij b", "", "", 4, []string{"a", "abcd", "efgh", "ij b"}},
		{"word  spaced\ttext", "", "", 40, []string{"word spaced text"}},
	}
	for _, tc := range tests {
		got := Wrap(tc.text, tc.width, tc.first, tc.rest)
		if strings.Join(got, "|") != strings.Join(tc.want, "|") {
			t.Errorf("Wrap(%q, %d, %q, %q) = %q, want %q", tc.text, tc.width, tc.first, tc.rest, got, tc.want)
		}
	}
}

func sampleReport() *Report {
	long := "registry.bank.internal/" + strings.Repeat("very-long-repository-name/", 6) + "app:1.0"
	return &Report{
		RegistryHost: "127.0.0.1:5000", ProviderAddr: "127.0.0.1:8443", ConfigFile: "/tmp/demo/provider.yaml",
		Templates: []string{"templates/base.yaml"}, Mutators: 7,
		Requests: map[string]int{"mutate": 1, "verify": 2}, Elapsed: 1500 * time.Millisecond,
		Objects: []Object{{
			Cluster: "bank", Name: "Deployment payments/api", Admitted: false,
			Scenario: "a scenario long enough to need a second line at every width the test tries, " +
				"because it goes on and on about what the sample shows",
			Rows: []Row{
				{Container: "api", Image: long, Decision: Deny, Reasons: []string{
					"other (warn): a warning",
					"bank-kms-signed (deny): is not signed by required authority <bank-kms>; found no verified signature " +
						"(rejected: <bank-kms: invalid signature when validating ASN.1 encoded signature>)",
				}},
				{Container: "init:migrate", Image: "registry.bank.internal/payments/migrate:1.8.0", Decision: Allow},
			},
		}},
	}
}

func TestPrintCompactKeepsToTheWidth(t *testing.T) {
	rep := sampleReport()
	for _, width := range []int{40, 80, 120} {
		var out bytes.Buffer
		if err := PrintCompact(&out, rep, width); err != nil {
			t.Fatalf("PrintCompact(width %d) = %v", width, err)
		}
		for i, line := range strings.Split(out.String(), "\n") {
			if n := utf8.RuneCountInString(line); n > width {
				t.Errorf("PrintCompact(width %d) line %d is %d columns:\n%s", width, i+1, n, line)
			}
		}
		// Nothing is cut: the words of every reason, the image and the scenario are all there,
		// in order.
		words := strings.Fields(out.String())
		text := strings.Join(words, " ")
		for _, want := range []string{
			rep.Objects[0].Scenario, "no violation", "other (warn): a warning",
			rep.Objects[0].Rows[0].Reasons[1],
			"summary: 1 objects (0 admitted, 1 denied), 2 containers: 1 allow, 0 mutated, 0 warn, 1 deny; provider requests over mTLS: 1 mutate, 2 verify, 0 scan; 1.5s",
		} {
			if !strings.Contains(text, want) {
				t.Errorf("PrintCompact(width %d) lacks %q:\n%s", width, want, out.String())
			}
		}
		// The image, longer than a line, is split at the width and continued under itself.
		// At 40 columns the row's columns are not padded (they would take over half the line).
		prefix := len(rowIndent + "DECISION  init:migrate  ")
		if prefix > width/2 {
			prefix = len(rowIndent + "deny  api  ")
		}
		indent := "\n" + strings.Repeat(" ", prefix)
		if joined := strings.ReplaceAll(out.String(), indent, ""); !strings.Contains(joined, rep.Objects[0].Rows[0].Image) {
			t.Errorf("PrintCompact(width %d) lacks the image %q:\n%s", width, rep.Objects[0].Rows[0].Image, out.String())
		}
		// Denials come before warnings under a container.
		if d, w := strings.Index(out.String(), "bank-kms-signed (deny)"), strings.Index(out.String(), "other (warn)"); d > w {
			t.Errorf("PrintCompact(width %d) lists the warning before the denial:\n%s", width, out.String())
		}
	}
}

func TestPrintCompactTooNarrow(t *testing.T) {
	var out bytes.Buffer
	err := PrintCompact(&out, sampleReport(), 39)
	if err == nil || !strings.Contains(err.Error(), "table width 39 is too narrow") {
		t.Errorf("PrintCompact(width 39) = %v, want an error naming the width", err)
	}
}

func TestPrintHeaderKeepsToTheWidth(t *testing.T) {
	rep := sampleReport()
	rep.ConfigFile = "/tmp/" + strings.Repeat("a-very-long-directory-name/", 6) + "provider.yaml"
	rep.Templates = []string{"templates/base.yaml", "templates/digest.yaml", "templates/verification.yaml", "templates/security.yaml"}
	var out bytes.Buffer
	if err := PrintHeader(&out, rep); err != nil {
		t.Fatal(err)
	}
	for i, line := range strings.Split(out.String(), "\n") {
		if n := utf8.RuneCountInString(line); n > Width {
			t.Errorf("PrintHeader() line %d is %d columns:\n%s", i+1, n, line)
		}
	}
	for _, want := range []string{
		"  registry    go-containerregistry's in-memory registry at 127.0.0.1:5000 plays registry.bank.internal",
		"  validation  Gatekeeper's constraint framework",
		"              bank cluster: constraints/base/bank.yaml",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("PrintHeader() lacks %q:\n%s", want, out.String())
		}
	}
}
