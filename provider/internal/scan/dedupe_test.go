package scan

import (
	"math/rand/v2"
	"reflect"
	"testing"
)

// TestDedupe: for lists short enough to be compared pairwise and long enough to be sorted, every
// (id, package, installed version, purl) is kept once, at its first place, with the worst
// severity of its copies and the first fixed version any of them names.
func TestDedupe(t *testing.T) {
	type key struct{ id, pkg, ver, purl string }
	r := rand.New(rand.NewPCG(3, 4)) //nolint:gosec // a reproducible sequence of test findings, not a secret
	pick := func(s ...string) string { return s[r.IntN(len(s))] }
	sizes := []int{63, 64, 65, 200} // sorted by key: positions on the stack, and beyond it
	for n := range 3 * dedupeLinear {
		sizes = append(sizes, n)
	}
	for _, n := range sizes {
		for range 20 {
			in := make([]Finding, n)
			for i := range in {
				in[i] = Finding{ID: pick("CVE-1", "CVE-2", "CVE-3"), Package: pick("a", "b"), InstalledVersion: pick("1", "2"),
					PURL: pick("", "pkg:apk/a@1"), FixedVersion: pick("", "", "3", "4"), Severity: Severities[r.IntN(len(Severities))]}
			}
			var order []key
			want := map[key]Finding{}
			for _, f := range in {
				k := key{f.ID, f.Package, f.InstalledVersion, f.PURL}
				w, ok := want[k]
				if !ok {
					order = append(order, k)
					want[k] = f
					continue
				}
				if f.Severity.Rank() > w.Severity.Rank() {
					w.Severity = f.Severity
				}
				if w.FixedVersion == "" {
					w.FixedVersion = f.FixedVersion
				}
				want[k] = w
			}
			got := dedupe(append([]Finding(nil), in...))
			if len(got) != len(order) {
				t.Fatalf("%d findings: %d kept, want %d", n, len(got), len(order))
			}
			for i, k := range order {
				if !reflect.DeepEqual(got[i], want[k]) {
					t.Fatalf("%d findings: kept[%d] = %+v, want %+v", n, i, got[i], want[k])
				}
			}
		}
	}
}
