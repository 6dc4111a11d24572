package policy

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"

	"github.com/imagetrust/imagetrust/provider/internal/wire"
)

// libraryModules parses every Rego file of library/ except the tests.
func libraryModules(t *testing.T) map[string]*ast.Module {
	t.Helper()
	mods := map[string]*ast.Module{}
	err := filepath.WalkDir(repoPath("library"), func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".rego") || strings.HasSuffix(p, "_test.rego") {
			return err
		}
		src, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		m, err := ast.ParseModuleWithOpts(p, string(src), ast.ParserOptions{RegoVersion: ast.RegoV1})
		if err != nil {
			return err
		}
		mods[p] = m
		return nil
	})
	if err != nil {
		t.Fatalf("reading library/: %v", err)
	}
	return mods
}

// libraryQuery prepares query over the whole library, compiled with the capabilities file
// opa check uses (external_data declared).
func libraryQuery(t *testing.T, query string) rego.PreparedEvalQuery {
	t.Helper()
	caps, err := ast.LoadCapabilitiesFile(repoPath("library", "capabilities.json"))
	if err != nil {
		t.Fatalf("loading library/capabilities.json: %v", err)
	}
	opts := []func(*rego.Rego){rego.Query(query), rego.Capabilities(caps)}
	for _, m := range libraryModules(t) {
		opts = append(opts, rego.ParsedModule(m))
	}
	pq, err := rego.New(opts...).PrepareForEval(context.Background())
	if err != nil {
		t.Fatalf("compiling library/ for %s: %v", query, err)
	}
	return pq
}

func evalOne(t *testing.T, pq rego.PreparedEvalQuery, opts ...rego.EvalOption) any {
	t.Helper()
	rs, err := pq.Eval(context.Background(), opts...)
	if err != nil {
		t.Fatalf("Eval: %v", err)
	}
	if len(rs) != 1 || len(rs[0].Expressions) != 1 {
		return nil
	}
	return rs[0].Expressions[0].Value
}

// TestTransientClassesMatchWire holds the Rego that decides failOpen to the Go that writes
// the per-key errors: transient_classes in library/lib/externaldata.rego, evaluated by the
// OPA engine, is exactly the set of wire.Class values with Transient(), and is_transient
// answers every class's message as Transient does.
func TestTransientClassesMatchWire(t *testing.T) {
	got := evalOne(t, libraryQuery(t, "data.lib.imagetrust.externaldata.transient_classes"))
	list, ok := got.([]any)
	if !ok {
		t.Fatalf("transient_classes = %v (%T), want a set of strings", got, got)
	}
	var inRego []string
	for _, v := range list {
		s, ok := v.(string)
		if !ok {
			t.Fatalf("transient_classes holds %v (%T), want strings", v, v)
		}
		if _, known := wire.ClassOf(s + ": x"); !known || wire.Class(s).Prefix() != s+": " {
			t.Errorf("transient_classes holds %q, which is not a wire.Class", s)
		}
		inRego = append(inRego, s)
	}
	var want []string
	for _, c := range wire.Classes {
		if c.Transient() {
			want = append(want, string(c))
		}
	}
	slices.Sort(inRego)
	slices.Sort(want)
	if !slices.Equal(inRego, want) {
		t.Errorf("transient_classes = %q, want the wire classes with Transient() = %q", inRego, want)
	}

	pq := libraryQuery(t, "data.lib.imagetrust.externaldata.is_transient(input.msg)")
	for _, c := range wire.Classes {
		msg := c.Message("registry.example/app:1: something happened")
		got := evalOne(t, pq, rego.EvalInput(map[string]any{"msg": msg})) == true
		if got != c.Transient() {
			t.Errorf("is_transient(%q) = %v, want %v (wire %q Transient)", msg, got, c.Transient(), c)
		}
	}
}

// TestRegoMatchesOnlyWireClasses reads every non-test Rego file of library/: each
// startswith(x, "...: ") the library makes on a class-shaped literal ("words: ") must name a
// wire.Class, so no template decides on a class the provider never writes. (The library
// matches classes only through transient_classes today; this keeps it that way or honest.)
func TestRegoMatchesOnlyWireClasses(t *testing.T) {
	for p, m := range libraryModules(t) {
		for _, bad := range unknownClassMatches(m) {
			t.Errorf("%s: %s", p, bad)
		}
	}
	// The check itself: a misspelt class is found, a real one and other literals are not.
	m := ast.MustParseModuleWithOpts(`package x
a if startswith(input.e, "unavailble: ")
b if startswith(input.e, "timed out: ")
c if startswith(input.e, "docker://")
d if startswith(input.e, "not found:")`, ast.ParserOptions{RegoVersion: ast.RegoV1})
	if got := unknownClassMatches(m); len(got) != 1 || !strings.Contains(got[0], `"unavailble: "`) {
		t.Errorf("unknownClassMatches(sample) = %q, want only the misspelt class", got)
	}
}

// unknownClassMatches lists the startswith calls of m on a class-shaped literal that is not
// a wire.Class prefix ("not found:" and "not found: " both name the class).
func unknownClassMatches(m *ast.Module) []string {
	var bad []string
	ast.WalkExprs(m, func(e *ast.Expr) bool {
		if !e.IsCall() || e.Operator().String() != "startswith" || len(e.Operands()) != 2 {
			return false
		}
		lit, ok := e.Operand(1).Value.(ast.String)
		if !ok {
			return false
		}
		words, shaped := classWords(string(lit))
		if !shaped {
			return false
		}
		if _, known := wire.ClassOf(words + ": "); !known || wire.Class(words).Prefix() != words+": " {
			bad = append(bad, fmt.Sprintf("line %d: startswith on %q, which is not a wire.Class prefix", e.Location.Row, string(lit)))
		}
		return false
	})
	return bad
}

// classWords returns the words of a class-shaped literal: lowercase words then ":" or ": ".
func classWords(s string) (string, bool) {
	words, ok := strings.CutSuffix(s, ": ")
	if !ok {
		words, ok = strings.CutSuffix(s, ":")
	}
	if !ok || words == "" || strings.Trim(words, "abcdefghijklmnopqrstuvwxyz ") != "" {
		return "", false
	}
	return words, true
}
