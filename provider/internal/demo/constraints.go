package demo

import "time"

// Cluster is a policy set: the seed constraints describe two kinds of cluster (the bank's
// data centre and its edge sites) whose registry rules contradict each other (the bank allows
// only its own registry, edge sites their site-local mirror), so the demo reviews each sample
// with the constraints of the cluster its annotation names.
type Cluster struct {
	Name        string
	Constraints []string // files under the repository root
	// Extra are demo-only constraints (embedded), shown as such in the header.
	Extra []Constraint
}

// Constraint is a constraint of the demo's own: its YAML and what it does, for the header.
type Constraint struct {
	Summary string
	YAML    string
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
			"constraints/security/bank.yaml",
		},
		Extra: []Constraint{
			{"warn when an image has no SBOM (namespace reporting)", sbomWarnConstraint},
			{"no MEDIUM finding either, one CVE ignored with a reason until an expiry (namespace reporting)", scanIgnoreConstraint},
		},
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

// scanIgnoreConstraint is the demo's own scan rule for namespace reporting: stricter than the
// bank's (no MEDIUM either), with one finding accepted for a while, its reason and expiry kept
// in the constraint for audit. {{ignoreExpires}} is IgnoreExpires of the run.
const scanIgnoreConstraint = `apiVersion: constraints.gatekeeper.sh/v1beta1
kind: K8sImageVulnerabilities
metadata:
  name: demo-reporting-no-medium
spec:
  enforcementAction: deny
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
    scannerAuthorities: [ci-trivy]
    maxSeverity: LOW
    maxScanAge: 168h
    ignore:
      - id: CVE-2024-0727
        reason: pdf-render never opens PKCS#12 files
        expires: "{{ignoreExpires}}"
        images: ["registry.bank.internal/reporting/pdf-render:*", "registry.bank.internal/reporting/pdf-render@*"]
`

// IgnoreExpires is the expiry of the demo's ignore entry: 90 days after now, as a date.
func IgnoreExpires(now time.Time) string { return now.UTC().AddDate(0, 0, 90).Format(time.DateOnly) }

// mutatorsFile holds the Assign mutators Gatekeeper runs before validation.
const mutatorsFile = "manifests/base/assign.yaml"

// providersFile holds the Provider objects (timeouts are taken from it).
const providersFile = "manifests/components/providers/providers.yaml"
