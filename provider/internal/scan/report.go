package scan

import (
	"cmp"
	"slices"
	"strings"
	"time"
)

// Report is one scan result in normalised form, whatever format it arrived in.
type Report struct {
	// Format names the wire format: "trivy", "grype", "sarif/trivy", "sarif/grype",
	// "in-toto-vulns/v0.1", "in-toto-vulns/v0.2", "trivy-operator". A cosign vuln predicate
	// prefixes its result's format: "cosign-vuln/trivy".
	Format  string
	Scanner Scanner
	// ScannedAt is when the scan ran, from the report itself (zero: the report does not say).
	ScannedAt time.Time
	Findings  []Finding
	// Digests the report says it scanned (Trivy RepoDigests, Grype manifestDigest, SARIF
	// repoDigests), "sha256:<hex>"; empty when the report does not say.
	Digests []string
}

// Scanner names the scanner and its vulnerability database.
type Scanner struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	DB      DB     `json:"db,omitzero"`
}

// DB is the scanner's vulnerability database, when the report names it (only in-toto vulns
// v0.2 carries its update time).
type DB struct {
	Version   string     `json:"version,omitempty"`
	UpdatedAt *time.Time `json:"updatedAt,omitempty"`
}

// Finding is one vulnerability in one package. In the answer it is a row (MarshalJSON), not
// an object.
type Finding struct {
	ID               string
	Aliases          []string
	Severity         Severity
	Package          string
	PURL             string
	InstalledVersion string
	FixedVersion     string
	// Status is the fix status in Trivy's words: fixed, affected, will_not_fix, fix_deferred,
	// end_of_life, unknown ("" when the format has none).
	Status string
	// VEX is the statement of a trusted VEX authority about this finding, if any.
	VEX *VEXNote
}

// answerForm drops what a finding's answer does not need: the purl's qualifiers and subpath
// ("?arch=…&distro=…", "#…": the package and version are the purl up to them, which is all
// an ignore entry's packages match) and a status of "fixed" beside a fixed version (which
// says it already). A purl that is left ending in "/" or "@" names no package and is dropped:
// in a row, those endings mean "the package and version follow" (see appendRow).
func (f *Finding) answerForm() {
	if i := strings.IndexAny(f.PURL, "?#"); i >= 0 {
		f.PURL = f.PURL[:i]
	}
	if strings.HasSuffix(f.PURL, "/") || strings.HasSuffix(f.PURL, "@") {
		f.PURL = ""
	}
	if f.Status == "fixed" && f.FixedVersion != "" {
		f.Status = ""
	}
}

// Fixable reports whether a fixed version exists.
func (f *Finding) Fixable() bool { return f.FixedVersion != "" || f.Status == "fixed" }

// Suppressed reports whether a trusted VEX statement says this image is not affected or fixed.
func (f *Finding) Suppressed() bool {
	return f.VEX != nil && (f.VEX.Status == vexNotAffected || f.VEX.Status == vexFixed)
}

// VEXNote is the statement that applies to a finding.
type VEXNote struct {
	Status        string `json:"status"`
	Justification string `json:"justification,omitempty"`
	Authority     string `json:"authority"`
	// Timestamp of the statement (RFC 3339; empty when it had none).
	Timestamp string `json:"timestamp,omitempty"`
}

// normaliseFixStatus maps a scanner's fix state onto Trivy's status words.
func normaliseFixStatus(s string) string {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "fixed":
		return "fixed"
	case "not-fixed", "not_fixed", "affected":
		return "affected"
	case "wont-fix", "will_not_fix", "won't fix":
		return "will_not_fix"
	case "fix_deferred":
		return "fix_deferred"
	case "end_of_life":
		return "end_of_life"
	case "not_affected":
		return "not_affected"
	case "under_investigation":
		return "under_investigation"
	case "":
		return ""
	}
	return "unknown"
}

// sortFindings orders findings worst-first: unsuppressed before suppressed, then severity,
// fixable before unfixable, then id, package and installed version (a total order, so the
// capped list is the same on every run).
//
// The sort orders positions, not Findings (a stable sort moves each element O(log n) times,
// and a Finding is a dozen words with pointers); the findings are then moved into their
// order once.
func sortFindings(fs []Finding) {
	var buf [64]int32
	order := positions(buf[:0], len(fs))
	slices.SortStableFunc(order, func(i, j int32) int {
		switch {
		case worstBefore(&fs[i], &fs[j]):
			return -1
		case worstBefore(&fs[j], &fs[i]):
			return 1
		}
		return 0
	})
	permute(fs, order)
}

