// Package templategen renders Gatekeeper ConstraintTemplates from the Rego library:
// every library/<name>/ (src.rego + template.yaml) becomes templates/<name>.yaml, with
// the library/lib/*.rego files it uses (directly or through each other) included once in its libs.
package templategen

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"text/template"

	"sigs.k8s.io/yaml"
)

// LibDir is the library folder whose Rego files are shared by every template.
const LibDir = "lib"

// MetadataFile and SourceFile are the files every template folder must have.
const (
	MetadataFile = "template.yaml"
	SourceFile   = "src.rego"
)

//go:embed template.yaml.tmpl template.md.tmpl
var tmplFS embed.FS

var (
	kindRe   = regexp.MustCompile(`^[A-Z][A-Za-z0-9]*$`)
	semverRe = regexp.MustCompile(`^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$`)
	paramRe  = regexp.MustCompile(`^[a-z][A-Za-z0-9]*$`)
)

// Metadata is the content of library/<name>/template.yaml.
type Metadata struct {
	// Kind of the Constraint (PascalCase). Required. The template's name and the Rego
	// package are Kind in lowercase.
	Kind string `json:"kind"`
	// Title for metadata.gatekeeper.sh/title. Required.
	Title string `json:"title"`
	// Version (semver) for metadata.gatekeeper.sh/version. Required.
	Version string `json:"version"`
	// Description for the description annotation. Required.
	Description string `json:"description"`
	// Parameters are the openAPIV3Schema properties of spec.parameters; each needs
	// type and description (nested properties too).
	Parameters map[string]any `json:"parameters"`
}

// Lib is one shared Rego file.
type Lib struct {
	Name    string
	Package string // e.g. lib.imagetrust.review
	Source  string
	refs    []string
}

// Template is one template folder, loaded and checked.
type Template struct {
	Dir      string // folder name under library/, also the output file name
	Metadata Metadata
	Rego     string
	refs     []string
}

// Error names the library file that is wrong.
type Error struct {
	Path string
	Err  error
}

// Error returns "path: reason".
func (e *Error) Error() string { return e.Path + ": " + e.Err.Error() }

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// Library is the loaded library/ folder.
type Library struct {
	Libs      []Lib
	Templates []Template
}

// Load reads the library folder fsys (library/).
func Load(fsys fs.FS) (*Library, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("reading library: %w", err)
	}
	lib := &Library{}
	libs, err := loadLibs(fsys)
	if err != nil {
		return nil, err
	}
	lib.Libs = libs
	for _, l := range libs {
		if err := checkRefs(path.Join(LibDir, l.Name), l.refs, libs); err != nil {
			return nil, err
		}
	}
	for _, e := range entries {
		if !e.IsDir() || e.Name() == LibDir || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		t, err := loadTemplate(fsys, e.Name())
		if err != nil {
			return nil, err
		}
		if err := checkRefs(path.Join(t.Dir, SourceFile), t.refs, libs); err != nil {
			return nil, err
		}
		lib.Templates = append(lib.Templates, *t)
	}
	if len(lib.Templates) == 0 {
		return nil, &Error{Path: ".", Err: errors.New("no template folders (library/<name>/ with " + MetadataFile + ")")}
	}
	return lib, nil
}

func loadLibs(fsys fs.FS) ([]Lib, error) {
	entries, err := fs.ReadDir(fsys, LibDir)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", LibDir, err)
	}
	var libs []Lib
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".rego") || strings.HasSuffix(name, "_test.rego") {
			continue
		}
		p := path.Join(LibDir, name)
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", p, err)
		}
		src := string(b)
		pkg, refs, err := parseRefs(p, src)
		if err != nil {
			return nil, &Error{Path: p, Err: err}
		}
		if pkg != "lib" && !strings.HasPrefix(pkg, "lib.") {
			return nil, &Error{Path: p, Err: fmt.Errorf("package %q: Gatekeeper libs must be in package lib or lib.*", pkg)}
		}
		libs = append(libs, Lib{Name: name, Package: pkg, Source: src, refs: refs})
	}
	sort.Slice(libs, func(i, j int) bool { return libs[i].Name < libs[j].Name })
	if len(libs) == 0 {
		return nil, &Error{Path: LibDir, Err: errors.New("no .rego files")}
	}
	return libs, nil
}

