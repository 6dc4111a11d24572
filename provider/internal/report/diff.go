package report

import (
	"encoding/json"
	"fmt"
	"os"
)

// ReadJSON reads a report written with -format json.
func ReadJSON(path string) (*Report, error) {
	b, err := os.ReadFile(path) //nolint:gosec // the user names the earlier report
	if err != nil {
		return nil, err
	}
	var r Report
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: not a JSON report: %w", path, err)
	}
	if r.Evidence.GeneratedAt.IsZero() {
		return nil, fmt.Errorf("%s: not a JSON report of imagetrust report (no evidence.generatedAt)", path)
	}
	return &r, nil
}

// Compare records in cur what is new and what was fixed since old. Rows are matched by
// constraint, object and message (as Gatekeeper stores it).
func Compare(cur, old *Report, file string) {
	oldKeys := map[string]bool{}
	for _, v := range old.Violations {
		oldKeys[v.key()] = true
	}
	d := &Diff{Since: old.Evidence.GeneratedAt, File: file, TotalDelta: totalOf(cur) - totalOf(old)}
	curKeys := map[string]bool{}
	for _, v := range cur.Violations {
		k := v.key()
		curKeys[k] = true
		if oldKeys[k] {
			d.Unchanged++
		} else {
			d.New = append(d.New, v)
		}
	}
	partial := incomplete(cur)
	for _, v := range old.Violations {
		if curKeys[v.key()] {
			continue
		}
		if partial[v.Constraint] {
			// Not listed now, but the constraint still has unlisted violations: unknown.
			d.Unverifiable++
			continue
		}
		d.Fixed = append(d.Fixed, v)
	}
	cur.Diff = d
}

// incomplete names the constraints whose rows do not cover totalViolations.
func incomplete(r *Report) map[string]bool {
	listed := map[string]int64{}
	for _, v := range r.Violations {
		listed[v.Constraint]++
	}
	out := map[string]bool{}
	for _, c := range r.Constraints {
		if listed[c.ID()] < c.TotalViolations {
			out[c.ID()] = true
		}
	}
	return out
}

func totalOf(r *Report) int64 {
	var n int64
	for _, c := range r.Constraints {
		n += c.TotalViolations
	}
	return n
}
