package report

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/imagetrust/imagetrust/provider/internal/imageref"
)

// Groups Gatekeeper serves the report's inputs from.
const (
	templatesGroup    = "templates.gatekeeper.sh"
	constraintsGroup  = "constraints.gatekeeper.sh"
	externalDataGroup = "externaldata.gatekeeper.sh"
)

// CollectOptions say what to read.
type CollectOptions struct {
	// AllConstraints reads the constraints of every template, not only imagetrust's.
	AllConstraints bool
	// GatekeeperNamespace is where Gatekeeper's Deployments run (optional; default
	// gatekeeper-system); it is read for the Gatekeeper version only.
	GatekeeperNamespace string
	// AuditInterval is Gatekeeper's --audit-interval (optional; default 60 s).
	AuditInterval time.Duration
	// Now is the clock (optional; default time.Now).
	Now func() time.Time
}

// Inputs are the objects read from the cluster, for re-evaluation.
type Inputs struct {
	Templates   []*unstructured.Unstructured
	Constraints []*unstructured.Unstructured
	Providers   []*unstructured.Unstructured
}

// imagetrustLib marks an imagetrust template: it embeds the shared library.
var imagetrustLib = regexp.MustCompile(`(?m)^\s*package\s+lib\.imagetrust\.`)

// Collect reads templates, constraints and Providers with their status and builds the report
// from status alone (see Complete for re-evaluation).
func Collect(ctx context.Context, c *Cluster, o CollectOptions) (*Report, *Inputs, error) {
	if o.GatekeeperNamespace == "" {
		o.GatekeeperNamespace = "gatekeeper-system"
	}
	if o.AuditInterval <= 0 {
		o.AuditInterval = 60 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	ver, err := c.Disc.ServerVersion()
	if err != nil {
		return nil, nil, apiError(err, c.Server, "get", "version", "", "the report")
	}
	r := &Report{Evidence: Evidence{
		GeneratedAt: o.Now().UTC().Truncate(time.Second), Cluster: c.Name, Context: c.Context, Server: c.Server,
		KubernetesVersion: ver.GitVersion, AuditInterval: o.AuditInterval.String(), AllConstraints: o.AllConstraints,
	}}
	in := &Inputs{}

	tm, err := c.resource(schema.GroupKind{Group: templatesGroup, Kind: "ConstraintTemplate"}, "Gatekeeper")
	if err != nil {
		return nil, nil, err
	}
	err = c.list(ctx, tm, "", "Gatekeeper", func(obj map[string]any) error {
		u := &unstructured.Unstructured{Object: obj}
		t := parseTemplate(u)
		if !t.Imagetrust && !o.AllConstraints {
			return nil
		}
		r.Templates = append(r.Templates, t)
		in.Templates = append(in.Templates, u)
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	sort.Slice(r.Templates, func(i, j int) bool { return r.Templates[i].Name < r.Templates[j].Name })

	for _, t := range r.Templates {
		r.Evidence.Templates = append(r.Evidence.Templates, TemplateEvidence{Name: t.Name, Kind: t.Kind, Version: t.Version, SHA256: t.SHA256})
		if t.Kind == "" || !t.Created {
			continue // no constraint CRD yet: health reports the template
		}
		cm, err := c.resource(schema.GroupKind{Group: constraintsGroup, Kind: t.Kind}, "template "+t.Name)
		if err != nil {
			if isMissingCRD(err) {
				continue
			}
			return nil, nil, err
		}
		err = c.list(ctx, cm, "", "template "+t.Name, func(obj map[string]any) error {
			u := &unstructured.Unstructured{Object: obj}
			con, rows := parseConstraint(u)
			r.Constraints = append(r.Constraints, con)
			r.Violations = append(r.Violations, rows...)
			in.Constraints = append(in.Constraints, u)
			return nil
		})
		if err != nil {
			return nil, nil, err
		}
	}
	sort.Slice(r.Constraints, func(i, j int) bool { return r.Constraints[i].ID() < r.Constraints[j].ID() })
	for _, con := range r.Constraints {
		r.Evidence.Constraints = append(r.Evidence.Constraints, con.ID())
	}

	if pm, err := c.resource(schema.GroupKind{Group: externalDataGroup, Kind: "Provider"}, "external data"); err == nil {
		err = c.list(ctx, pm, "", "external data", func(obj map[string]any) error {
			u := &unstructured.Unstructured{Object: obj}
			url, _, _ := unstructured.NestedString(obj, "spec", "url")
			p := Provider{Name: u.GetName(), URL: url, Errors: podErrors(obj)}
			r.Providers = append(r.Providers, p)
			in.Providers = append(in.Providers, u)
			return nil
		})
		if err != nil {
			return nil, nil, err
		}
	} else if !isMissingCRD(err) {
		return nil, nil, err
	}
	r.Evidence.GatekeeperVersion = gatekeeperVersion(ctx, c, o.GatekeeperNamespace)
	return r, in, nil
}

// gatekeeperVersion reads the image tag of Gatekeeper's Deployments; failing that, it says why.
func gatekeeperVersion(ctx context.Context, c *Cluster, ns string) string {
	dm, err := c.resource(schema.GroupKind{Group: "apps", Kind: "Deployment"}, "the Gatekeeper version")
	if err != nil {
		return "unknown (" + err.Error() + ")"
	}
	versions := map[string]bool{}
	err = c.list(ctx, dm, ns, "the Gatekeeper version", func(obj map[string]any) error {
		cs, _, _ := unstructured.NestedSlice(obj, "spec", "template", "spec", "containers")
		for _, ci := range cs {
			m, _ := ci.(map[string]any)
			img, _ := m["image"].(string)
			ref, err := imageref.Parse(img)
			if err == nil && strings.HasSuffix(ref.Path, "gatekeeper") {
				versions[ref.EffectiveTag()] = true
			}
		}
		return nil
	})
	if err != nil {
		return "unknown (" + err.Error() + ")"
	}
	if len(versions) == 0 {
		return "unknown (no Gatekeeper Deployment in namespace " + ns + ")"
	}
	vs := make([]string, 0, len(versions))
	for v := range versions {
		vs = append(vs, v)
	}
	sort.Strings(vs)
	return strings.Join(vs, ", ")
}

func parseTemplate(u *unstructured.Unstructured) Template {
	t := Template{Name: u.GetName()}
	t.Kind, _, _ = unstructured.NestedString(u.Object, "spec", "crd", "spec", "names", "kind")
	ann := u.GetAnnotations()
	t.Title = ann["metadata.gatekeeper.sh/title"]
	t.Version = ann["metadata.gatekeeper.sh/version"]
	spec, _, _ := unstructured.NestedMap(u.Object, "spec")
	b, _ := json.Marshal(spec) // map keys are sorted: a canonical form of the spec
	sum := sha256.Sum256(b)
	t.SHA256 = hex.EncodeToString(sum[:])
	targets, _, _ := unstructured.NestedSlice(u.Object, "spec", "targets")
	for _, ti := range targets {
		m, _ := ti.(map[string]any)
		// Libraries sit in targets[].libs, or (Rego v1 templates) in targets[].code[].source.libs.
		libs, _ := m["libs"].([]any)
		code, _ := m["code"].([]any)
		for _, ci := range code {
			cm, _ := ci.(map[string]any)
			l, _, _ := unstructured.NestedSlice(cm, "source", "libs")
			libs = append(libs, l...)
		}
		for _, l := range libs {
			if s, _ := l.(string); imagetrustLib.MatchString(s) {
				t.Imagetrust = true
			}
		}
	}
	t.Created, _, _ = unstructured.NestedBool(u.Object, "status", "created")
	t.Errors = podErrors(u.Object)
	return t
}

// podErrors flattens status.byPod[].errors[] into "pod: code: message" lines.
func podErrors(obj map[string]any) []string {
	pods, _, _ := unstructured.NestedSlice(obj, "status", "byPod")
	var out []string
	for _, pi := range pods {
		p, _ := pi.(map[string]any)
		id, _ := p["id"].(string)
		errs, _ := p["errors"].([]any)
		for _, ei := range errs {
			e, _ := ei.(map[string]any)
			code, _ := e["code"].(string)
			msg, _ := e["message"].(string)
			line := id + ": "
			if code != "" {
				line += code + ": "
			}
			out = append(out, line+msg)
		}
	}
	return out
}

func parseConstraint(u *unstructured.Unstructured) (Constraint, []Violation) {
	c := Constraint{Kind: u.GetKind(), Name: u.GetName(), Generation: u.GetGeneration()}
	c.EnforcementAction, _, _ = unstructured.NestedString(u.Object, "spec", "enforcementAction")
	if c.EnforcementAction == "" {
		c.EnforcementAction = "deny"
	}
	c.AuditTimestamp, c.Audited, _ = unstructured.NestedString(u.Object, "status", "auditTimestamp")
	c.TotalViolations, _, _ = unstructured.NestedInt64(u.Object, "status", "totalViolations")
	kinds, _, _ := unstructured.NestedSlice(u.Object, "spec", "match", "kinds")
	for _, ki := range kinds {
		m, _ := ki.(map[string]any)
		groups, _ := m["apiGroups"].([]any)
		ks, _ := m["kinds"].([]any)
		for _, g := range groups {
			for _, k := range ks {
				gs, _ := g.(string)
				kn, _ := k.(string)
				c.Kinds = append(c.Kinds, schema.GroupKind{Group: gs, Kind: kn}.String())
			}
		}
	}
	pods, _, _ := unstructured.NestedSlice(u.Object, "status", "byPod")
	for _, pi := range pods {
		p, _ := pi.(map[string]any)
		ps := PodStatus{}
		ps.ID, _ = p["id"].(string)
		ps.Enforced, _ = p["enforced"].(bool)
		ps.ObservedGeneration = toInt64(p["observedGeneration"])
		for _, line := range podErrors(map[string]any{"status": map[string]any{"byPod": []any{p}}}) {
			ps.Errors = append(ps.Errors, strings.TrimPrefix(line, ps.ID+": "))
		}
		c.ByPod = append(c.ByPod, ps)
	}
	vs, _, _ := unstructured.NestedSlice(u.Object, "status", "violations")
	rows := make([]Violation, 0, len(vs))
	for _, vi := range vs {
		m, _ := vi.(map[string]any)
		str := func(k string) string { s, _ := m[k].(string); return s }
		v := Violation{
			Constraint: c.ID(), EnforcementAction: str("enforcementAction"),
			Group: str("group"), Version: str("version"), Kind: str("kind"),
			Namespace: str("namespace"), Name: str("name"), Message: str("message"), Source: SourceStatus,
		}
		if v.EnforcementAction == "" {
			v.EnforcementAction = c.EnforcementAction
		}
		v.Container, v.Image = imageOf(v.Message)
		rows = append(rows, v)
	}
	c.Stored = len(rows)
	return c, rows
}

func toInt64(v any) int64 {
	switch n := v.(type) {
	case int64:
		return n
	case float64:
		return int64(n)
	case json.Number:
		i, _ := n.Int64()
		return i
	}
	return 0
}

// messageImage reads the container and image every imagetrust message starts with.
var messageImage = regexp.MustCompile(`^container <([^<>]*)> image <([^<>]*)>`)

// imageOf returns the container and the normalised image a message names: "" when it names
// none; the reference as written when it is not valid (such rows roll up under that text).
func imageOf(msg string) (container, image string) {
	m := messageImage.FindStringSubmatch(msg)
	if m == nil {
		return "", ""
	}
	ref, err := imageref.Parse(m[2])
	if err != nil {
		return m[1], m[2]
	}
	return m[1], ref.Normalized()
}

func listOptions(limit int64) metav1.ListOptions { return metav1.ListOptions{Limit: limit} }

// String for error messages.
func (c Constraint) String() string {
	return fmt.Sprintf("%s (total %d, stored %d)", c.ID(), c.TotalViolations, c.Stored)
}
