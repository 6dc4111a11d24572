package suite

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"sort"
	"strings"

	"github.com/open-policy-agent/gatekeeper/v3/pkg/gator"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// Fixture file identity. A YAML file beside a Suite whose first document has this kind is a
// fixture file; any other YAML file is left to the Suite reader.
const (
	FixturesAPIVersion = "test.imagetrust.dev/v1alpha1"
	FixturesKind       = "ProviderFixtures"
)

// ProviderFixtures is one fixture file: for each Gatekeeper Provider name, the answer to each
// key. It is decoded strictly: unknown fields are errors.
//
//	apiVersion: test.imagetrust.dev/v1alpha1
//	kind: ProviderFixtures
//	providers:
//	  imagetrust-verify:
//	    keys:
//	      "registry.bank.internal/app:1.0":
//	        value: {signed: true, ...}
//	      "registry.bank.internal/down:1.0":
//	        error: "unavailable: registry returned 503"
//	      "registry.bank.internal/lost:1.0":
//	        omit: true
//	  imagetrust-broken:
//	    systemError: "provider overloaded"
//	    statusCode: 503
type ProviderFixtures struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name string `json:"name,omitempty"`
	} `json:"metadata,omitempty"`
	Providers map[string]ProviderFixture `json:"providers"`
}

// ProviderFixture is what one provider answers.
type ProviderFixture struct {
	// SystemError, when set, is returned as the response's systemError for every request to
	// this provider (no items): what Gatekeeper sees when a provider fails a whole batch.
	SystemError string `json:"systemError,omitempty"`
	// StatusCode is the HTTP status of every response (default 200). Gatekeeper does not check
	// it; Rego sees it as status_code.
	StatusCode int `json:"statusCode,omitempty"`
	// Keys maps each key (an image reference exactly as written in the object) to its answer.
	Keys map[string]KeyFixture `json:"keys,omitempty"`
}

// KeyFixture is the answer for one key: exactly one of Value, Error and Omit.
type KeyFixture struct {
	// Value is any JSON value; Rego sees it in responses as [key, value].
	Value json.RawMessage `json:"value,omitempty"`
	// Error is a per-key error; Rego sees it in errors as [key, error].
	Error string `json:"error,omitempty"`
	// Omit leaves the key out of the response, as a faulty provider might: Rego finds it
	// in neither responses nor errors.
	Omit bool `json:"omit,omitempty"`
}

// FixtureError is a fixture file that cannot be used. It names the file and what is wrong.
type FixtureError struct {
	File string
	Err  error
}

func (e *FixtureError) Error() string { return fmt.Sprintf("provider fixtures %s: %v", e.File, e.Err) }
func (e *FixtureError) Unwrap() error { return e.Err }

// answer is one resolved fixture entry with the file it came from.
type answer struct {
	KeyFixture
	file string
}

// providerSet is the merged fixtures of one directory.
type providerSet struct {
	files     []string
	providers map[string]*providerAnswers
}

type providerAnswers struct {
	name        string
	systemError string
	statusCode  int
	file        string // where systemError/statusCode were set
	keys        map[string]answer
}

// names returns the provider names in a stable order.
func (s *providerSet) names() []string {
	out := make([]string, 0, len(s.providers))
	for n := range s.providers {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// maxFixtureBytes bounds one fixture file.
const maxFixtureBytes = 16 << 20

// loadFixtures reads every ProviderFixtures file directly in dir (not in subdirectories) and
// merges them. The same provider may appear in several files; the same key may not.
func loadFixtures(fsys fs.FS, dir string) (*providerSet, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("reading fixture directory %s: %w", dir, err)
	}
	set := &providerSet{providers: map[string]*providerAnswers{}}
	for _, e := range entries {
		if e.IsDir() || !gator.IsYAMLExtension(path.Ext(e.Name())) {
			continue
		}
		file := path.Join(dir, e.Name())
		pf, err := readFixtureFile(fsys, file)
		if err != nil {
			return nil, err
		}
		if pf == nil {
			continue
		}
		if err := set.merge(file, pf); err != nil {
			return nil, err
		}
		set.files = append(set.files, file)
	}
	return set, nil
}

// readFixtureFile returns nil, nil for a YAML file that is not a fixture file.
func readFixtureFile(fsys fs.FS, file string) (*ProviderFixtures, error) {
	f, err := fsys.Open(file)
	if err != nil {
		return nil, &FixtureError{File: file, Err: err}
	}
	defer func() { _ = f.Close() }()
	raw, err := io.ReadAll(io.LimitReader(f, maxFixtureBytes+1))
	if err != nil {
		return nil, &FixtureError{File: file, Err: err}
	}
	if len(raw) > maxFixtureBytes {
		return nil, &FixtureError{File: file, Err: fmt.Errorf("file larger than %d bytes", maxFixtureBytes)}
	}
	docs, err := splitYAML(raw)
	if err != nil {
		// Not ours to judge unless it claims to be a fixture file; the Suite reader reports
		// unparseable Suites itself.
		if bytes.Contains(raw, []byte(FixturesKind)) {
			return nil, &FixtureError{File: file, Err: err}
		}
		return nil, nil
	}
	if len(docs) == 0 {
		return nil, nil
	}
	var head struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
	}
	if err := yaml.Unmarshal(docs[0], &head); err != nil {
		if bytes.Contains(raw, []byte(FixturesKind)) {
			// Probably a broken fixture file: say so rather than skip it.
			return nil, &FixtureError{File: file, Err: err}
		}
		return nil, nil // not YAML we understand; the Suite reader judges Suite files
	}
	if head.Kind != FixturesKind {
		return nil, nil
	}
	if head.APIVersion != FixturesAPIVersion {
		return nil, &FixtureError{File: file, Err: fmt.Errorf("apiVersion %q, want %q", head.APIVersion, FixturesAPIVersion)}
	}
	if len(docs) > 1 {
		return nil, &FixtureError{File: file, Err: fmt.Errorf("%d YAML documents, want exactly one", len(docs))}
	}
	if err := checkFields(docs[0]); err != nil {
		return nil, &FixtureError{File: file, Err: err}
	}
	var pf ProviderFixtures
	if err := yaml.UnmarshalStrict(docs[0], &pf); err != nil {
		return nil, &FixtureError{File: file, Err: err}
	}
	if err := pf.validate(); err != nil {
		return nil, &FixtureError{File: file, Err: err}
	}
	return &pf, nil
}