// permute puts fs[order[i]] at i for every i, following each cycle of the permutation once
// (order is used up).
func permute(fs []Finding, order []int32) {
	for start := range order {
		if order[start] < 0 || int(order[start]) == start {
			continue
		}
		held := fs[start]
		at := start
		for {
			from := int(order[at])
			order[at] = -1
			if from == start {
				fs[at] = held
				break
			}
			fs[at] = fs[from]
			at = from
		}
	}
}

// worstBefore reports whether a comes before b in sortFindings' order.
func worstBefore(a, b *Finding) bool {
	if sa, sb := a.Suppressed(), b.Suppressed(); sa != sb {
		return !sa
	}
	if ra, rb := a.Severity.Rank(), b.Severity.Rank(); ra != rb {
		return ra > rb
	}
	if fa, fb := a.Fixable(), b.Fixable(); fa != fb {
		return fa
	}
	if a.ID != b.ID {
		return a.ID < b.ID
	}
	if a.Package != b.Package {
		return a.Package < b.Package
	}
	return a.InstalledVersion < b.InstalledVersion
}

// dedupeLinear: up to this many findings, dedupe compares each with those kept before it;
// longer lists are sorted by key instead (positions on the stack, as sortFindings does, no
// map).
const dedupeLinear = 16

// dedupe drops findings that repeat (id, package, installed version, purl), keeping each at
// its first place; the worse severity of two copies is kept, and the first fixed version any
// of them names.
func dedupe(fs []Finding) []Finding {
	if len(fs) > dedupeLinear {
		return dedupeSorted(fs)
	}
	out := fs[:0]
next:
	for i := range fs {
		f := &fs[i]
		for j := range out {
			if sameKey(&out[j], f) {
				merge(&out[j], f)
				continue next
			}
		}
		out = append(out, *f)
	}
	return out
}

// dedupeSorted is dedupe by sorting positions by key (ties by position, so each key's first
// place leads its run), merging each run into its first and keeping those in place order.
func dedupeSorted(fs []Finding) []Finding {
	var buf [64]int32
	order := positions(buf[:0], len(fs))
	slices.SortFunc(order, func(i, j int32) int {
		if c := compareKey(&fs[i], &fs[j]); c != 0 {
			return c
		}
		return cmp.Compare(i, j)
	})
	kept := order[:0] // the first of each run; written behind the reads
	for r := 0; r < len(order); {
		first := order[r]
		r++
		for ; r < len(order) && sameKey(&fs[order[r]], &fs[first]); r++ {
			merge(&fs[first], &fs[order[r]])
		}
		kept = append(kept, first)
	}
	slices.Sort(kept)
	out := fs[:0]
	for _, i := range kept { // ascending: each finding moves down, over one already moved or dropped
		out = append(out, fs[i])
	}
	return out
}

func sameKey(a, b *Finding) bool {
	return a.ID == b.ID && a.Package == b.Package && a.InstalledVersion == b.InstalledVersion && a.PURL == b.PURL
}

func compareKey(a, b *Finding) int {
	if c := strings.Compare(a.ID, b.ID); c != 0 {
		return c
	}
	if c := strings.Compare(a.Package, b.Package); c != 0 {
		return c
	}
	if c := strings.Compare(a.InstalledVersion, b.InstalledVersion); c != 0 {
		return c
	}
	return strings.Compare(a.PURL, b.PURL)
}

// merge folds dup, a later copy of kept's key, into kept.
func merge(kept, dup *Finding) {
	kept.Severity = worse(kept.Severity, dup.Severity)
	if kept.FixedVersion == "" {
		kept.FixedVersion = dup.FixedVersion
	}
}

// positions is 0, 1, …, n-1 in buf's array when it has room for n (a caller's stack array),
// else in a new one.
func positions(buf []int32, n int) []int32 {
	if n > cap(buf) {
		buf = make([]int32, 0, n)
	}
	for i := range n {
		buf = append(buf, int32(i))
	}
	return buf
}
