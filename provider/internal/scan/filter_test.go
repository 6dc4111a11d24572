package scan

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestParseFilter: the queries a key may carry, and every malformed one refused with what is
// wrong and the form expected.
func TestParseFilter(t *testing.T) {
	for _, c := range []struct {
		q     string
		above int
		ids   []string
	}{
		{"above=MEDIUM", 2, nil},
		{"above=UNKNOWN", 0, nil},
		{"above=CRITICAL;ids=cve-2021-44228,GHSA-jfh8-c2jp-5v3q", 4, []string{"CVE-2021-44228", "GHSA-JFH8-C2JP-5V3Q"}},
		{"ids=RHSA-2024:1234;above=LOW", 1, []string{"RHSA-2024:1234"}},
	} {
		f, err := ParseFilter(c.q)
		if err != nil {
			t.Errorf("ParseFilter(%q): %v", c.q, err)
			continue
		}
		if f.above != c.above || strings.Join(f.ids.ids, " ") != strings.Join(c.ids, " ") {
			t.Errorf("ParseFilter(%q) = above %d ids %q, want %d %q", c.q, f.above, f.ids.ids, c.above, c.ids)
		}
	}
	many := "above=HIGH;ids=" + strings.Repeat("CVE-1,", MaxFilterIDs) + "CVE-2"
	for q, want := range map[string]string{
		"":                           "empty query",
		"above=HIGH;":                `parameter "" has no value`,
		"above":                      `parameter "above" has no value`,
		"above=high":                 `above="high" is not a severity`,
		"above=NONE":                 `above="NONE" is not a severity`,
		"above=HIGH;above=LOW":       "above given twice",
		"ids=CVE-1":                  "above is required",
		"above=HIGH;ids=":            `ids: "" is not an id`,
		"above=HIGH;ids=CVE-1,,X":    `ids: "" is not an id`,
		"above=HIGH;ids=CVE 1":       `ids: "CVE 1" is not an id`,
		"above=HIGH;ids=A;ids=B":     "ids given twice",
		"above=HIGH;severity=LOW":    `unknown parameter "severity"`,
		"above=HIGH;ids=a\x00b":      `is not an id`,
		"above=HIGH;ids=A#above=LOW": `ids: "A#above=LOW" is not an id`,
		"above=HIGH;ids=CVE-1=2":     `ids: "CVE-1=2" is not an id`,
		"above=HIGH;ids=CVÉ-1":       `ids: "CVÉ-1" is not an id`,
		many:                         "more than 64",
	} {
		_, err := ParseFilter(q)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "want above=<") {
			t.Errorf("ParseFilter(%q) = %v, want an error with %q and the form expected", q, err, want)
		}
	}
}

// TestFilterLists: a row is listed above the filter's severity, by its id or an alias in any
// case, and always when its severity is not one of the five; a nil filter lists every row.
func TestFilterLists(t *testing.T) {
	f, err := ParseFilter("above=MEDIUM;ids=cve-9")
	if err != nil {
		t.Fatal(err)
	}
	in := &interner{}
	for _, c := range []struct {
		f    Finding
		want bool
	}{
		{Finding{ID: "CVE-1", Severity: Critical}, true},
		{Finding{ID: "CVE-2", Severity: High}, true},
		{Finding{ID: "CVE-3", Severity: Medium}, false},
		{Finding{ID: "CVE-4", Severity: Unknown}, false},
		{Finding{ID: "cve-9", Severity: Low}, true},
		{Finding{ID: "GHSA-x", Severity: Low, Aliases: []string{"CVE-9"}}, true},
		{Finding{ID: "CVE-5", Severity: "SEVERE"}, true},
		// An id that sets the same idBit as CVE-9: the strings decide.
		{Finding{ID: sameBit("CVE-9"), Severity: Low}, false},
	} {
		row, err := c.f.appendRow(nil)
		if err != nil {
			t.Fatal(err)
		}
		r := in.intern(row, &c.f)
		if got := f.lists(r); got != c.want {
			t.Errorf("%s lists %+v = %v, want %v", "above=MEDIUM;ids=cve-9", c.f, got, c.want)
		}
		if !(*Filter)(nil).lists(r) {
			t.Errorf("a nil filter does not list %+v", c.f)
		}
	}
}

// sameBit is an id other than id with the same idBit.
func sameBit(id string) string {
	for i := 0; ; i++ {
		if o := "CVE-X-" + strconv.Itoa(i); idBit(o) == idBit(id) {
			return o
		}
	}
}

// TestTemplateQueryIDsBound: K8sImageVulnerabilities sends no query with more blockedIds than
// the provider takes in one (its max_query_ids, tested in Rego to switch to the whole list
// beyond it), so the two bounds are one number.
func TestTemplateQueryIDsBound(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("..", "..", "..", "library", "security", "src.rego"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^max_query_ids := (\d+)$`).FindSubmatch(src)
	if m == nil {
		t.Fatal("library/security/src.rego defines no max_query_ids := <n>")
	}
	if n, _ := strconv.Atoi(string(m[1])); n != MaxFilterIDs {
		t.Errorf("the template sends up to %d ids in a query, the provider takes %d (MaxFilterIDs)", n, MaxFilterIDs)
	}
}
