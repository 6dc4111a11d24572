package templategen

import (
	"fmt"
	"sort"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
)

// parseRefs returns the package path of a Rego file ("lib.imagetrust.review") and the data
// references it makes (imports and inline refs), as "data.x.y" strings.
func parseRefs(name, src string) (pkg string, refs []string, err error) {
	m, err := ast.ParseModuleWithOpts(name, src, ast.ParserOptions{RegoVersion: ast.RegoV1})
	if err != nil {
		return "", nil, err
	}
	seen := map[string]bool{}
	add := func(r ast.Ref) {
		s := groundPrefix(r)
		if strings.HasPrefix(s, "data.") && !seen[s] {
			seen[s] = true
			refs = append(refs, s)
		}
	}
	for _, imp := range m.Imports {
		if r, ok := imp.Path.Value.(ast.Ref); ok {
			add(r)
		}
	}
	ast.WalkRefs(m, func(r ast.Ref) bool {
		add(r)
		return false
	})
	sort.Strings(refs)
	return strings.TrimPrefix(m.Package.Path.String(), "data."), refs, nil
}

// groundPrefix renders the leading string terms of r: data.lib.x[y].z -> "data.lib.x".
func groundPrefix(r ast.Ref) string {
	if len(r) == 0 {
		return ""
	}
	parts := []string{r[0].String()}
	for _, t := range r[1:] {
		s, ok := t.Value.(ast.String)
		if !ok {
			break
		}
		parts = append(parts, string(s))
	}
	return strings.Join(parts, ".")
}

// usedLibs returns the libs that the Rego refs reach, directly or through other libs,
// sorted by file name. A lib is reached by a reference to its package or below it.
func usedLibs(refs []string, libs []Lib) []Lib {
	used := map[string]bool{}
	queue := append([]string(nil), refs...)
	for len(queue) > 0 {
		ref := queue[0]
		queue = queue[1:]
		for _, l := range libs {
			if used[l.Name] || !overlaps(ref, "data."+l.Package) {
				continue
			}
			used[l.Name] = true
			queue = append(queue, l.refs...)
		}
	}
	var out []Lib
	for _, l := range libs {
		if used[l.Name] {
			out = append(out, l)
		}
	}
	return out
}

// refersTo reports whether ref names the package path pkg or something inside it.
func refersTo(ref, pkg string) bool {
	return ref == pkg || strings.HasPrefix(ref, pkg+".")
}

// overlaps reports whether ref reaches into package pkg: it names pkg, something inside it,
// or a package above it (data.lib reaches every lib).
func overlaps(ref, pkg string) bool { return refersTo(ref, pkg) || refersTo(pkg, ref) }

// checkRefs fails when a Rego file refers to a lib package that does not exist.
func checkRefs(file string, refs []string, libs []Lib) error {
	for _, r := range refs {
		if !refersTo(r, "data.lib") {
			continue
		}
		found := false
		for _, l := range libs {
			if overlaps(r, "data."+l.Package) {
				found = true
				break
			}
		}
		if !found {
			return &Error{Path: file, Err: fmt.Errorf("refers to %s, which no library/%s/*.rego defines", r, LibDir)}
		}
	}
	return nil
}
