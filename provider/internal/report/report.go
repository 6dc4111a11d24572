// Package report turns Gatekeeper's audit results (constraint and template status) into an
// audit report: every violation Gatekeeper stored, optionally completed beyond its
// stored-violation cap by re-evaluating the matched objects with the same templates and
// constraints, rolled up by constraint, namespace and image, with health checks, an evidence
// header and a diff against an earlier report. Formats live in format_*.go.
package report

import (
	"time"
)

// Source says where a violation row came from.
const (
	// SourceStatus rows are in the constraint's status.violations (Gatekeeper's audit).
	SourceStatus = "status"
	// SourceReevaluated rows were found by re-evaluating the object in-process; status had
	// dropped them because of --constraint-violations-limit.
	SourceReevaluated = "reevaluated"
)

// Report is the whole report; its JSON form is what --diff reads back.
type Report struct {
	Evidence    Evidence     `json:"evidence"`
	Summary     Summary      `json:"summary"`
	Templates   []Template   `json:"templates"`
	Constraints []Constraint `json:"constraints"`
	Providers   []Provider   `json:"providers,omitempty"`
	Violations  []Violation  `json:"violations"`
	Rollups     Rollups      `json:"rollups"`
	Health      []Finding    `json:"health"`
	Diff        *Diff        `json:"diff,omitempty"`
}

// Evidence identifies what the report was made from, for auditors.
type Evidence struct {
	GeneratedAt       time.Time          `json:"generatedAt"`
	Cluster           string             `json:"cluster"`
	Context           string             `json:"context"`
	Server            string             `json:"server"`
	KubernetesVersion string             `json:"kubernetesVersion"`
	GatekeeperVersion string             `json:"gatekeeperVersion"`
	AuditInterval     string             `json:"auditInterval"`
	Complete          bool               `json:"complete"`
	AllConstraints    bool               `json:"allConstraints"`
	Templates         []TemplateEvidence `json:"templates"`
	Constraints       []string           `json:"constraints"`
}

// TemplateEvidence names a template version and the hash of its content (spec).
type TemplateEvidence struct {
	Name    string `json:"name"`
	Kind    string `json:"kind"`
	Version string `json:"version"`
	SHA256  string `json:"sha256"`
}

// Summary holds the headline numbers.
type Summary struct {
	Constraints int `json:"constraints"`
	Templates   int `json:"templates"`
	// TotalViolations is the sum of status.totalViolations (Gatekeeper's exact count).
	TotalViolations int64 `json:"totalViolations"`
	// Listed is the number of violation rows in the report.
	Listed      int `json:"listed"`
	FromStatus  int `json:"fromStatus"`
	Reevaluated int `json:"reevaluated"`
	// Unlisted is TotalViolations minus the rows listed for the same constraints (what status
	// dropped and no re-evaluation recovered).
	Unlisted   int64 `json:"unlisted"`
	Mismatches int   `json:"mismatches"`
	Namespaces int   `json:"namespaces"`
	Images     int   `json:"images"`
	Problems   int   `json:"healthProblems"`
}

// Template is a ConstraintTemplate and its status.
type Template struct {
	Name       string   `json:"name"`
	Kind       string   `json:"kind"`
	Title      string   `json:"title,omitempty"`
	Version    string   `json:"version,omitempty"`
	SHA256     string   `json:"sha256"`
	Imagetrust bool     `json:"imagetrust"`
	Created    bool     `json:"created"`
	Errors     []string `json:"errors,omitempty"`
}

// Constraint is one constraint, its audit status and how completely it is listed.
type Constraint struct {
	Kind              string      `json:"kind"`
	Name              string      `json:"name"`
	EnforcementAction string      `json:"enforcementAction"`
	Generation        int64       `json:"generation"`
	Audited           bool        `json:"audited"`
	AuditTimestamp    string      `json:"auditTimestamp,omitempty"`
	TotalViolations   int64       `json:"totalViolations"`
	Stored            int         `json:"stored"`
	Listed            int         `json:"listed"`
	Reevaluated       int         `json:"reevaluated"`
	Completed         bool        `json:"completed"`
	Mismatch          string      `json:"mismatch,omitempty"`
	ByPod             []PodStatus `json:"byPod,omitempty"`
	// Kinds are the kinds the constraint matches (spec.match.kinds), as group/Kind.
	Kinds []string `json:"kinds,omitempty"`
}

// ID is Kind/name.
func (c Constraint) ID() string { return c.Kind + "/" + c.Name }