func loadTemplate(fsys fs.FS, dir string) (*Template, error) {
	mp := path.Join(dir, MetadataFile)
	mb, err := fs.ReadFile(fsys, mp)
	if err != nil {
		return nil, &Error{Path: mp, Err: err}
	}
	var md Metadata
	if err := yaml.UnmarshalStrict(mb, &md); err != nil {
		return nil, &Error{Path: mp, Err: err}
	}
	if err := md.validate(); err != nil {
		return nil, &Error{Path: mp, Err: err}
	}
	sp := path.Join(dir, SourceFile)
	sb, err := fs.ReadFile(fsys, sp)
	if err != nil {
		return nil, &Error{Path: sp, Err: err}
	}
	src := string(sb)
	pkg, refs, err := parseRefs(sp, src)
	if err != nil {
		return nil, &Error{Path: sp, Err: err}
	}
	if want := strings.ToLower(md.Kind); pkg != want {
		return nil, &Error{Path: sp, Err: fmt.Errorf("package %q, want %q (the kind in lowercase)", pkg, want)}
	}
	return &Template{Dir: dir, Metadata: md, Rego: src, refs: refs}, nil
}

func (m *Metadata) validate() error {
	var errs []error
	if !kindRe.MatchString(m.Kind) {
		errs = append(errs, fmt.Errorf("kind %q must be PascalCase", m.Kind))
	}
	if strings.TrimSpace(m.Title) == "" {
		errs = append(errs, errors.New("title is required"))
	}
	if !semverRe.MatchString(m.Version) {
		errs = append(errs, fmt.Errorf("version %q must be semver MAJOR.MINOR.PATCH", m.Version))
	}
	if strings.TrimSpace(m.Description) == "" {
		errs = append(errs, errors.New("description is required"))
	}
	names := make([]string, 0, len(m.Parameters))
	for n := range m.Parameters {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if !paramRe.MatchString(n) {
			errs = append(errs, fmt.Errorf("parameters.%s: parameter names are camelCase", n))
		}
		errs = append(errs, validateSchema("parameters."+n, m.Parameters[n], true)...)
	}
	return errors.Join(errs...)
}

// validateSchema checks that a schema has a type and (where needDesc) a description,
// recursively through items and properties.
func validateSchema(where string, v any, needDesc bool) []error {
	s, ok := v.(map[string]any)
	if !ok {
		return []error{fmt.Errorf("%s: must be a schema object", where)}
	}
	var errs []error
	typ, _ := s["type"].(string)
	if typ == "" {
		errs = append(errs, fmt.Errorf("%s: type is required", where))
	}
	if d, _ := s["description"].(string); needDesc && strings.TrimSpace(d) == "" {
		errs = append(errs, fmt.Errorf("%s: description is required", where))
	}
	if items, ok := s["items"]; ok {
		errs = append(errs, validateSchema(where+".items", items, false)...)
	} else if typ == "array" {
		errs = append(errs, fmt.Errorf("%s: arrays need items", where))
	}
	if props, ok := s["properties"].(map[string]any); ok {
		keys := make([]string, 0, len(props))
		for k := range props {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			errs = append(errs, validateSchema(where+".properties."+k, props[k], true)...)
		}
	}
	return errs
}

