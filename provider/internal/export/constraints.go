// Package export turns imagetrust's admission policy into node-level policy, so the container
// runtime enforces the same registry allow-list and signing keys at pull time (defence in
// depth): OpenShift's cluster Image config (spec.registrySources.allowedRegistries), a
// containers-policy.json(5) with sigstoreSigned requirements plus the registries.d file that
// turns on sigstore attachments, and OpenShift ClusterImagePolicy objects.
//
// The node sees no namespaces, so the node-level allow-list is the union of every enforced
// K8sTrustedImageSource constraint (each constraint's allowedRegistries and the repositories
// of its exemptImages). Gatekeeper stays the precise, per-namespace check.
package export

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/util/yaml"
)

// TrustedSourceKind is the kind of the base template's constraints.
const TrustedSourceKind = "K8sTrustedImageSource"

// TrustedSource is one enforced K8sTrustedImageSource constraint.
type TrustedSource struct {
	// File and Name say where it came from (for messages).
	File, Name string
	// AllowedRegistries are host[:port][/path] entries.
	AllowedRegistries []string
	// Exempt are the exemptImages globs.
	Exempt []string
}

// ConstraintError names the file, document and field that is wrong.
type ConstraintError struct {
	File     string
	Document int // 1-based
	Name     string
	Problem  string
}

func (e *ConstraintError) Error() string {
	where := fmt.Sprintf("%s: document %d", e.File, e.Document)
	if e.Name != "" {
		where += " (" + TrustedSourceKind + " " + e.Name + ")"
	}
	return where + ": " + e.Problem
}

// constraint is the part of a K8sTrustedImageSource this package reads.
type constraint struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name string `json:"name"`
	} `json:"metadata"`
	Spec struct {
		EnforcementAction string `json:"enforcementAction"`
		Parameters        struct {
			AllowedRegistries *[]string `json:"allowedRegistries"`
			ExemptImages      []struct {
				Image  string `json:"image"`
				Reason string `json:"reason"`
			} `json:"exemptImages"`
		} `json:"parameters"`
	} `json:"spec"`
}

// LoadConstraints reads K8sTrustedImageSource constraints from YAML files and directories
// (*.yaml, *.yml, *.json; multi-document). Other kinds are skipped. Constraints that do not
// deny (warn, dryrun) are skipped and reported in skipped. A deny constraint without
// allowedRegistries is an error: it allows every registry, which no node allow-list can say.
func LoadConstraints(paths []string) (sources []TrustedSource, skipped []string, err error) {
	files, err := yamlFiles(paths)
	if err != nil {
		return nil, nil, err
	}
	for _, f := range files {
		raw, err := os.ReadFile(f) //nolint:gosec // constraint files the operator names
		if err != nil {
			return nil, nil, err
		}
		dec := yaml.NewYAMLOrJSONDecoder(bytes.NewReader(raw), 4096)
		for doc := 1; ; doc++ {
			var obj map[string]any
			if err := dec.Decode(&obj); err != nil {
				if errors.Is(err, io.EOF) {
					break
				}
				return nil, nil, &ConstraintError{File: f, Document: doc, Problem: "parsing YAML: " + err.Error()}
			}
			if obj == nil || obj["kind"] != TrustedSourceKind {
				continue
			}
			js, err := json.Marshal(obj)
			if err != nil {
				return nil, nil, err
			}
			var c constraint // other parameters are the template's business
			if err := json.Unmarshal(js, &c); err != nil {
				return nil, nil, &ConstraintError{File: f, Document: doc, Problem: err.Error()}
			}
			name := c.Metadata.Name
			switch c.Spec.EnforcementAction {
			case "", "deny":
			default:
				skipped = append(skipped, fmt.Sprintf("%s: %s %s (enforcementAction %s)", f, TrustedSourceKind, name, c.Spec.EnforcementAction))
				continue
			}
			if c.Spec.Parameters.AllowedRegistries == nil {
				return nil, nil, &ConstraintError{File: f, Document: doc, Name: name,
					Problem: "spec.parameters.allowedRegistries is not set, so it allows every registry; a node allow-list cannot express that"}
			}
			src := TrustedSource{File: f, Name: name}
			for i, r := range *c.Spec.Parameters.AllowedRegistries {
				if err := checkRegistryEntry(r); err != nil {
					return nil, nil, &ConstraintError{File: f, Document: doc, Name: name,
						Problem: fmt.Sprintf("spec.parameters.allowedRegistries[%d] %q: %v", i, r, err)}
				}
				src.AllowedRegistries = append(src.AllowedRegistries, r)
			}
			for _, e := range c.Spec.Parameters.ExemptImages {
				src.Exempt = append(src.Exempt, e.Image)
			}
			sources = append(sources, src)
		}
	}
	if len(sources) == 0 {
		return nil, skipped, fmt.Errorf("no enforced %s constraint in %s", TrustedSourceKind, strings.Join(paths, ", "))
	}
	return sources, skipped, nil
}

func yamlFiles(paths []string) ([]string, error) {
	var out []string
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if !st.IsDir() {
			out = append(out, p)
			continue
		}
		err = filepath.WalkDir(p, func(f string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			switch strings.ToLower(filepath.Ext(f)) {
			case ".yaml", ".yml", ".json":
				if !d.IsDir() {
					out = append(out, f)
				}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	sort.Strings(out)
	return out, nil
}
