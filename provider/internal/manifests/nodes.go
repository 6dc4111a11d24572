package manifests

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/scheme"
)

// nodeError is a problem at a line of the input.
type nodeError struct {
	line int
	err  error
}

func (e *nodeError) Error() string { return e.err.Error() }
func (e *nodeError) Unwrap() error { return e.err }

// deref follows aliases to the anchored node.
func deref(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

// field returns the value node of key in mapping m (merge keys included), or nil.
func field(m *yaml.Node, key string) *yaml.Node {
	m = deref(m)
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if k := m.Content[i]; k.Kind == yaml.ScalarNode && k.Value == key && k.ShortTag() != "!!merge" {
			return m.Content[i+1]
		}
	}
	// Merge keys (<<: *base or <<: [*a, *b]): the first mapping that has the key wins.
	for i := 0; i+1 < len(m.Content); i += 2 {
		if k := m.Content[i]; k.ShortTag() == "!!merge" {
			v := deref(m.Content[i+1])
			srcs := []*yaml.Node{v}
			if v.Kind == yaml.SequenceNode {
				srcs = v.Content
			}
			for _, s := range srcs {
				if f := field(s, key); f != nil {
					return f
				}
			}
		}
	}
	return nil
}

func scalarField(m *yaml.Node, key string) string {
	v := deref(field(m, key))
	if v == nil || v.Kind != yaml.ScalarNode {
		return ""
	}
	return v.Value
}

// maxDepth bounds nesting (and alias expansion) of one object.
const maxDepth = 200

// toValue converts a node to the JSON-compatible value unstructured objects hold: maps with
// string keys, []any, string, int64, float64, bool, nil.
func toValue(n *yaml.Node) (any, error) { return toValueDepth(n, 0) }

func toValueDepth(n *yaml.Node, depth int) (any, error) {
	if depth > maxDepth {
		return nil, &nodeError{line: n.Line, err: fmt.Errorf("nested more than %d levels deep", maxDepth)}
	}
	n = deref(n)
	switch n.Kind {
	case yaml.MappingNode:
		out := make(map[string]any, len(n.Content)/2)
		var merges []*yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := deref(n.Content[i]), n.Content[i+1]
			if k.ShortTag() == "!!merge" {
				merges = append(merges, deref(v))
				continue
			}
			if k.Kind != yaml.ScalarNode {
				return nil, &nodeError{line: k.Line, err: errors.New("mapping key is not a scalar")}
			}
			if _, dup := out[k.Value]; dup {
				return nil, &nodeError{line: k.Line, err: fmt.Errorf("key %q appears twice", k.Value)}
			}
			val, err := toValueDepth(v, depth+1)
			if err != nil {
				return nil, err
			}
			out[k.Value] = val
		}
		for _, m := range merges {
			srcs := []*yaml.Node{m}
			if m.Kind == yaml.SequenceNode {
				srcs = m.Content
			}
			for _, s := range srcs {
				mv, err := toValueDepth(s, depth+1)
				if err != nil {
					return nil, err
				}
				mm, ok := mv.(map[string]any)
				if !ok {
					return nil, &nodeError{line: s.Line, err: errors.New("merge key value is not a mapping")}
				}
				for k, v := range mm {
					if _, set := out[k]; !set {
						out[k] = v
					}
				}
			}
		}
		return out, nil
	case yaml.SequenceNode:
		out := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			v, err := toValueDepth(c, depth+1)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	case yaml.ScalarNode:
		return scalarValue(n)
	}
	return nil, &nodeError{line: n.Line, err: errors.New("unexpected YAML node")}
}

func scalarValue(n *yaml.Node) (any, error) {
	switch n.ShortTag() {
	case "!!null":
		return nil, nil
	case "!!bool":
		var b bool
		if err := n.Decode(&b); err != nil {
			return nil, &nodeError{line: n.Line, err: err}
		}
		return b, nil
	case "!!int":
		var i int64
		if err := n.Decode(&i); err != nil {
			return nil, &nodeError{line: n.Line, err: fmt.Errorf("integer %q: %w", n.Value, err)}
		}
		return i, nil
	case "!!float":
		var f float64
		if err := n.Decode(&f); err != nil {
			return nil, &nodeError{line: n.Line, err: fmt.Errorf("number %q: %w", n.Value, err)}
		}
		if math.IsInf(f, 0) || math.IsNaN(f) {
			return nil, &nodeError{line: n.Line, err: fmt.Errorf("number %q cannot be represented in JSON", n.Value)}
		}
		if f == math.Trunc(f) && math.Abs(f) < 1<<53 && !strings.ContainsAny(n.Value, ".eE") {
			return int64(f), nil
		}
		return f, nil
	case "!!binary":
		return n.Value, nil
	}
	// Strings, timestamps (kept as written, as the API server's JSON would carry them).
	return n.Value, nil
}

// checkKind rejects a kind that the object's built-in API group/version does not have (a typo
// such as apps/v1 Deploymnet would otherwise pass every check as an unmatched object).
// Kinds of other groups (custom resources) are accepted.
func checkKind(u *unstructured.Unstructured) error {
	gv, err := schema.ParseGroupVersion(u.GetAPIVersion())
	if err != nil {
		return fmt.Errorf("apiVersion %q: %w", u.GetAPIVersion(), err)
	}
	gvk := gv.WithKind(u.GetKind())
	s := scheme.Scheme
	if !s.IsGroupRegistered(gv.Group) {
		return nil
	}
	if !s.IsVersionRegistered(gv) {
		return fmt.Errorf("unknown kind %s: the API group %q has no version %q", u.GetKind(), gv.Group, gv.Version)
	}
	if !s.Recognizes(gvk) {
		return fmt.Errorf("unknown kind %q in %s", u.GetKind(), gv.String())
	}
	return nil
}

