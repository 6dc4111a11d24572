// Package manifests reads Kubernetes manifests as CI holds them (files, directories, stdin;
// multi-document YAML, JSON, kind: List) into objects that remember where they were written:
// the file, the document, and the line and column of every image reference (yaml.v3 node
// positions), so a finding can point at the offending scalar and `imagetrust pin` can rewrite
// exactly its bytes.
package manifests

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Stdin is the name a source read from standard input carries.
const Stdin = "<stdin>"

// MaxFileBytes bounds one input file (or standard input).
const MaxFileBytes = 64 << 20

// Source is one input: its name as shown in findings and its bytes.
type Source struct {
	Name string
	Data []byte
}

// Error is input that cannot be used. It names the file and, when known, the line and column.
type Error struct {
	File   string
	Line   int // 0: the whole file
	Column int
	Err    error
}

func (e *Error) Error() string {
	switch {
	case e.Line > 0 && e.Column > 0:
		return fmt.Sprintf("%s:%d:%d: %v", e.File, e.Line, e.Column, e.Err)
	case e.Line > 0:
		return fmt.Sprintf("%s:%d: %v", e.File, e.Line, e.Err)
	default:
		return fmt.Sprintf("%s: %v", e.File, e.Err)
	}
}

func (e *Error) Unwrap() error { return e.Err }

// IsManifestFile reports whether a file found in a directory is read: YAML and JSON files.
func IsManifestFile(name string) bool {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".yaml", ".yml", ".json":
		return true
	}
	return false
}

// Collect reads the named inputs: "-" is stdin (read once), a directory is walked recursively
// for *.yaml, *.yml and *.json files (sorted, hidden directories skipped), anything else is
// read as a file whatever its name.
func Collect(paths []string, stdin io.Reader) ([]Source, error) {
	var out []Source
	readStdin := false
	for _, p := range paths {
		if p == "-" {
			if readStdin {
				return nil, &Error{File: Stdin, Err: errors.New("standard input named twice")}
			}
			readStdin = true
			b, err := readLimited(stdin)
			if err != nil {
				return nil, &Error{File: Stdin, Err: err}
			}
			out = append(out, Source{Name: Stdin, Data: b})
			continue
		}
		st, err := os.Stat(p)
		if err != nil {
			return nil, &Error{File: p, Err: err}
		}
		if !st.IsDir() {
			src, err := readFile(p)
			if err != nil {
				return nil, err
			}
			out = append(out, src)
			continue
		}
		var files []string
		err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				if path != p && strings.HasPrefix(d.Name(), ".") {
					return filepath.SkipDir
				}
				return nil
			}
			if IsManifestFile(d.Name()) {
				files = append(files, path)
			}
			return nil
		})
		if err != nil {
			return nil, &Error{File: p, Err: err}
		}
		sort.Strings(files)
		for _, f := range files {
			src, err := readFile(f)
			if err != nil {
				return nil, err
			}
			out = append(out, src)
		}
	}
	return out, nil
}

func readFile(p string) (Source, error) {
	f, err := os.Open(p) //nolint:gosec // the user names the manifests to read
	if err != nil {
		return Source{}, &Error{File: p, Err: err}
	}
	defer func() { _ = f.Close() }()
	b, err := readLimited(f)
	if err != nil {
		return Source{}, &Error{File: p, Err: err}
	}
	return Source{Name: p, Data: b}, nil
}

func readLimited(r io.Reader) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxFileBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > MaxFileBytes {
		return nil, fmt.Errorf("larger than %d bytes", MaxFileBytes)
	}
	return b, nil
}

// Object is one Kubernetes object of the input.
type Object struct {
	File string
	// Doc is the 1-based YAML document of the file; Item the 0-based index in a List (-1: not
	// in a List).
	Doc, Item int
	// Line and Column of the object's first key.
	Line, Column int
	Object       *unstructured.Unstructured
	Images       []Image
}

// Ref names the object as findings do: Kind namespace/name (Kind name when cluster-scoped or
// without namespace).
func (o *Object) Ref() string {
	if ns := o.Object.GetNamespace(); ns != "" {
		return o.Object.GetKind() + " " + ns + "/" + o.Object.GetName()
	}
	return o.Object.GetKind() + " " + o.Object.GetName()
}

// Image is one image reference scalar of an object.
type Image struct {
	// Field is containers, initContainers, ephemeralContainers or volumes.
	Field string
	// Name is the container's (or the image volume's) name.
	Name string
	// Path is the field path in the object ("spec.template.spec.containers[0].image").
	Path  string
	Value string
	// Line and Column (1-based, in characters) of the scalar, quotes included.
	Line, Column int
	// Offset is the byte offset of the scalar in the file; Style its yaml.v3 style.
	Offset int
	Style  yaml.Style
	// Alias is true when the field is an alias (*name): the scalar is the anchored one.
	Alias bool
}

// Parse reads every object of src. Documents that are empty or hold only comments are
// skipped; anything else must be a Kubernetes object (a mapping with apiVersion and kind) or
// a List of them.
func Parse(src Source) ([]Object, error) {
	t := newText(src.Data)
	dec := yaml.NewDecoder(bytes.NewReader(src.Data))
	var out []Object
	for doc := 1; ; doc++ {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, yamlError(src.Name, err)
		}
		if len(n.Content) == 0 {
			continue
		}
		root := n.Content[0]
		if root.Kind == yaml.ScalarNode && root.ShortTag() == "!!null" {
			continue
		}
		objs, err := parseDocument(src.Name, doc, root, t)
		if err != nil {
			return nil, err
		}
		out = append(out, objs...)
	}
}

