package report

import (
	"context"
	"fmt"
	"runtime"
	"sort"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/imagetrust/imagetrust/provider/internal/policy"
)

// Reviewer reviews one object in its Namespace (nil for cluster-scoped objects) as
// Gatekeeper's audit does; *policy.Client is one.
type Reviewer interface {
	ReviewInNamespace(ctx context.Context, obj *unstructured.Unstructured, ns *corev1.Namespace) ([]policy.Violation, error)
}

// ObjectSource lists the objects re-evaluation reviews, and the Namespaces they live in (kind
// Namespace: what namespaceSelector matches); *Cluster is one.
type ObjectSource interface {
	// Objects calls each for every object of kind gk outside the excluded namespaces.
	Objects(ctx context.Context, gk schema.GroupKind, each func(*unstructured.Unstructured) error) error
}

// CompleteOptions configure Complete.
type CompleteOptions struct {
	// Reviewer re-evaluates objects (required).
	Reviewer Reviewer
	// Objects lists them (required).
	Objects ObjectSource
	// Workers bound concurrent reviews (optional; default GOMAXPROCS).
	Workers int
}

// workloadKinds are what imagetrust templates inspect; a constraint that names no kinds (or
// "*") is completed over these.
var workloadKinds = []schema.GroupKind{
	{Kind: "Pod"}, {Kind: "ReplicationController"},
	{Group: "apps", Kind: "Deployment"}, {Group: "apps", Kind: "StatefulSet"},
	{Group: "apps", Kind: "DaemonSet"}, {Group: "apps", Kind: "ReplicaSet"},
	{Group: "batch", Kind: "Job"}, {Group: "batch", Kind: "CronJob"},
}

// Complete lists the violations status dropped: for every constraint whose totalViolations
// exceeds its stored violations it reviews the objects of the kinds the constraint matches,
// adds the violations status did not hold (source "reevaluated") and reconciles the count with
// totalViolations, recording a mismatch on the constraint.
func Complete(ctx context.Context, r *Report, o CompleteOptions) error {
	if o.Reviewer == nil || o.Objects == nil {
		return fmt.Errorf("report: CompleteOptions.Reviewer and Objects are required")
	}
	r.Evidence.Complete = true
	targets := map[string]*Constraint{}
	kinds := map[schema.GroupKind]bool{}
	for i := range r.Constraints {
		c := &r.Constraints[i]
		if !c.Capped() {
			continue
		}
		targets[c.ID()] = c
		for _, gk := range constraintKinds(*c) {
			kinds[gk] = true
		}
	}
	if len(targets) == 0 {
		return nil
	}
	ordered := make([]schema.GroupKind, 0, len(kinds))
	for gk := range kinds {
		ordered = append(ordered, gk)
	}
	sort.Slice(ordered, func(i, j int) bool { return ordered[i].String() < ordered[j].String() })

	namespaces, err := listNamespaces(ctx, o.Objects)
	if err != nil {
		return err
	}
	found, err := reviewAll(ctx, o, ordered, targets, namespaces)
	if err != nil {
		return err
	}
	reconcile(r, targets, found)
	return nil
}