// Render returns templates/<t.Dir>.yaml for t with the libs it uses (directly or through
// other libs), each once: a template that asks no provider carries no external_data call.
func Render(t Template, libs []Lib) ([]byte, error) {
	props, err := yaml.Marshal(t.Metadata.Parameters)
	if err != nil {
		return nil, fmt.Errorf("%s: marshalling parameters: %w", t.Dir, err)
	}
	if len(t.Metadata.Parameters) == 0 {
		props = []byte("{}")
	}
	tmpl, err := template.New("template.yaml.tmpl").Funcs(template.FuncMap{
		"indent": indent,
		"quote":  quote,
	}).ParseFS(tmplFS, "template.yaml.tmpl")
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	err = tmpl.Execute(&buf, map[string]any{
		"Dir":         t.Dir,
		"Name":        strings.ToLower(t.Metadata.Kind),
		"Kind":        t.Metadata.Kind,
		"Title":       strings.TrimSpace(t.Metadata.Title),
		"Version":     t.Metadata.Version,
		"Description": strings.TrimSpace(t.Metadata.Description),
		"Properties":  string(props),
		"Rego":        t.Rego,
		"Libs":        usedLibs(t.refs, libs),
	})
	if err != nil {
		return nil, fmt.Errorf("%s: rendering: %w", t.Dir, err)
	}
	return buf.Bytes(), nil
}

// indent prefixes every non-empty line of s with n spaces and drops the final newline
// and trailing blanks, so block scalars stay valid YAML.
func indent(n int, s string) string {
	pad := strings.Repeat(" ", n)
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		l = strings.TrimRight(l, " \t")
		if l != "" {
			l = pad + l
		}
		lines[i] = l
	}
	return strings.Join(lines, "\n")
}

// quote renders s as a YAML double-quoted scalar (JSON strings are valid YAML).
func quote(s string) (string, error) {
	b, err := json.Marshal(s)
	return string(b), err
}

// Files renders every template of the library: output file name -> content.
func (l *Library) Files() (map[string][]byte, error) {
	out := make(map[string][]byte, len(l.Templates))
	for _, t := range l.Templates {
		b, err := Render(t, l.Libs)
		if err != nil {
			return nil, err
		}
		out[t.Dir+".yaml"] = b
	}
	return out, nil
}

// Dirs names the folders the generator reads and writes.
type Dirs struct {
	Library     string // library/, read. Required.
	Templates   string // templates/, written. Required.
	Docs        string // docs/templates/, written. Optional: no pages when empty.
	Constraints string // constraints/, read for the pages' examples. Optional.
}

// render returns every output file (path under d's folders) with its content.
func render(d Dirs) (map[string][]byte, error) {
	lib, err := Load(os.DirFS(d.Library))
	if err != nil {
		return nil, err
	}
	files, err := lib.Files()
	if err != nil {
		return nil, err
	}
	out := make(map[string][]byte, 2*len(files))
	for name, b := range files {
		out[filepath.Join(d.Templates, name)] = b
	}
	if d.Docs == "" {
		return out, nil
	}
	for _, t := range lib.Templates {
		var examples []Example
		if d.Constraints != "" {
			examples, err = Examples(os.DirFS(d.Constraints), filepath.ToSlash(filepath.Base(d.Constraints)), t.Metadata.Kind, t.Dir)
			if err != nil {
				return nil, err
			}
		}
		page, err := lib.Page(t, examples)
		if err != nil {
			return nil, err
		}
		out[filepath.Join(d.Docs, t.Dir+".md")] = page
	}
	return out, nil
}

// Generate renders d.Library into d.Templates (and d.Docs) and returns the files written.
func Generate(d Dirs) ([]string, error) {
	files, err := render(d)
	if err != nil {
		return nil, err
	}
	var written []string
	for _, p := range sortedKeys(files) {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil { //nolint:gosec // G301: templates/ and docs/ are part of the repository, readable like the rest of it
			return written, err
		}
		if err := os.WriteFile(p, files[p], 0o644); err != nil { //nolint:gosec // templates and pages are public
			return written, err
		}
		written = append(written, p)
	}
	return written, nil
}

// Stale lists the output files that differ from what d.Library renders (missing files
// included). An empty list means templates/ (and docs/templates/) are up to date.
func Stale(d Dirs) ([]string, error) {
	files, err := render(d)
	if err != nil {
		return nil, err
	}
	var stale []string
	for _, p := range sortedKeys(files) {
		got, err := os.ReadFile(p) //nolint:gosec // reading the generator's own output folders
		if err != nil || !bytes.Equal(got, files[p]) {
			stale = append(stale, p)
		}
	}
	return stale, nil
}

func sortedKeys(m map[string][]byte) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