// ParseAll parses every source in order.
func ParseAll(srcs []Source) ([]Object, error) {
	var out []Object
	for _, s := range srcs {
		objs, err := Parse(s)
		if err != nil {
			return nil, err
		}
		out = append(out, objs...)
	}
	return out, nil
}

func parseDocument(file string, doc int, root *yaml.Node, t *text) ([]Object, error) {
	root = deref(root)
	if root.Kind != yaml.MappingNode {
		return nil, &Error{File: file, Line: root.Line, Column: root.Column,
			Err: fmt.Errorf("document %d is not a Kubernetes object: want a mapping with apiVersion and kind, got a %s", doc, kindName(root))}
	}
	kind := scalarField(root, "kind")
	if items := field(root, "items"); items != nil && (kind == "List" || strings.HasSuffix(kind, "List")) {
		items = deref(items)
		if items.Kind != yaml.SequenceNode {
			return nil, &Error{File: file, Line: items.Line, Column: items.Column, Err: fmt.Errorf("document %d: %s items must be a list", doc, kind)}
		}
		out := make([]Object, 0, len(items.Content))
		for i, it := range items.Content {
			it = deref(it)
			if it.Kind != yaml.MappingNode {
				return nil, &Error{File: file, Line: it.Line, Column: it.Column, Err: fmt.Errorf("document %d: items[%d] is not a Kubernetes object (a mapping), got a %s", doc, i, kindName(it))}
			}
			o, err := newObject(file, doc, i, it, t)
			if err != nil {
				return nil, err
			}
			out = append(out, o)
		}
		return out, nil
	}
	o, err := newObject(file, doc, -1, root, t)
	if err != nil {
		return nil, err
	}
	return []Object{o}, nil
}

func newObject(file string, doc, item int, m *yaml.Node, t *text) (Object, error) {
	where := fmt.Sprintf("document %d", doc)
	if item >= 0 {
		where += fmt.Sprintf(" items[%d]", item)
	}
	for _, k := range []string{"apiVersion", "kind"} {
		v := field(m, k)
		if v == nil {
			return Object{}, &Error{File: file, Line: m.Line, Column: m.Column, Err: fmt.Errorf("%s is not a Kubernetes object: no %s", where, k)}
		}
		if v = deref(v); v.Kind != yaml.ScalarNode || v.ShortTag() != "!!str" || v.Value == "" {
			return Object{}, &Error{File: file, Line: v.Line, Column: v.Column, Err: fmt.Errorf("%s: %s must be a non-empty string", where, k)}
		}
	}
	val, err := toValue(m)
	if err != nil {
		return Object{}, atLine(file, m, where, err)
	}
	obj, ok := val.(map[string]any)
	if !ok {
		return Object{}, &Error{File: file, Line: m.Line, Column: m.Column, Err: fmt.Errorf("%s is not a mapping", where)}
	}
	u := &unstructured.Unstructured{Object: obj}
	if err := checkKind(u); err != nil {
		k := deref(field(m, "kind"))
		return Object{}, &Error{File: file, Line: k.Line, Column: k.Column, Err: fmt.Errorf("%s: %w", where, err)}
	}
	if md := field(m, "metadata"); md != nil && deref(md).Kind != yaml.MappingNode {
		md = deref(md)
		return Object{}, &Error{File: file, Line: md.Line, Column: md.Column, Err: fmt.Errorf("%s: metadata must be a mapping", where)}
	}
	o := Object{File: file, Doc: doc, Item: item, Line: m.Line, Column: m.Column, Object: u}
	imgs, err := findImages(u.GetKind(), m, t)
	if err != nil {
		return Object{}, atLine(file, m, where, err)
	}
	o.Images = imgs
	return o, nil
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "list"
	case yaml.ScalarNode:
		return fmt.Sprintf("scalar %q", n.Value)
	case yaml.MappingNode:
		return "mapping"
	}
	return "node"
}

// yamlError turns a yaml.v3 error ("yaml: line 3: …") into an Error with the line.
func yamlError(file string, err error) error {
	msg := err.Error()
	var line int
	if _, scanErr := fmt.Sscanf(strings.TrimPrefix(msg, "yaml: "), "line %d:", &line); scanErr == nil && line > 0 {
		rest := msg[strings.Index(msg, ":")+1:]
		rest = strings.TrimSpace(rest[strings.Index(rest, ":")+1:])
		return &Error{File: file, Line: line, Err: fmt.Errorf("not valid YAML: %s", rest)}
	}
	return &Error{File: file, Err: fmt.Errorf("not valid YAML: %w", err)}
}

// atLine places err at the line it names, else at the object.
func atLine(file string, m *yaml.Node, where string, err error) error {
	var ne *nodeError
	if errors.As(err, &ne) {
		return &Error{File: file, Line: ne.line, Err: fmt.Errorf("%s: %w", where, ne.err)}
	}
	return &Error{File: file, Line: m.Line, Column: m.Column, Err: fmt.Errorf("%s: %w", where, err)}
}
