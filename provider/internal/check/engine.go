package check

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"

	constraintclient "github.com/open-policy-agent/frameworks/constraint/pkg/client"
	"github.com/open-policy-agent/frameworks/constraint/pkg/client/drivers/rego"
	"github.com/open-policy-agent/frameworks/constraint/pkg/client/reviews"
	"github.com/open-policy-agent/frameworks/constraint/pkg/externaldata"
	"github.com/open-policy-agent/gatekeeper/v3/apis"
	"github.com/open-policy-agent/gatekeeper/v3/pkg/gator/reader"
	mtypes "github.com/open-policy-agent/gatekeeper/v3/pkg/mutation/types"
	"github.com/open-policy-agent/gatekeeper/v3/pkg/target"
	"github.com/open-policy-agent/gatekeeper/v3/pkg/util"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"

	"github.com/imagetrust/imagetrust/provider/internal/manifests"
)

// Engine evaluates a Policy with the frameworks constraint client as Gatekeeper's validating
// webhook does (enforcement point validation.gatekeeper.sh). Create one per process: the
// external_data builtin is registered process-wide.
type Engine struct {
	c *constraintclient.Client
}

// EngineOptions configure NewEngine.
type EngineOptions struct {
	// Providers answers external_data (optional: without it, templates that call a provider
	// get a system error and deny, as Gatekeeper does without the Provider object).
	Providers *externaldata.ProviderCache
}

// NewEngine adds the policy's templates, then its constraints, to a new constraint client.
func NewEngine(ctx context.Context, p *Policy, o EngineOptions) (*Engine, error) {
	// external_data is always registered, as in Gatekeeper: without providers a template that
	// calls it compiles, and its calls fail (Run reports the check incomplete).
	pc := o.Providers
	if pc == nil {
		pc = externaldata.NewCache()
	}
	args := []rego.Arg{rego.Tracing(false), rego.AddExternalDataProviderCache(pc)}
	drv, err := rego.New(args...)
	if err != nil {
		return nil, fmt.Errorf("creating rego driver: %w", err)
	}
	c, err := constraintclient.NewClient(
		constraintclient.Targets(&target.K8sValidationTarget{}),
		constraintclient.Driver(drv),
		constraintclient.EnforcementPoints(util.WebhookEnforcementPoint),
	)
	if err != nil {
		return nil, fmt.Errorf("creating constraint client: %w", err)
	}
	scheme := k8sruntime.NewScheme()
	if err := apis.AddToScheme(scheme); err != nil {
		return nil, fmt.Errorf("registering gatekeeper types: %w", err)
	}
	for _, t := range p.Templates {
		tmpl, err := reader.ToTemplate(scheme, t.Object)
		if err != nil {
			return nil, &PolicyError{File: t.File, Line: t.Line, Err: fmt.Errorf("template %s: %w", t.Object.GetName(), err)}
		}
		if _, err := c.AddTemplate(ctx, tmpl); err != nil {
			return nil, &PolicyError{File: t.File, Line: t.Line, Err: fmt.Errorf("template %s: %w", t.Object.GetName(), err)}
		}
	}
	for _, k := range p.Constraints {
		if _, err := c.AddConstraint(ctx, k.Object); err != nil {
			return nil, &PolicyError{File: k.File, Line: k.Line, Err: fmt.Errorf("constraint %s/%s: %w", k.Object.GetKind(), k.Object.GetName(), err)}
		}
	}
	return &Engine{c: c}, nil
}

// Finding is one violation of one constraint by one object, placed at the image scalar the
// message names (or at the object when it names none).
type Finding struct {
	File   string `json:"file"`
	Line   int    `json:"line"`
	Column int    `json:"column"`
	// Object is "Kind namespace/name".
	Object    string `json:"object"`
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
	// Container and Image are set when the message names a container of the object.
	Container string `json:"container,omitempty"`
	Field     string `json:"field,omitempty"`
	Image     string `json:"image,omitempty"`
	// Constraint is "Kind/name".
	Constraint string `json:"constraint"`
	// Action is the effective action at admission: deny, warn or dryrun.
	Action  string `json:"action"`
	Message string `json:"message"`
}

// Enforcement actions as findings carry them.
const (
	ActionDeny   = "deny"
	ActionWarn   = "warn"
	ActionDryRun = "dryrun"
)

// ReviewOptions configure Review.
type ReviewOptions struct {
	// DefaultNamespace is the namespace of workloads that set none, as `kubectl apply -n`
	// would give them (default "default").
	DefaultNamespace string
	// Workers reviews objects in parallel (default 1: the frameworks client serialises
	// evaluation, and parallel reviews measured three times slower in wall time).
	Workers int
}

// ObjectError is an object that could not be reviewed.
type ObjectError struct {
	File string
	Line int
	Obj  string
	Err  error
}

func (e *ObjectError) Error() string {
	return fmt.Sprintf("%s:%d: %s: %v", e.File, e.Line, e.Obj, e.Err)
}
func (e *ObjectError) Unwrap() error { return e.Err }

