package suite

// These tests create frameworks rego drivers, which register external_data process-wide:
// no t.Parallel.

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/open-policy-agent/gatekeeper/v3/pkg/gator/verify"
)

// echoDir copies testdata/echo into a temporary directory as <tmp>/echo and applies the
// given file overrides (path relative to echo/ → content).
func echoDir(t *testing.T, override map[string]string) string {
	t.Helper()
	root := t.TempDir()
	src := filepath.Join("testdata", "echo")
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		dst := filepath.Join(root, "echo", rel)
		if d.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	for name, content := range override {
		if err := os.WriteFile(filepath.Join(root, "echo", name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func runEcho(t *testing.T, root string, opts Options) *Result {
	t.Helper()
	res, err := Run(context.Background(), os.DirFS(root), "echo", "echo", false, opts)
	if err != nil {
		t.Fatalf("Run() = %v", err)
	}
	return res
}

// caseErrors returns every case error by "test/case".
func caseErrors(res *Result) map[string]error {
	out := map[string]error{}
	for _, s := range res.Suites {
		for _, tr := range s.TestResults {
			for _, cr := range tr.CaseResults {
				if cr.Error != nil {
					out[tr.Name+"/"+cr.Name] = cr.Error
				}
			}
		}
	}
	return out
}

func TestRunPassingSuite(t *testing.T) {
	res := runEcho(t, echoDir(t, nil), Options{})
	if res.Failed() {
		var sb strings.Builder
		_ = Print(&sb, res, true)
		t.Fatalf("Run(testdata/echo) failed:\n%s", sb.String())
	}
	if len(res.Suites) != 1 {
		t.Fatalf("Run(testdata/echo) ran %d suites, want 1", len(res.Suites))
	}
	// ok, bad-value, per-key-error, omitted, two-containers (one batched call) and
	// system-error. The provider that is not in the fixtures never reaches the server.
	if got, want := res.Requests, 6; got != want {
		t.Errorf("fixture server answered %d requests, want %d", got, want)
	}
	var out strings.Builder
	if err := Print(&out, res, false); err != nil {
		t.Errorf("Print() = %v, want nil", err)
	}
	if !strings.HasSuffix(out.String(), "PASS\n") {
		t.Errorf("Print() output = %q, want it to end with PASS", out.String())
	}
}

func TestRunFailingSuiteFails(t *testing.T) {
	// The bad image is reported, so asserting no violation must fail; so must a wrong message.
	root := echoDir(t, map[string]string{"suite.yaml": `apiVersion: test.gatekeeper.sh/v1alpha1
kind: Suite
tests:
  - name: echo
    template: template.yaml
    constraint: constraint.yaml
    cases:
      - name: ok
        object: samples/ok.yaml
        assertions: [{violations: no}]
      - name: wrongly-expects-no-violation
        object: samples/bad.yaml
        assertions: [{violations: no}]
      - name: wrong-message
        object: samples/err.yaml
        assertions: [{violations: 1, message: "timed out"}]
`})
	res := runEcho(t, root, Options{})
	if !res.Failed() {
		t.Fatal("Run(failing suite).Failed() = false, want true")
	}
	errs := caseErrors(res)
	for _, name := range []string{"echo/wrongly-expects-no-violation", "echo/wrong-message"} {
		if errs[name] == nil {
			t.Errorf("case %s: error = nil, want a failed assertion", name)
		}
	}
	if errs["echo/ok"] != nil {
		t.Errorf("case echo/ok: error = %v, want nil", errs["echo/ok"])
	}
	var out strings.Builder
	err := Print(&out, res, false)
	if !errors.Is(err, ErrFailed) {
		t.Errorf("Print() = %v, want ErrFailed", err)
	}
	for _, want := range []string{"--- FAIL: wrongly-expects-no-violation", "--- FAIL: wrong-message", "FAIL\techo/suite.yaml"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("Print() output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestMissingFixtureKeyFailsTheCase(t *testing.T) {
	// Without the check this case would pass: the unanswered key becomes a per-key error,
	// and the template reports it as a violation.
	root := echoDir(t, map[string]string{"suite.yaml": `apiVersion: test.gatekeeper.sh/v1alpha1
kind: Suite
tests:
  - name: echo
    template: template.yaml
    constraint: constraint.yaml
    cases:
      - name: unknown-image
        object: samples/missing.yaml
        assertions: [{violations: yes}]
`})
	res := runEcho(t, root, Options{})
	if !res.Failed() {
		t.Fatal("Run(suite with an unanswered key).Failed() = false, want true")
	}
	err := caseErrors(res)["echo/unknown-image"]
	var mf *MissingFixtureError
	if !errors.As(err, &mf) {
		t.Fatalf("case error = %v, want a *MissingFixtureError", err)
	}
	if len(mf.Missing) != 1 || mf.Missing[0] != (MissingKey{Provider: "echo", Key: "example.com/unknown:1"}) {
		t.Errorf("MissingFixtureError.Missing = %v, want [{echo example.com/unknown:1}]", mf.Missing)
	}
	for _, want := range []string{`provider "echo" key "example.com/unknown:1"`, "echo/fixtures.yaml"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("case error %q does not contain %q", err, want)
		}
	}
}

func TestFixtureFilesAreStrict(t *testing.T) {
	head := "apiVersion: test.imagetrust.dev/v1alpha1\nkind: ProviderFixtures\n"
	tests := []struct {
		name     string
		files    map[string]string
		wantFile string
		want     string
	}{{
		name:     "unknown field in a key",
		files:    map[string]string{"fixtures.yaml": head + "providers:\n  echo:\n    keys:\n      a:\n        valu: ok\n"},
		wantFile: "echo/fixtures.yaml",
		want:     `unknown field "providers.echo.keys[\"a\"].valu" (allowed here: value, error, omit)`,
	}, {
		name:     "unknown top-level field",
		files:    map[string]string{"fixtures.yaml": head + "provider: {}\n"},
		wantFile: "echo/fixtures.yaml",
		want:     `unknown field "provider"`,
	}, {
		name:     "value and error",
		files:    map[string]string{"fixtures.yaml": head + "providers:\n  echo:\n    keys:\n      a: {value: ok, error: boom}\n"},
		wantFile: "echo/fixtures.yaml",
		want:     `providers.echo.keys["a"]: set exactly one of value, error and omit: true`,
	}, {
		name:     "neither value nor error",
		files:    map[string]string{"fixtures.yaml": head + "providers:\n  echo:\n    keys:\n      a: {}\n"},
		wantFile: "echo/fixtures.yaml",
		want:     `providers.echo.keys["a"]: set exactly one of value, error and omit: true`,
	}, {
		name:     "wrong apiVersion",
		files:    map[string]string{"fixtures.yaml": "apiVersion: v1\nkind: ProviderFixtures\nproviders: {}\n"},
		wantFile: "echo/fixtures.yaml",
		want:     `apiVersion "v1", want "test.imagetrust.dev/v1alpha1"`,
	}, {
		name:     "no providers",
		files:    map[string]string{"fixtures.yaml": head + "providers: {}\n"},
		wantFile: "echo/fixtures.yaml",
		want:     "providers: must name at least one provider",
	}, {
		name:     "bad status code",
		files:    map[string]string{"fixtures.yaml": head + "providers:\n  echo:\n    statusCode: 42\n    systemError: x\n"},
		wantFile: "echo/fixtures.yaml",
		want:     "providers.echo.statusCode: 42 is not an HTTP status",
	}, {
		name:     "two documents",
		files:    map[string]string{"fixtures.yaml": head + "providers:\n  echo: {systemError: x}\n---\n" + head + "providers:\n  other: {systemError: y}\n"},
		wantFile: "echo/fixtures.yaml",
		want:     "2 YAML documents, want exactly one",
	}, {
		name: "key defined in two files",
		files: map[string]string{
			"more-fixtures.yaml": head + "providers:\n  echo:\n    keys:\n      \"example.com/ok:1\": {value: ok}\n",
		},
		wantFile: "echo/more-fixtures.yaml",
		want:     `providers.echo.keys["example.com/ok:1"]: already defined in echo/fixtures.yaml`,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := runEcho(t, echoDir(t, tt.files), Options{})
			if len(res.Suites) != 1 {
				t.Fatalf("Run() returned %d suite results, want 1", len(res.Suites))
			}
			err := res.Suites[0].Error
			var fe *FixtureError
			if !errors.As(err, &fe) {
				t.Fatalf("suite error = %v, want a *FixtureError", err)
			}
			if fe.File != tt.wantFile {
				t.Errorf("FixtureError.File = %q, want %q", fe.File, tt.wantFile)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("suite error = %q, want it to contain %q", err, tt.want)
			}
			if !res.Failed() {
				t.Error("Result.Failed() = false, want true")
			}
		})
	}
}

func TestRunFilter(t *testing.T) {
	res := runEcho(t, echoDir(t, nil), Options{Run: "^echo$//^ok$"})
	if res.Failed() {
		t.Fatal("Run(-run ^echo$//^ok$) failed")
	}
	ran := map[string]bool{}
	for _, tr := range res.Suites[0].TestResults {
		for _, cr := range tr.CaseResults {
			if !cr.Skipped {
				ran[tr.Name+"/"+cr.Name] = true
			}
		}
	}
	if len(ran) != 1 || !ran["echo/ok"] {
		t.Errorf("cases run with -run ^echo$//^ok$ = %v, want only echo/ok", ran)
	}
	if _, err := Run(context.Background(), os.DirFS(t.TempDir()), ".", ".", false, Options{Run: "a//b//c"}); err == nil {
		t.Error("Run(-run a//b//c) = nil error, want an invalid filter error")
	}
}

func TestRunPathRecursive(t *testing.T) {
	root := echoDir(t, nil)
	var out strings.Builder
	err := RunPath(context.Background(), root+"/...", Options{Verbose: true}, &out)
	if err != nil {
		t.Fatalf("RunPath(%s/...) = %v\n%s", root, err, out.String())
	}
	if !strings.Contains(out.String(), "--- PASS: system-error") {
		t.Errorf("RunPath -v output lacks a PASS line for system-error:\n%s", out.String())
	}
	if err := RunPath(context.Background(), filepath.Join(root, "nope"), Options{}, &out); err == nil {
		t.Error("RunPath(missing dir) = nil, want an error")
	}
}

var _ = verify.SuiteResult{}

func TestBrokenYAMLIsReportedWithItsFile(t *testing.T) {
	// gator's Suite reader parses every YAML file of the directory first and names the file.
	root := echoDir(t, map[string]string{"fixtures.yaml": "kind: ProviderFixtures\nproviders: [\n"})
	_, err := Run(context.Background(), os.DirFS(root), "echo", "echo", false, Options{})
	if err == nil || !strings.Contains(err.Error(), `"echo/fixtures.yaml"`) {
		t.Errorf("Run(dir with broken fixtures.yaml) = %v, want an error naming echo/fixtures.yaml", err)
	}
	// Our reader says the same for a fixture file it reads directly.
	_, err = readFixtureFile(os.DirFS(root), "echo/fixtures.yaml")
	var fe *FixtureError
	if !errors.As(err, &fe) || fe.File != "echo/fixtures.yaml" {
		t.Errorf("readFixtureFile(broken) = %v, want a *FixtureError for echo/fixtures.yaml", err)
	}
}
