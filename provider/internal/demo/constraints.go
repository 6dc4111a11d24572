package demo

// Cluster is a policy set: the seed constraints describe two kinds of cluster (the bank's
// data centre and its edge sites) whose registry rules contradict each other (the bank allows
// only its own registry, edge sites their site-local mirror), so the demo reviews each sample
// with the constraints of the cluster its annotation names.
type Cluster struct {
	Name        string
	Constraints []string // files under the repository root
	// Extra are demo-only constraints (embedded), shown as such in the header.
	Extra []string
}

// Clusters are the policy sets, in display order.
var Clusters = []Cluster{
	{
		Name: "bank",
		Constraints: []string{
			"constraints/base/bank.yaml",
			"constraints/digest/production.yaml",
			"constraints/verification/kms-signed.yaml",
			"constraints/verification/stale-warn.yaml",
		},
		Extra: []string{sbomWarnConstraint},
	},
	{
		Name: "edge",
		Constraints: []string{
			"constraints/base/edge.yaml",
			"constraints/digest/edge.yaml",
		},
	},
}

// sbomWarnConstraint is the demo's only constraint of its own: a warn-only SBOM requirement
// for the reporting namespace (a rule being rolled out: admitted, with a warning).
const sbomWarnConstraint = `apiVersion: constraints.gatekeeper.sh/v1beta1
kind: K8sImageSignature
metadata:
  name: demo-sbom-rollout-warn
spec:
  enforcementAction: warn
  match:
    kinds:
      - apiGroups: [""]
        kinds: [Pod]
      - apiGroups: [apps]
        kinds: [Deployment, StatefulSet, DaemonSet, ReplicaSet]
      - apiGroups: [batch]
        kinds: [Job, CronJob]
    namespaces: [reporting]
  parameters:
    requireSBOM: true
    failOpen: true
`

// mutatorsFile holds the Assign mutators Gatekeeper runs before validation.
const mutatorsFile = "manifests/base/assign.yaml"

// providersFile holds the Provider objects (timeouts are taken from it).
const providersFile = "manifests/components/providers/providers.yaml"
