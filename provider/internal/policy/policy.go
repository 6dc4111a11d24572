// Package policy loads imagetrust ConstraintTemplates and Constraints into the OPA
// constraint framework (the engine Gatekeeper and gator run) and reviews Kubernetes
// objects with them.
package policy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"

	constraintclient "github.com/open-policy-agent/frameworks/constraint/pkg/client"
	"github.com/open-policy-agent/frameworks/constraint/pkg/client/drivers/rego"
	"github.com/open-policy-agent/frameworks/constraint/pkg/client/reviews"
	"github.com/open-policy-agent/frameworks/constraint/pkg/core/templates"
	"github.com/open-policy-agent/gatekeeper/v3/apis"
	"github.com/open-policy-agent/gatekeeper/v3/pkg/gator/reader"
	"github.com/open-policy-agent/gatekeeper/v3/pkg/target"
	"github.com/open-policy-agent/gatekeeper/v3/pkg/util"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

// ErrNotTemplate and ErrNotConstraint say a document is of the wrong kind.
var (
	ErrNotTemplate   = errors.New("not a ConstraintTemplate")
	ErrNotConstraint = errors.New("not a Constraint (group constraints.gatekeeper.sh)")
)

// Violation is one result of a review.
type Violation struct {
	Constraint        string // kind/name
	EnforcementAction string
	Msg               string
}

// Client evaluates templates and constraints. Create one per process when
// external_data is used (the OPA builtin is registered process-wide).
type Client struct {
	c      *constraintclient.Client
	scheme *runtime.Scheme
	ep     string
}

type options struct {
	driverArgs       []rego.Arg
	enforcementPoint string
}

// Option configures a Client.
type Option func(*options)

// WithDriverArgs passes arguments to the frameworks Rego driver (for example
// rego.AddExternalDataProviderCache for templates that call external_data).
func WithDriverArgs(args ...rego.Arg) Option {
	return func(o *options) { o.driverArgs = append(o.driverArgs, args...) }
}

// WithEnforcementPoint sets the enforcement point reviews run as (default: audit).
func WithEnforcementPoint(ep string) Option {
	return func(o *options) { o.enforcementPoint = ep }
}

// New returns a Client with the Kubernetes validation target and a Rego driver.
func New(opts ...Option) (*Client, error) {
	o := options{enforcementPoint: util.AuditEnforcementPoint}
	for _, opt := range opts {
		opt(&o)
	}
	drv, err := rego.New(append([]rego.Arg{rego.Tracing(false)}, o.driverArgs...)...)
	if err != nil {
		return nil, fmt.Errorf("creating rego driver: %w", err)
	}
	c, err := constraintclient.NewClient(
		constraintclient.Targets(&target.K8sValidationTarget{}),
		constraintclient.Driver(drv),
		constraintclient.EnforcementPoints(o.enforcementPoint),
	)
	if err != nil {
		return nil, fmt.Errorf("creating constraint client: %w", err)
	}
	scheme := runtime.NewScheme()
	if err := apis.AddToScheme(scheme); err != nil {
		return nil, fmt.Errorf("registering gatekeeper types: %w", err)
	}
	return &Client{c: c, scheme: scheme, ep: o.enforcementPoint}, nil
}

// DecodeYAML splits a (multi-document) YAML or JSON stream into objects.
func DecodeYAML(b []byte) ([]*unstructured.Unstructured, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(b), 4096)
	var out []*unstructured.Unstructured
	for {
		u := &unstructured.Unstructured{}
		err := dec.Decode(&u.Object)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("decoding document %d: %w", len(out)+1, err)
		}
		if len(u.Object) == 0 {
			continue
		}
		out = append(out, u)
	}
}

// AddTemplate adds a ConstraintTemplate given as an object.
func (c *Client) AddTemplate(ctx context.Context, u *unstructured.Unstructured) (*templates.ConstraintTemplate, error) {
	if !reader.IsTemplate(u) {
		return nil, fmt.Errorf("%w: %s %s", ErrNotTemplate, u.GetKind(), u.GetName())
	}
	t, err := reader.ToTemplate(c.scheme, u)
	if err != nil {
		return nil, fmt.Errorf("template %s: %w", u.GetName(), err)
	}
	if _, err := c.c.AddTemplate(ctx, t); err != nil {
		return nil, fmt.Errorf("adding template %s: %w", u.GetName(), err)
	}
	return t, nil
}

// AddConstraint adds a Constraint given as an object; its template must be added first.
func (c *Client) AddConstraint(ctx context.Context, u *unstructured.Unstructured) error {
	if !reader.IsConstraint(u) {
		return fmt.Errorf("%w: %s %s", ErrNotConstraint, u.GetKind(), u.GetName())
	}
	if _, err := c.c.AddConstraint(ctx, u); err != nil {
		return fmt.Errorf("adding constraint %s/%s: %w", u.GetKind(), u.GetName(), err)
	}
	return nil
}

// AddFiles reads YAML files and adds every ConstraintTemplate in them, then every
// Constraint. Other kinds are an error.
func (c *Client) AddFiles(ctx context.Context, paths ...string) error {
	var tmpls, cons []*unstructured.Unstructured
	for _, p := range paths {
		b, err := os.ReadFile(p) //nolint:gosec // the caller names the policy files to load
		if err != nil {
			return err
		}
		objs, err := DecodeYAML(b)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		for _, u := range objs {
			switch {
			case reader.IsTemplate(u):
				tmpls = append(tmpls, u)
			case reader.IsConstraint(u):
				cons = append(cons, u)
			default:
				return fmt.Errorf("%s: %s %s is neither a ConstraintTemplate nor a Constraint", p, u.GetKind(), u.GetName())
			}
		}
	}
	for _, u := range tmpls {
		if _, err := c.AddTemplate(ctx, u); err != nil {
			return err
		}
	}
	for _, u := range cons {
		if err := c.AddConstraint(ctx, u); err != nil {
			return err
		}
	}
	return nil
}

// Review evaluates every constraint against obj (as audit does) and returns the
// violations sorted by constraint and message. It is ReviewInNamespace without the Namespace
// object: constraints with a namespaceSelector fail on namespaced objects.
func (c *Client) Review(ctx context.Context, obj *unstructured.Unstructured) ([]Violation, error) {
	return c.ReviewInNamespace(ctx, obj, nil)
}

// ReviewInNamespace evaluates every constraint against obj with ns, the Namespace object obj
// lives in, as Gatekeeper's audit passes it (nil for cluster-scoped objects): what a
// constraint's namespaceSelector matches against.
func (c *Client) ReviewInNamespace(ctx context.Context, obj *unstructured.Unstructured, ns *corev1.Namespace) ([]Violation, error) {
	resps, err := c.c.Review(ctx, &target.AugmentedUnstructured{Object: *obj, Namespace: ns}, reviews.EnforcementPoint(c.ep))
	if err != nil {
		return nil, fmt.Errorf("reviewing %s %s: %w", obj.GetKind(), obj.GetName(), err)
	}
	var out []Violation
	for _, r := range resps.Results() {
		name := ""
		if r.Constraint != nil {
			name = r.Constraint.GetKind() + "/" + r.Constraint.GetName()
		}
		out = append(out, Violation{Constraint: name, EnforcementAction: r.EnforcementAction, Msg: r.Msg})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Constraint != out[j].Constraint {
			return out[i].Constraint < out[j].Constraint
		}
		return out[i].Msg < out[j].Msg
	})
	return out, nil
}
