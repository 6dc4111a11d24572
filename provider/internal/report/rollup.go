package report

import (
	"sort"
)

// worstN is how many worst offenders are listed.
const worstN = 10

// Finish computes the summary, the rollups and the health findings from the rows and status.
// It is called once the rows are final (after Complete, before formatting).
func Finish(r *Report, h HealthOptions) {
	sortViolations(r.Violations)
	r.Rollups = Rollup(r)
	r.Health = Health(r, h)
	s := Summary{Constraints: len(r.Constraints), Templates: len(r.Templates), Listed: len(r.Violations)}
	listedFor := map[string]int{}
	for _, v := range r.Violations {
		if v.Source == SourceReevaluated {
			s.Reevaluated++
		} else {
			s.FromStatus++
		}
		listedFor[v.Constraint]++
	}
	for _, c := range r.Constraints {
		s.TotalViolations += c.TotalViolations
		if d := c.TotalViolations - int64(listedFor[c.ID()]); d > 0 {
			s.Unlisted += d
		}
		if c.Mismatch != "" {
			s.Mismatches++
		}
	}
	s.Namespaces = len(r.Rollups.ByNamespace)
	s.Images = len(r.Rollups.ByImage)
	s.Problems = len(r.Health)
	r.Summary = s
}

func sortViolations(vs []Violation) {
	sort.SliceStable(vs, func(i, j int) bool {
		a, b := vs[i], vs[j]
		if a.Constraint != b.Constraint {
			return a.Constraint < b.Constraint
		}
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		if a.Kind != b.Kind {
			return a.Kind < b.Kind
		}
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		return a.Message < b.Message
	})
}

// ClusterScope is the namespace key of cluster-scoped objects in the namespace rollup.
const ClusterScope = "(cluster-scoped)"

// Rollup groups the rows by constraint, namespace and image and finds the worst offenders.
func Rollup(r *Report) Rollups {
	type agg struct {
		n       int
		objects map[string]bool
		ns      map[string]bool
		cons    map[string]bool
		images  map[string]bool
	}
	newAgg := func() *agg {
		return &agg{objects: map[string]bool{}, ns: map[string]bool{}, cons: map[string]bool{}, images: map[string]bool{}}
	}
	byCon, byNS, byImg, byObj := map[string]*agg{}, map[string]*agg{}, map[string]*agg{}, map[string]*agg{}
	get := func(m map[string]*agg, k string) *agg {
		a := m[k]
		if a == nil {
			a = newAgg()
			m[k] = a
		}
		return a
	}
	for _, c := range r.Constraints {
		get(byCon, c.ID())
	}
	for _, v := range r.Violations {
		obj := v.Object()
		ns := v.Namespace
		if ns == "" {
			ns = ClusterScope
		}
		for _, a := range []*agg{get(byCon, v.Constraint), get(byNS, ns), get(byObj, obj)} {
			a.n++
			a.objects[obj] = true
			a.ns[ns] = true
			a.cons[v.Constraint] = true
			if v.Image != "" {
				a.images[v.Image] = true
			}
		}
		if v.Image != "" {
			a := get(byImg, v.Image)
			a.n++
			a.objects[obj] = true
			a.ns[ns] = true
			a.cons[v.Constraint] = true
		}
	}
	var out Rollups
	totals := map[string]int64{}
	for _, c := range r.Constraints {
		totals[c.ID()] = c.TotalViolations
	}
	for k, a := range byCon {
		out.ByConstraint = append(out.ByConstraint, Count{Key: k, Violations: a.n, Objects: len(a.objects), Total: totals[k]})
	}
	sort.Slice(out.ByConstraint, func(i, j int) bool {
		a, b := out.ByConstraint[i], out.ByConstraint[j]
		if max(a.Total, int64(a.Violations)) != max(b.Total, int64(b.Violations)) {
			return max(a.Total, int64(a.Violations)) > max(b.Total, int64(b.Violations))
		}
		return a.Key < b.Key
	})
	for k, a := range byNS {
		out.ByNamespace = append(out.ByNamespace, Count{Key: k, Violations: a.n, Objects: len(a.objects)})
	}
	sortCounts(out.ByNamespace)
	for k, a := range byImg {
		out.ByImage = append(out.ByImage, ImageRollup{Image: k, Violations: a.n, Workloads: len(a.objects),
			Namespaces: keys(a.ns), Constraints: keys(a.cons)})
	}
	sort.Slice(out.ByImage, func(i, j int) bool {
		a, b := out.ByImage[i], out.ByImage[j]
		if a.Violations != b.Violations {
			return a.Violations > b.Violations
		}
		return a.Image < b.Image
	})
	for k, a := range byObj {
		out.Worst = append(out.Worst, Offender{Object: k, Violations: a.n, Constraints: keys(a.cons), Images: keys(a.images)})
	}
	sort.Slice(out.Worst, func(i, j int) bool {
		a, b := out.Worst[i], out.Worst[j]
		if a.Violations != b.Violations {
			return a.Violations > b.Violations
		}
		return a.Object < b.Object
	})
	if len(out.Worst) > worstN {
		out.Worst = out.Worst[:worstN]
	}
	return out
}

func sortCounts(cs []Count) {
	sort.Slice(cs, func(i, j int) bool {
		if cs[i].Violations != cs[j].Violations {
			return cs[i].Violations > cs[j].Violations
		}
		return cs[i].Key < cs[j].Key
	})
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