// listNamespaces reads every Namespace once, as Gatekeeper's audit hands each object's
// Namespace to the review (namespaceSelector matches its labels).
func listNamespaces(ctx context.Context, src ObjectSource) (map[string]*corev1.Namespace, error) {
	out := map[string]*corev1.Namespace{}
	err := src.Objects(ctx, schema.GroupKind{Kind: "Namespace"}, func(u *unstructured.Unstructured) error {
		ns := &corev1.Namespace{}
		if err := k8sruntime.DefaultUnstructuredConverter.FromUnstructured(u.Object, ns); err != nil {
			return fmt.Errorf("reading namespace %s: %w", u.GetName(), err)
		}
		out[ns.Name] = ns
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// constraintKinds are the kinds to list for c.
func constraintKinds(c Constraint) []schema.GroupKind {
	var out []schema.GroupKind
	for _, k := range c.Kinds {
		gk := schema.ParseGroupKind(k)
		if gk.Kind == "*" || gk.Group == "*" {
			return workloadKinds
		}
		out = append(out, gk)
	}
	if len(out) == 0 {
		return workloadKinds
	}
	return out
}

// reviewAll reviews every object of the kinds with a pool of workers and returns, per target
// constraint, the violations found.
func reviewAll(ctx context.Context, o CompleteOptions, kinds []schema.GroupKind, targets map[string]*Constraint, namespaces map[string]*corev1.Namespace) (map[string][]Violation, error) {
	workers := o.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	objs := make(chan *unstructured.Unstructured, workers*4)
	var (
		mu       sync.Mutex
		found    = map[string][]Violation{}
		firstErr error
		wg       sync.WaitGroup
	)
	fail := func(err error) {
		mu.Lock()
		if firstErr == nil {
			firstErr = err
			cancel()
		}
		mu.Unlock()
	}
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for u := range objs {
				var ns *corev1.Namespace
				if n := u.GetNamespace(); n != "" {
					if ns = namespaces[n]; ns == nil {
						// Created after the list: review it as the next audit will.
						ns = &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: n}}
					}
				}
				vs, err := o.Reviewer.ReviewInNamespace(ctx, u, ns)
				if err != nil {
					fail(fmt.Errorf("re-evaluating %s %s/%s: %w", u.GetKind(), u.GetNamespace(), u.GetName(), err))
					continue
				}
				gvk := u.GroupVersionKind()
				for _, v := range vs {
					if targets[v.Constraint] == nil {
						continue
					}
					row := Violation{
						Constraint: v.Constraint, EnforcementAction: v.EnforcementAction,
						Group: gvk.Group, Version: gvk.Version, Kind: gvk.Kind,
						Namespace: u.GetNamespace(), Name: u.GetName(), Message: v.Msg, Source: SourceReevaluated,
					}
					row.Container, row.Image = imageOf(row.Message)
					mu.Lock()
					found[v.Constraint] = append(found[v.Constraint], row)
					mu.Unlock()
				}
			}
		}()
	}
	var listErr error
	for _, gk := range kinds {
		listErr = o.Objects.Objects(ctx, gk, func(u *unstructured.Unstructured) error {
			select {
			case objs <- u:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
		if listErr != nil {
			break
		}
	}
	close(objs)
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	if listErr != nil {
		return nil, listErr
	}
	return found, nil
}

// reconcile merges re-evaluated rows into the report and records count mismatches.
func reconcile(r *Report, targets map[string]*Constraint, found map[string][]Violation) {
	inStatus := map[string]bool{}
	for _, v := range r.Violations {
		if targets[v.Constraint] != nil {
			inStatus[v.key()] = true
		}
	}
	seen := map[string]bool{}
	for id, c := range targets {
		rows := found[id]
		confirmed := 0
		for _, v := range rows {
			k := v.key()
			if inStatus[k] {
				confirmed++
				continue
			}
			if seen[k] {
				continue
			}
			seen[k] = true
			r.Violations = append(r.Violations, v)
			c.Reevaluated++
		}
		c.Completed = true
		c.Listed = c.Stored + c.Reevaluated
		var why []string
		if int64(len(rows)) != c.TotalViolations {
			why = append(why, fmt.Sprintf("Gatekeeper counted %d violations at %s, re-evaluation found %d", c.TotalViolations, orNever(c.AuditTimestamp), len(rows)))
		}
		if gone := c.Stored - confirmed; gone > 0 {
			why = append(why, fmt.Sprintf("%d stored violations were not found again (objects changed or deleted since the audit)", gone))
		}
		c.Mismatch = strings.Join(why, "; ")
	}
}

func orNever(ts string) string {
	if ts == "" {
		return "no audit"
	}
	return ts
}

// Objects lists objects of gk in every namespace the audit does not exclude.
func (c *Cluster) Objects(ctx context.Context, gk schema.GroupKind, each func(*unstructured.Unstructured) error) error {
	m, err := c.resource(gk, "--complete")
	if err != nil {
		return err
	}
	return c.list(ctx, m, "", "--complete", func(obj map[string]any) error {
		u := &unstructured.Unstructured{Object: obj}
		if m.Scope.Name() == meta.RESTScopeNameNamespace && c.Excluded != nil && c.Excluded(u.GetNamespace()) {
			return nil
		}
		return each(u)
	})
}
