package templategen

import (
	"bytes"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strings"
	"text/template"

	"github.com/open-policy-agent/opa/v1/ast"
	"sigs.k8s.io/yaml"
)

// messageRules are the rules whose sprintf formats are violation messages or parts of them:
// the template's violations and configuration problems, and the libs' shared messages.
var messageRules = map[string]bool{
	"violation": true, "_container_violations": true, "config_problems": true,
	"problems": true, "invalid_message": true, "_misconfigured": true,
	"violations": true, "_failure_violations": true, "note": true,
}

// verbRe matches the fmt verbs the Rego formats use.
var verbRe = regexp.MustCompile(`%[-+# 0-9.]*[svdqtfx]`)

// Example is one constraint of the template's kind, shown on its page.
type Example struct {
	Path   string // e.g. constraints/base/bank.yaml
	Source string
}

// pageData is what template.md.tmpl renders.
type pageData struct {
	Dir, Kind, Title, Version, Description string
	Parameters                             []paramRow
	Messages, Problems                     []string // the template's own
	SharedMessages, SharedProblems         []string // from library/lib
	Provider                               string
	TransientClasses                       []string
	Examples                               []Example
}

type paramRow struct{ Name, Type, Description string }

// Page renders docs/templates/<t.Dir>.md for t: what it checks, its parameters, the
// messages it gives, lookups and failOpen, and the example constraints (of its kind).
func (l *Library) Page(t Template, examples []Example) ([]byte, error) {
	tmod, err := ast.ParseModuleWithOpts(t.Dir+"/"+SourceFile, t.Rego, ast.ParserOptions{RegoVersion: ast.RegoV1})
	if err != nil {
		return nil, &Error{Path: path.Join(t.Dir, SourceFile), Err: err}
	}
	d := pageData{
		Dir:         t.Dir,
		Kind:        t.Metadata.Kind,
		Title:       strings.TrimSpace(t.Metadata.Title),
		Version:     t.Metadata.Version,
		Description: strings.TrimSpace(t.Metadata.Description),
		Parameters:  paramRows("", t.Metadata.Parameters, nil),
		Provider:    stringRule(tmod, "provider"),
		Examples:    examples,
	}
	d.Messages, d.Problems = splitMessages(messageFormats(tmod))
	var shared []string
	for _, lib := range usedLibs(t.refs, l.Libs) {
		m, err := ast.ParseModuleWithOpts(lib.Name, lib.Source, ast.ParserOptions{RegoVersion: ast.RegoV1})
		if err != nil {
			return nil, &Error{Path: path.Join(LibDir, lib.Name), Err: err}
		}
		shared = append(shared, messageFormats(m)...)
		if d.Provider != "" {
			d.TransientClasses = append(d.TransientClasses, stringSetRule(m, "transient_classes")...)
		}
	}
	sort.Strings(shared)
	d.SharedMessages, d.SharedProblems = splitMessages(shared)
	sort.Strings(d.TransientClasses)
	tmpl, err := template.New("template.md.tmpl").Funcs(template.FuncMap{
		"cell": cell,
	}).ParseFS(tmplFS, "template.md.tmpl")
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := tmpl.Execute(&buf, d); err != nil {
		return nil, fmt.Errorf("%s: rendering page: %w", t.Dir, err)
	}
	return buf.Bytes(), nil
}

// paramRows flattens a parameters schema into table rows: arrays of objects and objects
// list their properties as name[].field / name.field.
func paramRows(prefix string, props map[string]any, required map[string]bool) []paramRow {
	names := make([]string, 0, len(props))
	for n := range props {
		names = append(names, n)
	}
	sort.Strings(names)
	var rows []paramRow
	for _, n := range names {
		s, _ := props[n].(map[string]any)
		typ, _ := s["type"].(string)
		desc, _ := s["description"].(string)
		name := prefix + n
		sub, sep := s, "."
		if items, ok := s["items"].(map[string]any); ok && typ == "array" {
			it, _ := items["type"].(string)
			typ = "array of " + it
			sub, sep = items, "[]."
			if e, ok := items["enum"].([]any); ok {
				typ += " (" + joinAny(e) + ")"
			}
		}
		if e, ok := s["enum"].([]any); ok {
			typ += " (" + joinAny(e) + ")"
		}
		if required[n] {
			typ += ", required"
		}
		rows = append(rows, paramRow{Name: name, Type: typ, Description: strings.TrimSpace(desc)})
		if subProps, ok := sub["properties"].(map[string]any); ok {
			req := map[string]bool{}
			if rl, ok := sub["required"].([]any); ok {
				for _, r := range rl {
					if rs, ok := r.(string); ok {
						req[rs] = true
					}
				}
			}
			rows = append(rows, paramRows(name+sep, subProps, req)...)
		}
	}
	return rows
}

