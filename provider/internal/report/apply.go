package report

import (
	"context"
	"encoding/json"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
)

// ApplyResult counts what Apply changed.
type ApplyResult struct {
	Applied []string // kind namespace/name
	Deleted []string
}

// Apply writes the reports to the cluster with server-side apply (strict field validation, so
// the API server checks them against the CRD schema) and deletes the reports this tool wrote
// earlier that are no longer produced (a namespace without violations has no report).
func Apply(ctx context.Context, c *Cluster, f Flavour, objs []*unstructured.Unstructured) (*ApplyResult, error) {
	needed := "--apply with " + f.Group + "/" + f.Version
	for _, cluster := range []bool{false, true} {
		gk := schema.GroupKind{Group: f.Group, Kind: f.Kind}
		if cluster {
			gk.Kind = f.ClusterKind
		}
		if _, err := c.Mapper.RESTMapping(gk, f.Version); err != nil {
			return nil, apiError(err, c.Server, "apply", f.GVR(cluster).Resource+"."+f.Group, "", needed)
		}
	}
	res := &ApplyResult{}
	keep := map[string]bool{}
	for _, u := range objs {
		cluster := u.GetNamespace() == ""
		gvr := f.GVR(cluster)
		b, err := json.Marshal(u.Object)
		if err != nil {
			return nil, err
		}
		var ri = c.Dynamic.Resource(gvr).Namespace(u.GetNamespace())
		force := true
		_, err = ri.Patch(ctx, u.GetName(), types.ApplyPatchType, b, metav1.PatchOptions{
			FieldManager: ManagedBy, Force: &force, FieldValidation: metav1.FieldValidationStrict,
		})
		if err != nil {
			return res, apiError(err, c.Server, "apply", gvr.Resource+"."+gvr.Group, u.GetNamespace(), needed)
		}
		id := u.GetKind() + " " + u.GetNamespace() + "/" + u.GetName()
		res.Applied = append(res.Applied, id)
		keep[gvr.Resource+"/"+u.GetNamespace()+"/"+u.GetName()] = true
	}
	sel := metav1.ListOptions{LabelSelector: ManagedByLabel + "=" + ManagedBy}
	for _, cluster := range []bool{false, true} {
		gvr := f.GVR(cluster)
		l, err := c.Dynamic.Resource(gvr).List(ctx, sel)
		if err != nil {
			return res, apiError(err, c.Server, "list", gvr.Resource+"."+gvr.Group, "", needed)
		}
		for _, u := range l.Items {
			if keep[gvr.Resource+"/"+u.GetNamespace()+"/"+u.GetName()] {
				continue
			}
			err := c.Dynamic.Resource(gvr).Namespace(u.GetNamespace()).Delete(ctx, u.GetName(), metav1.DeleteOptions{})
			if err != nil {
				return res, apiError(err, c.Server, "delete", gvr.Resource+"."+gvr.Group, u.GetNamespace(), needed)
			}
			res.Deleted = append(res.Deleted, u.GetKind()+" "+u.GetNamespace()+"/"+u.GetName())
		}
	}
	return res, nil
}
