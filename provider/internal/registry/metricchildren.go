package registry

import "sync"

// metricChildren keeps the children of a metric vector with three labels, each looked up in
// the vector once (WithLabelValues hashes its labels on every call) and then kept. The label
// values must be bounded, as every label value of a metric must be.
type metricChildren[M any] struct{ m sync.Map }

// get is the child of vec for the three label values.
func (c *metricChildren[M]) get(vec interface{ WithLabelValues(...string) M }, a, b, d string) M {
	k := [3]string{a, b, d}
	if m, ok := c.m.Load(k); ok {
		return m.(M)
	}
	m := vec.WithLabelValues(a, b, d)
	c.m.Store(k, m)
	return m
}