// Capped says status holds fewer violations than Gatekeeper counted.
func (c Constraint) Capped() bool { return c.TotalViolations > int64(c.Stored) }

// PodStatus is one status.byPod entry.
type PodStatus struct {
	ID                 string   `json:"id"`
	Enforced           bool     `json:"enforced"`
	ObservedGeneration int64    `json:"observedGeneration"`
	Errors             []string `json:"errors,omitempty"`
}

// Provider is an external-data Provider and its status errors.
type Provider struct {
	Name   string   `json:"name"`
	URL    string   `json:"url"`
	Errors []string `json:"errors,omitempty"`
}

// Violation is one row: a constraint's violation by one object.
type Violation struct {
	Constraint        string `json:"constraint"` // Kind/name
	EnforcementAction string `json:"enforcementAction"`
	Group             string `json:"group"`
	Version           string `json:"version"`
	Kind              string `json:"kind"`
	Namespace         string `json:"namespace,omitempty"`
	Name              string `json:"name"`
	Message           string `json:"message"`
	// Container and Image are read from the message (imagetrust templates start every
	// message with "container <name> image <ref>"); Image is the normalised reference.
	Container string `json:"container,omitempty"`
	Image     string `json:"image,omitempty"`
	Source    string `json:"source"`
}

// Object is "Kind namespace/name" (or "Kind name" for cluster-scoped objects).
func (v Violation) Object() string {
	if v.Namespace == "" {
		return v.Kind + " " + v.Name
	}
	return v.Kind + " " + v.Namespace + "/" + v.Name
}

// key identifies a violation across reports and between status and re-evaluation: the message
// is compared as Gatekeeper stores it (truncated to 256 bytes).
func (v Violation) key() string {
	return v.Constraint + "\x00" + v.Group + "\x00" + v.Kind + "\x00" + v.Namespace + "\x00" + v.Name + "\x00" + truncateMessage(v.Message)
}

// Rollups are the violation counts grouped several ways.
type Rollups struct {
	ByConstraint []Count       `json:"byConstraint"`
	ByNamespace  []Count       `json:"byNamespace"`
	ByImage      []ImageRollup `json:"byImage"`
	Worst        []Offender    `json:"worstOffenders"`
}

// Count is the number of violations (and distinct objects) for one key.
type Count struct {
	Key        string `json:"key"`
	Violations int    `json:"violations"`
	Objects    int    `json:"objects"`
	// Total is Gatekeeper's totalViolations (by-constraint rollup only).
	Total int64 `json:"total,omitempty"`
}

// ImageRollup is everything that violates because of one image.
type ImageRollup struct {
	Image       string      `json:"image"`
	Violations  int         `json:"violations"`
	Workloads   int         `json:"workloads"`
	Namespaces  []string    `json:"namespaces"`
	Constraints []string    `json:"constraints"`
	Facts       *ImageFacts `json:"facts,omitempty"`
}

// ImageFacts are what the provider says about an image.
type ImageFacts struct {
	Digest string   `json:"digest,omitempty"`
	Signed string   `json:"signed"` // yes, no or unknown
	Scan   string   `json:"scan"`   // a summary, or why there is none
	Errors []string `json:"errors,omitempty"`
}

// Offender is an object with many violations.
type Offender struct {
	Object      string   `json:"object"`
	Violations  int      `json:"violations"`
	Constraints []string `json:"constraints"`
	Images      []string `json:"images,omitempty"`
}

// Severity of a health finding.
const (
	SeverityError   = "error"
	SeverityWarning = "warning"
)

// Finding is one health problem.
type Finding struct {
	Severity string `json:"severity"`
	Check    string `json:"check"`
	Object   string `json:"object"`
	Message  string `json:"message"`
}

// Diff compares this report with an earlier one.
type Diff struct {
	Since     time.Time   `json:"since"`
	File      string      `json:"file"`
	New       []Violation `json:"new"`
	Fixed     []Violation `json:"fixed"`
	Unchanged int         `json:"unchanged"`
	// Unverifiable counts earlier rows not listed now for constraints whose current rows do not
	// cover totalViolations (run with --complete): they may or may not be fixed.
	Unverifiable int   `json:"unverifiable"`
	TotalDelta   int64 `json:"totalViolationsDelta"`
}

// msgSize is Gatekeeper's limit for stored messages (pkg/audit msgSize).
const msgSize = 256

// truncateMessage shortens msg as Gatekeeper's audit does before storing it.
func truncateMessage(msg string) string {
	if len(msg) <= msgSize {
		return msg
	}
	return msg[:msgSize-3] + "..."
}
