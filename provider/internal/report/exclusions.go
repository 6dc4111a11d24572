package report

import (
	"context"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// AuditExclusions reads Gatekeeper's Config (config.gatekeeper.sh, name "config" in the
// Gatekeeper namespace) and returns the namespaces its audit skips: spec.match entries whose
// processes include "audit" or "*". Entries may end or start with "*" (kube-*, *-system), as in
// Gatekeeper. No Config (or no Config CRD) excludes nothing.
func AuditExclusions(ctx context.Context, c *Cluster, gkNamespace string) (func(ns string) bool, error) {
	m, err := c.resource(schema.GroupKind{Group: "config.gatekeeper.sh", Kind: "Config"}, "audit exclusions")
	if err != nil {
		if isMissingCRD(err) {
			return nil, nil
		}
		return nil, err
	}
	u, err := c.Dynamic.Resource(m.Resource).Namespace(gkNamespace).Get(ctx, "config", metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, apiError(err, c.Server, "get", groupResource(m), gkNamespace, "audit exclusions")
	}
	return excludedMatcher(u), nil
}

func excludedMatcher(u *unstructured.Unstructured) func(string) bool {
	matches, _, _ := unstructured.NestedSlice(u.Object, "spec", "match")
	var pats []string
	for _, mi := range matches {
		m, _ := mi.(map[string]any)
		procs, _ := m["processes"].([]any)
		applies := false
		for _, p := range procs {
			if s, _ := p.(string); s == "audit" || s == "*" {
				applies = true
			}
		}
		if !applies {
			continue
		}
		nss, _ := m["excludedNamespaces"].([]any)
		for _, n := range nss {
			if s, _ := n.(string); s != "" {
				pats = append(pats, s)
			}
		}
	}
	if len(pats) == 0 {
		return nil
	}
	return func(ns string) bool {
		for _, p := range pats {
			switch {
			case p == ns:
				return true
			case strings.HasSuffix(p, "*") && strings.HasPrefix(ns, strings.TrimSuffix(p, "*")):
				return true
			case strings.HasPrefix(p, "*") && strings.HasSuffix(ns, strings.TrimPrefix(p, "*")):
				return true
			}
		}
		return false
	}
}
