package scan

import (
	"math/rand/v2"
	"reflect"
	"sort"
	"strconv"
	"testing"
)

// TestSortFindings holds sortFindings (positions sorted, findings moved once) to a stable sort
// of the findings themselves in the same order, on lists shorter and longer than its stack
// buffer, with ties only a stable sort keeps in their place (the same id, package and version
// under different purls).
func TestSortFindings(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2)) //nolint:gosec // G404: a fixed seed, for lists the test can repeat
	for _, n := range []int{0, 1, 2, 3, 17, 63, 64, 65, 200} {
		for round := range 20 {
			fs := make([]Finding, n)
			for i := range fs {
				fs[i] = Finding{
					ID:               "CVE-2024-" + strconv.Itoa(rng.IntN(6)),
					Severity:         Severities[rng.IntN(len(Severities))],
					Package:          "pkg" + strconv.Itoa(rng.IntN(3)),
					InstalledVersion: "1." + strconv.Itoa(rng.IntN(2)),
					PURL:             "pkg:apk/alpine/p" + strconv.Itoa(i),
				}
				if rng.IntN(2) == 0 {
					fs[i].FixedVersion = "2.0"
				}
				if rng.IntN(5) == 0 {
					fs[i].VEX = &VEXNote{Status: vexNotAffected, Authority: "vendor"}
				}
			}
			want := make([]Finding, n)
			copy(want, fs)
			sort.SliceStable(want, func(i, j int) bool { return worstBefore(&want[i], &want[j]) })
			sortFindings(fs)
			if !reflect.DeepEqual(fs, want) {
				t.Fatalf("sortFindings of %d findings (round %d) differs from a stable sort:\n got %+v\nwant %+v", n, round, fs, want)
			}
		}
	}
}
