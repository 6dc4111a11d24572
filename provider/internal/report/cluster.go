package report

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
)

// ConnectOptions are kubectl's connection flags.
type ConnectOptions struct {
	// Kubeconfig is a kubeconfig file (optional; default $KUBECONFIG, then ~/.kube/config,
	// then the in-cluster service account, as kubectl does).
	Kubeconfig string
	// Context is the kubeconfig context to use (optional; default the current context).
	Context string
	// QPS and Burst bound the client's request rate (optional; default 50 and 100).
	QPS   float32
	Burst int
}

// Cluster is a connection to one API server.
type Cluster struct {
	Name    string // kubeconfig cluster name, or "in-cluster"
	Context string
	Server  string
	Config  *rest.Config
	Dynamic dynamic.Interface
	Disc    discovery.DiscoveryInterface
	Mapper  meta.RESTMapper
	// Excluded, if set, says which namespaces re-evaluation skips (see AuditExclusions).
	Excluded func(namespace string) bool
}

// Connect builds clients the way kubectl does: --kubeconfig, --context, $KUBECONFIG, the
// default file, and the in-cluster configuration when none of them exists.
func Connect(o ConnectOptions) (*Cluster, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = o.Kubeconfig
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: o.Context})
	cfg, err := cc.ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("kubeconfig: %w", err)
	}
	cfg.QPS, cfg.Burst = 50, 100
	if o.QPS > 0 {
		cfg.QPS = o.QPS
	}
	if o.Burst > 0 {
		cfg.Burst = o.Burst
	}
	cfg.WarningHandler = rest.NoWarnings{}
	c := &Cluster{Server: cfg.Host, Config: cfg, Name: "in-cluster", Context: "in-cluster"}
	if raw, err := cc.RawConfig(); err == nil && len(raw.Contexts) > 0 {
		c.Context = raw.CurrentContext
		if o.Context != "" {
			c.Context = o.Context
		}
		if ctx := raw.Contexts[c.Context]; ctx != nil {
			c.Name = ctx.Cluster
		}
	}
	if c.Dynamic, err = dynamic.NewForConfig(cfg); err != nil {
		return nil, err
	}
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, err
	}
	c.Disc = dc
	c.Mapper = restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))
	return c, nil
}

// resource maps group/Kind to its served resource (preferred version).
func (c *Cluster) resource(gk schema.GroupKind, needed string) (*meta.RESTMapping, error) {
	m, err := c.Mapper.RESTMapping(gk)
	if err != nil {
		res := gk.Kind
		if gk.Group != "" {
			res += "." + gk.Group
		}
		return nil, apiError(err, c.Server, "map", res, "", needed)
	}
	return m, nil
}

// list lists every object of a resource (all namespaces when namespace is ""), page by page.
func (c *Cluster) list(ctx context.Context, m *meta.RESTMapping, namespace, needed string, each func(obj map[string]any) error) error {
	var ri dynamic.ResourceInterface = c.Dynamic.Resource(m.Resource)
	if namespace != "" && m.Scope.Name() == meta.RESTScopeNameNamespace {
		ri = c.Dynamic.Resource(m.Resource).Namespace(namespace)
	}
	opts := listOptions(500)
	for {
		l, err := ri.List(ctx, opts)
		if err != nil {
			return apiError(err, c.Server, "list", groupResource(m), namespace, needed)
		}
		for i := range l.Items {
			if err := each(l.Items[i].Object); err != nil {
				return err
			}
		}
		if l.GetContinue() == "" {
			return nil
		}
		opts.Continue = l.GetContinue()
	}
}

func groupResource(m *meta.RESTMapping) string {
	if m.Resource.Group == "" {
		return m.Resource.Resource
	}
	return m.Resource.Resource + "." + m.Resource.Group
}
