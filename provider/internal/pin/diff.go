package pin

import (
	"strings"

	"github.com/pmezard/go-difflib/difflib"
)

// Diff returns a unified diff (three lines of context) from old to updated, labelled with file.
func Diff(file string, old, updated []byte) (string, error) {
	return difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
		A:        splitLines(string(old)),
		B:        splitLines(string(updated)),
		FromFile: "a/" + strings.TrimPrefix(file, "/"),
		ToFile:   "b/" + strings.TrimPrefix(file, "/"),
		Context:  3,
	})
}

// splitLines keeps each line's ending ("\r\n" stays visible in the diff as written).
func splitLines(s string) []string {
	var out []string
	for s != "" {
		i := strings.IndexByte(s, '\n')
		if i < 0 {
			out = append(out, s+"\n")
			break
		}
		out = append(out, s[:i+1])
		s = s[i+1:]
	}
	return out
}
