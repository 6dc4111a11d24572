// Package check is `imagetrust check`: the admission decision, in CI, before the cluster. It
// evaluates the ConstraintTemplates and Constraints a repository deploys against its manifests
// with the frameworks constraint client Gatekeeper's validating webhook runs (the same
// templates, constraints, match rules and enforcement actions), answers external_data from the
// real provider (in-process, running, or recorded fixtures), and reports each violation at the
// line and column of the offending image scalar.
package check

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/open-policy-agent/gatekeeper/v3/pkg/gator/reader"

	"github.com/imagetrust/imagetrust/provider/internal/manifests"
)

// Policy is the templates and constraints a check evaluates, with where each was read.
type Policy struct {
	Templates   []manifests.Object
	Constraints []manifests.Object
}

// PolicyError is a policy file that cannot be used (a missing template, a document that is
// neither a template nor a constraint). It names the file and line.
type PolicyError = manifests.Error

// LoadPolicy reads templates and constraints from paths (files or directories, recursively).
// Every document must be a ConstraintTemplate or a Constraint, and every Constraint's kind must
// be defined by one of the templates.
func LoadPolicy(paths []string) (*Policy, error) {
	if len(paths) == 0 {
		return nil, errors.New("no policy given: name the templates and constraints (--policy)")
	}
	srcs, err := manifests.Collect(paths, eofReader{})
	if err != nil {
		return nil, err
	}
	objs, err := manifests.ParseAll(srcs)
	if err != nil {
		return nil, err
	}
	p := &Policy{}
	kinds := map[string]bool{}
	for _, o := range objs {
		switch {
		case reader.IsTemplate(o.Object):
			p.Templates = append(p.Templates, o)
			k := nestedString(o.Object.Object, "spec", "crd", "spec", "names", "kind")
			kinds[k] = true
		case reader.IsConstraint(o.Object):
			p.Constraints = append(p.Constraints, o)
		default:
			return nil, &PolicyError{File: o.File, Line: o.Line, Column: o.Column,
				Err: fmt.Errorf("%s is neither a ConstraintTemplate nor a Constraint (apiVersion constraints.gatekeeper.sh/…)", o.Ref())}
		}
	}
	if len(p.Templates) == 0 {
		return nil, fmt.Errorf("no ConstraintTemplate found in %v", paths)
	}
	if len(p.Constraints) == 0 {
		return nil, fmt.Errorf("no Constraint found in %v: nothing would be enforced", paths)
	}
	for _, c := range p.Constraints {
		if !kinds[c.Object.GetKind()] {
			return nil, &PolicyError{File: c.File, Line: c.Line, Column: c.Column,
				Err: fmt.Errorf("constraint %s/%s: no ConstraintTemplate defines kind %s (templates: %v)", c.Object.GetKind(), c.Object.GetName(), c.Object.GetKind(), sortedKeys(kinds))}
		}
	}
	return p, nil
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func nestedString(m map[string]any, path ...string) string {
	var cur any = m
	for _, p := range path {
		mm, ok := cur.(map[string]any)
		if !ok {
			return ""
		}
		cur = mm[p]
	}
	s, _ := cur.(string)
	return s
}

// eofReader is an empty stdin: policy is never read from standard input.
type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }

// ExternalDataKinds returns the kinds of the constraints whose template calls external_data
// (they need a provider).
func (p *Policy) ExternalDataKinds() []string {
	calls := map[string]bool{}
	for _, t := range p.Templates {
		k := nestedString(t.Object.Object, "spec", "crd", "spec", "names", "kind")
		b, err := json.Marshal(t.Object.Object["spec"])
		if err == nil && strings.Contains(string(b), "external_data(") {
			calls[k] = true
		}
	}
	used := map[string]bool{}
	for _, c := range p.Constraints {
		if calls[c.Object.GetKind()] {
			used[c.Object.GetKind()] = true
		}
	}
	return sortedKeys(used)
}
