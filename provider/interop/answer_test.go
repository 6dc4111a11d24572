//go:build interop

package interop

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/imagetrust/imagetrust/provider/internal/scan"
)

// answer is a /v1/verify value as it crosses the wire (docs/verification.md).
type answer struct {
	raw          json.RawMessage
	Image        string          `json:"image"`
	Digest       string          `json:"digest"`
	Signed       bool            `json:"signed"`
	Signatures   []signature     `json:"signatures"`
	Attestations []attestation   `json:"attestations"`
	SBOM         sbom            `json:"sbom"`
	Provenance   json.RawMessage `json:"provenance"`
	Platforms    []platform      `json:"platforms"`
	Rejected     []rejection     `json:"rejected"`
}

type signature struct {
	Authority string `json:"authority"`
	KeyID     string `json:"keyId"`
	Algorithm string `json:"algorithm"`
	Verified  bool   `json:"verified"`
	Format    string `json:"format"`
}

type attestation struct {
	Authority     string `json:"authority"`
	PredicateType string `json:"predicateType"`
	Format        string `json:"format"`
}

type sbom struct {
	// Formats of the verified SBOM attestations, sorted.
	Formats    []string         `json:"formats"`
	Unverified []unverifiedSBOM `json:"unverified"`
}

type unverifiedSBOM struct {
	Format       string `json:"format"`
	ArtifactType string `json:"artifactType"`
	MediaType    string `json:"mediaType"`
	Digest       string `json:"digest"`
	Tag          string `json:"tag"`
	Verified     bool   `json:"verified"`
}

// provenance is one verified SLSA provenance statement.
type provenance struct {
	BuilderID     string `json:"builderId"`
	SourceURI     string `json:"sourceUri"`
	BuildType     string `json:"buildType"`
	PredicateType string `json:"predicateType"`
	Authority     string `json:"authority"`
}

type platform struct {
	OS           string   `json:"os"`
	Architecture string   `json:"architecture"`
	Variant      string   `json:"variant"`
	Digest       string   `json:"digest"`
	VerifiedBy   []string `json:"verifiedBy"`
}

type rejection struct {
	Kind   string `json:"kind"`
	Reason string `json:"reason"`
}

// scanAnswer is a /v1/scan value (docs/scan.md).
type scanAnswer struct {
	raw       json.RawMessage
	Image     string         `json:"image"`
	Digest    string         `json:"digest"`
	Scanned   bool           `json:"scanned"`
	Reason    string         `json:"reason"`
	Source    string         `json:"source"`
	Format    string         `json:"format"`
	Authority string         `json:"authority"`
	Signed    bool           `json:"signed"`
	Counts    map[string]int `json:"counts"`
	Fixable   map[string]int `json:"fixableCounts"`
	// Findings are rows (answer form 2), read by scan.Finding.
	Findings      []scan.Finding `json:"findings"`
	FindingsTotal int            `json:"findingsTotal"`
	Scanner       *struct {
		Name    string `json:"name"`
		Version string `json:"version"`
	} `json:"scanner"`
	Rejected []rejection `json:"rejected"`
}

// check collects field mismatches of one answer and reports them with the answer once.
type check struct {
	t    *testing.T
	what string
	raw  json.RawMessage
	errs []string
}

func newCheck(t *testing.T, what string, raw json.RawMessage) *check {
	return &check{t: t, what: what, raw: raw}
}

func (c *check) eq(field string, got, want any) {
	if fmt.Sprint(got) != fmt.Sprint(want) {
		c.errs = append(c.errs, fmt.Sprintf("%s = %v, want %v", field, got, want))
	}
}

func (c *check) errorf(format string, args ...any) {
	c.errs = append(c.errs, fmt.Sprintf(format, args...))
}

// done fails the test with every mismatch and the answer; it reports whether all held.
func (c *check) done() bool {
	c.t.Helper()
	if len(c.errs) == 0 {
		return true
	}
	c.t.Errorf("%s:\n  %s\nanswer: %s", c.what, strings.Join(c.errs, "\n  "), c.raw)
	return false
}

// signatures compares the verified signatures with want, in any order.
func (c *check) signatures(got []signature, want ...signature) {
	key := func(s signature) string { return fmt.Sprintf("%+v", s) }
	c.sameSet("signatures", mapf(got, key), mapf(want, key))
}

// provenance compares the verified provenance statements with want, in any order.
func (c *check) provenance(raw json.RawMessage, want ...provenance) {
	var got []provenance
	if err := json.Unmarshal(raw, &got); err != nil {
		c.errs = append(c.errs, fmt.Sprintf("provenance is not a list of statements: %s", raw))
		return
	}
	key := func(p provenance) string { return fmt.Sprintf("%+v", p) }
	c.sameSet("provenance", mapf(got, key), mapf(want, key))
}

// attestations compares the verified attestations with want, in any order.
func (c *check) attestations(got []attestation, want ...attestation) {
	key := func(a attestation) string { return fmt.Sprintf("%+v", a) }
	c.sameSet("attestations", mapf(got, key), mapf(want, key))
}

func (c *check) sameSet(field string, got, want []string) {
	got, want = slices.Clone(got), slices.Clone(want)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		c.errs = append(c.errs, fmt.Sprintf("%s = %v, want %v", field, got, want))
	}
}

// rejected requires exactly the rejections whose kinds are kinds (in any order) and whose
// reasons contain the matching substring of reasons.
func (c *check) rejected(got []rejection, want ...rejection) {
	if len(got) != len(want) {
		c.errs = append(c.errs, fmt.Sprintf("rejected has %d entries %v, want %d like %v", len(got), got, len(want), want))
		return
	}
	used := make([]bool, len(got))
	for _, w := range want {
		found := false
		for i, g := range got {
			if !used[i] && g.Kind == w.Kind && strings.Contains(g.Reason, w.Reason) {
				used[i], found = true, true
				break
			}
		}
		if !found {
			c.errs = append(c.errs, fmt.Sprintf("rejected has no %q entry whose reason contains %q: %v", w.Kind, w.Reason, got))
		}
	}
}

func mapf[T any](in []T, f func(T) string) []string {
	out := make([]string, len(in))
	for i, x := range in {
		out[i] = f(x)
	}
	return out
}
