package check

import (
	"sort"
)

// Report is the outcome of a check.
type Report struct {
	// Objects counts the objects reviewed (templates and constraints in the input excluded).
	Objects  int       `json:"objects"`
	Findings []Finding `json:"findings"`
	Images   []Rollup  `json:"images"`
	Summary  Summary   `json:"summary"`
	// Incomplete lists the provider failures that left answers unknown.
	Incomplete []string `json:"incomplete,omitempty"`
}

// Summary counts findings by action.
type Summary struct {
	Deny   int `json:"deny"`
	Warn   int `json:"warn"`
	DryRun int `json:"dryrun"`
	// Incomplete counts constraint results that could not be decided (ActionIncomplete).
	Incomplete int `json:"incomplete"`
}

// Rollup is one image: its findings and the objects that use it.
type Rollup struct {
	Image       string   `json:"image"`
	Findings    int      `json:"findings"`
	Deny        int      `json:"deny"`
	Constraints []string `json:"constraints"`
	Objects     []string `json:"objects"`
}

// NewReport summarises findings over the reviewed objects.
func NewReport(objects int, fs []Finding, usage map[string][]string) *Report {
	r := &Report{Objects: objects, Findings: fs}
	if r.Findings == nil {
		r.Findings = []Finding{}
	}
	by := map[string]*Rollup{}
	for _, f := range fs {
		switch f.Action {
		case ActionDeny:
			r.Summary.Deny++
		case ActionWarn:
			r.Summary.Warn++
		case ActionIncomplete:
			r.Summary.Incomplete++
		default:
			r.Summary.DryRun++
		}
		if f.Image == "" {
			continue
		}
		ro := by[f.Image]
		if ro == nil {
			ro = &Rollup{Image: f.Image}
			by[f.Image] = ro
		}
		ro.Findings++
		if f.Action == ActionDeny {
			ro.Deny++
		}
		ro.Constraints = appendUnique(ro.Constraints, f.Constraint)
	}
	for img, ro := range by {
		ro.Objects = append([]string(nil), usage[img]...)
		sort.Strings(ro.Constraints)
		r.Images = append(r.Images, *ro)
	}
	sort.Slice(r.Images, func(i, j int) bool {
		a, b := r.Images[i], r.Images[j]
		if a.Deny != b.Deny {
			return a.Deny > b.Deny
		}
		if a.Findings != b.Findings {
			return a.Findings > b.Findings
		}
		return a.Image < b.Image
	})
	if r.Images == nil {
		r.Images = []Rollup{}
	}
	return r
}

func appendUnique(s []string, v string) []string {
	for _, x := range s {
		if x == v {
			return s
		}
	}
	return append(s, v)
}
