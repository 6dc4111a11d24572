//go:build e2e

package e2e

import (
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// checkChart renders the Helm chart (manifests/helm/imagetrust) with the default and the full
// values and sends every object through the API server with --dry-run=server, as checkManifests
// does for kustomize: schemas, Gatekeeper's validation of Provider, Assign, ConstraintTemplate
// and constraint objects, RBAC. It runs after the templates are enforced, so the constraint
// kinds exist. Kinds whose CRDs this stack does not install (cert-manager's, the Prometheus
// operator's) are only rendered.
func (s *stack) checkChart() {
	t := s.t
	helm := toolPath(t, "helm", helmVersion)
	notInstalled := func(o *unstructured.Unstructured) bool {
		return strings.HasPrefix(o.GetAPIVersion(), "cert-manager.io/") || strings.HasPrefix(o.GetAPIVersion(), "monitoring.coreos.com/")
	}
	for _, c := range []struct {
		name string
		args []string
	}{
		{"default values", nil},
		{"full values, this test's provider CA", append(fullValues(t), "--set", "tls.caBundle="+s.certs.provider.CABundle(),
			"--kube-version", kubeVersion)},
	} {
		objs := helmTemplate(t, helm, c.args...)
		var dry []*unstructured.Unstructured
		var skipped []string
		for _, o := range objs {
			if notInstalled(o) {
				skipped = append(skipped, objectKey(o))
				continue
			}
			dry = append(dry, o)
		}
		out := s.kubectlOK(toYAML(dry), "apply", "--server-side", "--force-conflicts", "--dry-run=server", "-f", "-")
		s.logf("helm template (%s) | kubectl apply --server-side --dry-run=server: %d objects (%s); rendered only, no CRDs here: %s\n%s",
			c.name, len(dry), kindCounts(dry), strings.Join(skipped, ", "), indent(out))
		checkChartConfig(t, objs)
	}
}