// splitYAML returns the non-empty documents of a YAML stream.
func splitYAML(raw []byte) ([][]byte, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(raw)))
	var docs [][]byte
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, err
		}
		if len(bytes.TrimSpace(stripComments(doc))) == 0 {
			continue
		}
		docs = append(docs, doc)
	}
}

func stripComments(doc []byte) []byte {
	var out bytes.Buffer
	for _, line := range bytes.Split(doc, []byte("\n")) {
		t := bytes.TrimSpace(line)
		if len(t) == 0 || t[0] == '#' || bytes.Equal(t, []byte("---")) {
			continue
		}
		out.Write(line)
		out.WriteByte('\n')
	}
	return out.Bytes()
}

func (pf *ProviderFixtures) validate() error {
	if len(pf.Providers) == 0 {
		return errors.New("providers: must name at least one provider")
	}
	for name, p := range pf.Providers {
		field := fmt.Sprintf("providers.%s", name)
		if strings.TrimSpace(name) == "" {
			return errors.New("providers: provider name must not be empty")
		}
		if p.StatusCode != 0 && (p.StatusCode < 100 || p.StatusCode > 599) {
			return fmt.Errorf("%s.statusCode: %d is not an HTTP status", field, p.StatusCode)
		}
		if p.SystemError == "" && len(p.Keys) == 0 {
			return fmt.Errorf("%s: needs keys or systemError", field)
		}
		for key, k := range p.Keys {
			kf := fmt.Sprintf("%s.keys[%q]", field, key)
			if key == "" {
				return fmt.Errorf("%s: key must not be empty", kf)
			}
			set := 0
			for _, b := range []bool{len(k.Value) > 0, k.Error != "", k.Omit} {
				if b {
					set++
				}
			}
			if set != 1 {
				return fmt.Errorf("%s: set exactly one of value, error and omit: true", kf)
			}
		}
	}
	return nil
}

func (s *providerSet) merge(file string, pf *ProviderFixtures) error {
	for name, p := range pf.Providers {
		pa, ok := s.providers[name]
		if !ok {
			pa = &providerAnswers{name: name, keys: map[string]answer{}}
			s.providers[name] = pa
		}
		if p.SystemError != "" || p.StatusCode != 0 {
			if pa.file != "" {
				return &FixtureError{File: file, Err: fmt.Errorf("providers.%s: systemError/statusCode already set in %s", name, pa.file)}
			}
			pa.systemError, pa.statusCode, pa.file = p.SystemError, p.StatusCode, file
		}
		for key, k := range p.Keys {
			if prev, dup := pa.keys[key]; dup {
				return &FixtureError{File: file, Err: fmt.Errorf("providers.%s.keys[%q]: already defined in %s", name, key, prev.file)}
			}
			pa.keys[key] = answer{KeyFixture: k, file: file}
		}
	}
	return nil
}

// checkFields reports the first unknown field with its full path (encoding/json names only
// the field itself).
func checkFields(doc []byte) error {
	var m map[string]any
	if err := yaml.Unmarshal(doc, &m); err != nil {
		return err
	}
	if err := onlyFields("", m, "apiVersion", "kind", "metadata", "providers"); err != nil {
		return err
	}
	if md, ok := m["metadata"].(map[string]any); ok {
		if err := onlyFields("metadata.", md, "name"); err != nil {
			return err
		}
	}
	providers, _ := m["providers"].(map[string]any)
	for _, name := range sortedNames(providers) {
		p, ok := providers[name].(map[string]any)
		if !ok {
			continue // the typed decode reports the wrong type
		}
		where := "providers." + name + "."
		if err := onlyFields(where, p, "systemError", "statusCode", "keys"); err != nil {
			return err
		}
		keys, _ := p["keys"].(map[string]any)
		for _, key := range sortedNames(keys) {
			if k, ok := keys[key].(map[string]any); ok {
				if err := onlyFields(fmt.Sprintf("%skeys[%q].", where, key), k, "value", "error", "omit"); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func onlyFields(where string, m map[string]any, allowed ...string) error {
	for _, f := range sortedNames(m) {
		if !slices.Contains(allowed, f) {
			return fmt.Errorf("unknown field %q (allowed here: %s)", where+f, strings.Join(allowed, ", "))
		}
	}
	return nil
}

func sortedNames(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