func joinAny(vs []any) string {
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = fmt.Sprint(v)
	}
	return strings.Join(parts, ", ")
}

// messageFormats returns the sprintf formats of m's message rules, verbs shown as "…",
// de-duplicated and sorted.
func messageFormats(m *ast.Module) []string {
	seen := map[string]bool{}
	for _, r := range m.Rules {
		if !messageRules[r.Head.Name.String()] && !messageRules[refName(r.Head.Ref())] {
			continue
		}
		ast.WalkTerms(r, func(t *ast.Term) bool {
			call, ok := t.Value.(ast.Call)
			if !ok || len(call) < 2 || call[0].String() != "sprintf" {
				return false
			}
			if f, ok := call[1].Value.(ast.String); ok {
				seen[verbRe.ReplaceAllString(string(f), "…")] = true
			}
			return false
		})
	}
	out := make([]string, 0, len(seen))
	for s := range seen {
		if strings.Trim(s, "<>… ") != "" {
			out = append(out, s)
		}
	}
	sort.Strings(out)
	return out
}

// splitMessages separates container-level violations ("container <…> …") from
// configuration problems; the misconfiguration wrapper and the expiry note, which the page
// describes in words, are left out.
func splitMessages(formats []string) (messages, problems []string) {
	for _, f := range formats {
		switch {
		case strings.HasPrefix(f, "container <"):
			messages = append(messages, f)
		case strings.HasPrefix(f, "constraint is misconfigured: "), strings.Contains(f, " expired on <"):
		default:
			problems = append(problems, f)
		}
	}
	return messages, problems
}

// refName returns the last string of a rule head ref (name of a multi-value rule).
func refName(r ast.Ref) string {
	if len(r) == 0 {
		return ""
	}
	if s, ok := r[len(r)-1].Value.(ast.String); ok {
		return string(s)
	}
	return r[0].String()
}

// stringRule returns the value of `name := "..."` in m, or "".
func stringRule(m *ast.Module, name string) string {
	for _, r := range m.Rules {
		if r.Head.Name.String() != name || r.Head.Value == nil {
			continue
		}
		if s, ok := r.Head.Value.Value.(ast.String); ok {
			return string(s)
		}
	}
	return ""
}

// stringSetRule returns the strings of `name := {"...", ...}` in m.
func stringSetRule(m *ast.Module, name string) []string {
	var out []string
	for _, r := range m.Rules {
		if r.Head.Name.String() != name || r.Head.Value == nil {
			continue
		}
		if set, ok := r.Head.Value.Value.(ast.Set); ok {
			set.Foreach(func(t *ast.Term) {
				if s, ok := t.Value.(ast.String); ok {
					out = append(out, string(s))
				}
			})
		}
	}
	return out
}

// cell makes s safe inside a Markdown table cell: one line, "|" escaped.
func cell(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	return strings.ReplaceAll(s, "|", `\|`)
}

// Examples reads the constraints of kind under fsys (constraints/), dir first, then the rest,
// each as written. paths are shown relative to the repository (prefix + path).
func Examples(fsys fs.FS, prefix, kind, dir string) ([]Example, error) {
	var out []Example
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".yaml") {
			return err
		}
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		var head struct {
			Kind string `json:"kind"`
		}
		if err := yaml.Unmarshal(b, &head); err != nil {
			return &Error{Path: path.Join(prefix, p), Err: err}
		}
		if head.Kind == kind {
			out = append(out, Example{Path: path.Join(prefix, p), Source: strings.TrimRight(string(b), "\n")})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	first := path.Join(prefix, dir) + "/"
	sort.SliceStable(out, func(i, j int) bool {
		ai, aj := strings.HasPrefix(out[i].Path, first), strings.HasPrefix(out[j].Path, first)
		if ai != aj {
			return ai
		}
		return out[i].Path < out[j].Path
	})
	return out, nil
}
