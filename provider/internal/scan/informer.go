package scan

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/tools/cache"
)

// Trivy Operator's report resources (aquasecurity.github.io/v1alpha1).
var (
	VulnerabilityReports        = schema.GroupVersionResource{Group: "aquasecurity.github.io", Version: "v1alpha1", Resource: "vulnerabilityreports"}
	ClusterVulnerabilityReports = schema.GroupVersionResource{Group: "aquasecurity.github.io", Version: "v1alpha1", Resource: "clustervulnerabilityreports"}
)

// OperatorWatchOptions configures WatchOperatorReports.
type OperatorWatchOptions struct {
	// Client reads the operator's reports (required).
	Client dynamic.Interface
	// Index receives the reports (required).
	Index *OperatorIndex
	// Namespaces to watch VulnerabilityReports in (optional; empty: all).
	// ClusterVulnerabilityReports are always watched.
	Namespaces []string
	// Resync is the informers' resync period (optional; 0: none).
	Resync time.Duration
	// Limits bound each report as the other sources are bounded (optional: defaults).
	Limits Limits
	// OnError is told of a report that cannot be read, by object id (optional). The report
	// is dropped from the index: a malformed report never stands for a scan.
	OnError func(id string, err error)
	// SyncTimeout bounds the wait for the first full list (optional; default 60s).
	SyncTimeout time.Duration
}

// WatchOperatorReports starts client-go informers on VulnerabilityReport and
// ClusterVulnerabilityReport objects that keep o.Index in step with the cluster (one list and
// then a watch; lookups read only the index), and waits for the first full list. The
// informers stop when ctx ends. Reports without a digest are left out of the index; a report
// whose digest is the image ID (not a manifest digest) is keyed by it and so matches no pod,
// which pulls by manifest digest.
func WatchOperatorReports(ctx context.Context, o OperatorWatchOptions) error {
	if o.Client == nil || o.Index == nil {
		return errors.New("scan: operator watch: Client and Index are required")
	}
	if o.SyncTimeout <= 0 {
		o.SyncTimeout = 60 * time.Second
	}
	h := &operatorHandler{index: o.Index, limits: o.Limits, onError: o.OnError}
	namespaces := o.Namespaces
	if len(namespaces) == 0 {
		namespaces = []string{""} // metav1.NamespaceAll
	}
	var synced []cache.InformerSynced
	var factories []dynamicinformer.DynamicSharedInformerFactory
	add := func(f dynamicinformer.DynamicSharedInformerFactory, gvr schema.GroupVersionResource) error {
		inf := f.ForResource(gvr).Informer()
		reg, err := inf.AddEventHandler(h)
		if err != nil {
			return fmt.Errorf("scan: operator watch %s: %w", gvr.Resource, err)
		}
		synced = append(synced, reg.HasSynced)
		return nil
	}
	for _, ns := range namespaces {
		f := dynamicinformer.NewFilteredDynamicSharedInformerFactory(o.Client, o.Resync, ns, nil)
		if err := add(f, VulnerabilityReports); err != nil {
			return err
		}
		factories = append(factories, f)
	}
	cf := dynamicinformer.NewDynamicSharedInformerFactory(o.Client, o.Resync)
	if err := add(cf, ClusterVulnerabilityReports); err != nil {
		return err
	}
	factories = append(factories, cf)
	for _, f := range factories {
		f.Start(ctx.Done())
	}
	wctx, cancel := context.WithTimeout(ctx, o.SyncTimeout)
	defer cancel()
	if !cache.WaitForCacheSync(wctx.Done(), synced...) {
		return fmt.Errorf("scan: trivyOperator: VulnerabilityReport and ClusterVulnerabilityReport not listed within %v (is the CRD installed and may the provider list and watch %s?)",
			o.SyncTimeout, VulnerabilityReports.Group)
	}
	return nil
}

// operatorHandler applies informer events to the index.
type operatorHandler struct {
	index   *OperatorIndex
	limits  Limits
	onError func(id string, err error)
}

func objectID(u *unstructured.Unstructured) string {
	if ns := u.GetNamespace(); ns != "" {
		return u.GetKind() + "/" + ns + "/" + u.GetName()
	}
	return u.GetKind() + "/" + u.GetName()
}

func (h *operatorHandler) OnAdd(obj any, _ bool) { h.set(obj) }

func (h *operatorHandler) OnUpdate(_, obj any) { h.set(obj) }

func (h *operatorHandler) OnDelete(obj any) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	if u, ok := obj.(*unstructured.Unstructured); ok {
		h.index.Set(objectID(u), "", nil)
	}
}

func (h *operatorHandler) set(obj any) {
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return
	}
	id := objectID(u)
	raw, err := json.Marshal(u.Object)
	if err == nil {
		var key OperatorKey
		var r *Report
		key, r, ok, err = DecodeOperatorReport(raw, h.limits)
		if err == nil {
			if !ok {
				h.index.Set(id, "", nil)
				return
			}
			h.index.Set(id, key, r)
			return
		}
	}
	h.index.Set(id, "", nil)
	if h.onError != nil {
		h.onError(id, err)
	}
}