// Review evaluates every constraint against every object, with each object's Namespace taken
// from the input when it is there (for namespaceSelector), and returns the findings sorted by
// file, line, column, constraint and message.
func (e *Engine) Review(ctx context.Context, objs []manifests.Object, o ReviewOptions) ([]Finding, error) {
	if o.DefaultNamespace == "" {
		o.DefaultNamespace = "default"
	}
	if o.Workers <= 0 {
		o.Workers = 1
	}
	namespaces, err := namespacesOf(objs)
	if err != nil {
		return nil, err
	}
	results := make([][]Finding, len(objs))
	errs := make([]error, len(objs))
	work := make(chan int)
	var wg sync.WaitGroup
	for range min(o.Workers, max(len(objs), 1)) {
		wg.Go(func() {
			for i := range work {
				results[i], errs[i] = e.reviewOne(ctx, &objs[i], namespaces, o.DefaultNamespace)
			}
		})
	}
	for i := range objs {
		if ctx.Err() != nil {
			break
		}
		work <- i
	}
	close(work)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []Finding
	for i := range objs {
		if errs[i] != nil {
			return nil, errs[i]
		}
		out = append(out, results[i]...)
	}
	sortFindings(out)
	return out, nil
}

func sortFindings(fs []Finding) {
	sort.SliceStable(fs, func(i, j int) bool {
		a, b := fs[i], fs[j]
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		if a.Column != b.Column {
			return a.Column < b.Column
		}
		if a.Constraint != b.Constraint {
			return a.Constraint < b.Constraint
		}
		return a.Message < b.Message
	})
}

func namespacesOf(objs []manifests.Object) (map[string]*corev1.Namespace, error) {
	out := map[string]*corev1.Namespace{}
	for _, o := range objs {
		if o.Object.GetKind() != "Namespace" || o.Object.GroupVersionKind().Group != "" {
			continue
		}
		ns := &corev1.Namespace{}
		if err := k8sruntime.DefaultUnstructuredConverter.FromUnstructured(o.Object.Object, ns); err != nil {
			return nil, &ObjectError{File: o.File, Line: o.Line, Obj: o.Ref(), Err: err}
		}
		out[ns.Name] = ns
	}
	return out, nil
}

func (e *Engine) reviewOne(ctx context.Context, o *manifests.Object, namespaces map[string]*corev1.Namespace, defaultNS string) ([]Finding, error) {
	if reader.IsTemplate(o.Object) || reader.IsConstraint(o.Object) {
		return nil, nil
	}
	obj := o.Object
	if obj.GetNamespace() == "" && manifests.PodSpecPath(obj.GetKind()) != nil {
		obj = obj.DeepCopy()
		obj.SetNamespace(defaultNS)
	}
	au := target.AugmentedUnstructured{Object: *obj, Source: mtypes.SourceTypeOriginal}
	if ns := namespaces[obj.GetNamespace()]; ns != nil {
		au.Namespace = ns
	}
	resps, err := e.c.Review(ctx, au, reviews.EnforcementPoint(util.WebhookEnforcementPoint))
	if err != nil {
		return nil, &ObjectError{File: o.File, Line: o.Line, Obj: o.Ref(), Err: err}
	}
	var out []Finding
	for _, r := range resps.Results() {
		f := Finding{
			File: o.File, Line: o.Line, Column: o.Column,
			Object: refOf(obj), Kind: obj.GetKind(), Namespace: obj.GetNamespace(), Name: obj.GetName(),
			Action: effectiveAction(r.EnforcementAction, r.ScopedEnforcementActions), Message: r.Msg,
		}
		if r.Constraint != nil {
			f.Constraint = r.Constraint.GetKind() + "/" + r.Constraint.GetName()
		}
		if f.Action == "" {
			continue // scoped to other enforcement points only
		}
		if im, ok := imageFor(o.Images, r.Msg); ok {
			f.Line, f.Column, f.Container, f.Field, f.Image = im.Line, im.Column, im.Name, im.Field, im.Value
		}
		out = append(out, f)
	}
	return out, nil
}

func refOf(u *unstructured.Unstructured) string {
	if ns := u.GetNamespace(); ns != "" {
		return u.GetKind() + " " + ns + "/" + u.GetName()
	}
	return u.GetKind() + " " + u.GetName()
}

// effectiveAction is what admission does with a result: a scoped constraint's actions for
// the webhook (deny wins over warn over dryrun); "" when none applies there.
func effectiveAction(action string, scoped []string) string {
	if action != "scoped" {
		return action
	}
	best := ""
	for _, a := range scoped {
		switch {
		case a == ActionDeny:
			return ActionDeny
		case a == ActionWarn:
			best = ActionWarn
		case a == ActionDryRun && best == "":
			best = ActionDryRun
		}
	}
	return best
}

// containerRE finds the container a template message names: every imagetrust message starts
// with `container <name>` (init and ephemeral containers included).
var containerRE = regexp.MustCompile(`container <([^<>]*)>`)

// imageFor returns the image scalar a message is about: the named container's image, else an
// image whose value the message quotes in angle brackets.
func imageFor(imgs []manifests.Image, msg string) (manifests.Image, bool) {
	if m := containerRE.FindStringSubmatch(msg); m != nil {
		for _, im := range imgs {
			if im.Field != "volumes" && im.Name == m[1] {
				return im, true
			}
		}
	}
	for _, im := range imgs {
		if strings.Contains(msg, "<"+im.Value+">") {
			return im, true
		}
	}
	return manifests.Image{}, false
}

// ErrIncomplete means the check could not be completed: a provider or registry failure made
// some answer unknown (exit code 3).
var ErrIncomplete = errors.New("check incomplete")