// podSpecPaths says where each kind keeps its pod spec (the kinds the templates review).
var podSpecPaths = map[string][]string{
	"Pod":                   {"spec"},
	"PodTemplate":           {"template", "spec"},
	"Deployment":            {"spec", "template", "spec"},
	"StatefulSet":           {"spec", "template", "spec"},
	"DaemonSet":             {"spec", "template", "spec"},
	"ReplicaSet":            {"spec", "template", "spec"},
	"ReplicationController": {"spec", "template", "spec"},
	"Job":                   {"spec", "template", "spec"},
	"CronJob":               {"spec", "jobTemplate", "spec", "template", "spec"},
}

// PodSpecPath returns the path of kind's pod spec, or nil when the kind has none.
func PodSpecPath(kind string) []string { return podSpecPaths[kind] }

var containerFields = []string{"containers", "initContainers", "ephemeralContainers"}

func findImages(kind string, obj *yaml.Node, t *text) ([]Image, error) {
	path := podSpecPaths[kind]
	if path == nil {
		return nil, nil
	}
	spec := obj
	for _, p := range path {
		spec = field(spec, p)
		if spec == nil {
			return nil, nil
		}
	}
	if deref(spec).Kind != yaml.MappingNode {
		return nil, nil
	}
	prefix := strings.Join(path, ".")
	var out []Image
	for _, f := range containerFields {
		seq := deref(field(spec, f))
		if seq == nil || seq.Kind != yaml.SequenceNode {
			continue
		}
		for i, c := range seq.Content {
			img := field(c, "image")
			if img == nil {
				continue
			}
			im, err := newImage(f, scalarField(c, "name"), fmt.Sprintf("%s.%s[%d].image", prefix, f, i), img, t)
			if err != nil {
				return nil, err
			}
			out = append(out, im)
		}
	}
	if vols := deref(field(spec, "volumes")); vols != nil && vols.Kind == yaml.SequenceNode {
		for i, v := range vols.Content {
			ref := field(field(v, "image"), "reference")
			if ref == nil {
				continue
			}
			im, err := newImage("volumes", scalarField(v, "name"), fmt.Sprintf("%s.volumes[%d].image.reference", prefix, i), ref, t)
			if err != nil {
				return nil, err
			}
			out = append(out, im)
		}
	}
	return out, nil
}

func newImage(fieldName, name, path string, n *yaml.Node, t *text) (Image, error) {
	alias := n.Kind == yaml.AliasNode
	s := deref(n)
	if s.Kind != yaml.ScalarNode || s.ShortTag() == "!!null" {
		return Image{}, &nodeError{line: s.Line, err: fmt.Errorf("%s must be a string", path)}
	}
	im := Image{
		Field: fieldName, Name: name, Path: path, Value: s.Value,
		Line: s.Line, Column: s.Column, Style: s.Style, Alias: alias,
		Offset: t.offset(s.Line, s.Column),
	}
	// yaml.v3 places a scalar with properties (&anchor, !tag) at its first property: move to
	// the scalar itself.
	if im.Offset >= 0 && (s.Anchor != "" || s.Tag != "" && s.Style&yaml.TaggedStyle != 0) {
		im.Offset = t.skipProperties(im.Offset)
		im.Line, im.Column = t.position(im.Offset)
	}
	return im, nil
}

// text is a file's bytes with the offset of each line.
type text struct {
	data  []byte
	lines []int // byte offset of each line; index 0 is line 1
}

// newText indexes data. A line ends at "\n"; "\r\n" is one break, as yaml.v3 counts it.
func newText(data []byte) *text {
	t := &text{data: data, lines: []int{0}}
	for i, c := range data {
		if c == '\n' {
			t.lines = append(t.lines, i+1)
		}
	}
	return t
}

// offset converts a yaml.v3 position (1-based line, 1-based column counted in characters) to
// a byte offset, or -1 when it is outside the data. Callers check the bytes found there.
func (t *text) offset(line, col int) int {
	if line < 1 || line > len(t.lines) || col < 1 {
		return -1
	}
	i := t.lines[line-1]
	for c := 1; c < col; c++ {
		if i >= len(t.data) || t.data[i] == '\n' {
			return -1
		}
		_, w := utf8.DecodeRune(t.data[i:])
		i += w
	}
	return i
}

// skipProperties skips anchors and tags (and the blanks after them) starting at off.
func (t *text) skipProperties(off int) int {
	for off < len(t.data) && (t.data[off] == '&' || t.data[off] == '!') {
		for off < len(t.data) && !isBlank(t.data[off]) {
			off++
		}
		for off < len(t.data) && isBlank(t.data[off]) {
			off++
		}
	}
	return off
}

func isBlank(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// position converts a byte offset to a 1-based line and character column.
func (t *text) position(off int) (int, int) {
	line := sort.Search(len(t.lines), func(i int) bool { return t.lines[i] > off })
	return line, utf8.RuneCount(t.data[t.lines[line-1]:off]) + 1
}

// Quote returns s as a YAML scalar of the given style, for a rewrite that keeps the style.
func Quote(s string, style yaml.Style) string {
	switch {
	case style&yaml.DoubleQuotedStyle != 0:
		return strconv.Quote(s)
	case style&yaml.SingleQuotedStyle != 0:
		return "'" + strings.ReplaceAll(s, "'", "''") + "'"
	}
	return s
}
