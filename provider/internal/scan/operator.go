package scan

import (
	"fmt"
	"strings"
	"sync"

	"github.com/imagetrust/imagetrust/provider/internal/imageref"
)

// AuthorityTrivyOperator is the authority of scans read from Trivy Operator reports, which
// are not signed.
const AuthorityTrivyOperator = "trivy-operator"

// operatorReport is the subset of a Trivy Operator VulnerabilityReport or
// ClusterVulnerabilityReport (aquasecurity.github.io/v1alpha1) the scan value needs.
type operatorReport struct {
	Kind     string `json:"kind"`
	Metadata struct {
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
	} `json:"metadata"`
	Report struct {
		Artifact struct {
			Repository string `json:"repository"`
			Tag        string `json:"tag"`
			Digest     string `json:"digest"`
		} `json:"artifact"`
		Registry struct {
			Server string `json:"server"`
		} `json:"registry"`
		Scanner struct {
			Name    string `json:"name"`
			Version string `json:"version"`
		} `json:"scanner"`
		UpdateTimestamp flexTime `json:"updateTimestamp"`
		Vulnerabilities []struct {
			VulnerabilityID  string `json:"vulnerabilityID"`
			Resource         string `json:"resource"`
			PkgPURL          string `json:"pkgPURL"`
			InstalledVersion string `json:"installedVersion"`
			FixedVersion     string `json:"fixedVersion"`
			Severity         string `json:"severity"`
		} `json:"vulnerabilities"`
	} `json:"report"`
}

// OperatorKey is the normalised "registry/repository@sha256:<hex>" an operator report is
// about, as imageref normalises what a pod names ("docker.io/library/nginx@sha256:…").
type OperatorKey string

// DecodeOperatorReport reads a VulnerabilityReport or ClusterVulnerabilityReport (as JSON).
// ok is false for a report that says no digest: it is about no image the provider can name,
// and is ignored.
func DecodeOperatorReport(raw []byte, lim Limits) (key OperatorKey, r *Report, ok bool, err error) {
	const format = "trivy-operator"
	lim = lim.withDefaults()
	if int64(len(raw)) > lim.ReportBytes {
		return "", nil, false, &TooLargeError{What: "operator report", Size: int64(len(raw)), Limit: lim.ReportBytes}
	}
	var o operatorReport
	if err := strictish(raw, &o); err != nil {
		return "", nil, false, malformed(format, "", err)
	}
	if o.Kind != "VulnerabilityReport" && o.Kind != "ClusterVulnerabilityReport" {
		return "", nil, false, malformedf(format, "kind", "is %q", o.Kind)
	}
	a := o.Report.Artifact
	if a.Digest == "" {
		return "", nil, false, nil
	}
	if a.Repository == "" {
		return "", nil, false, malformedf(format, "report.artifact.repository", "is empty")
	}
	ref := a.Repository + "@" + a.Digest
	if o.Report.Registry.Server != "" {
		ref = o.Report.Registry.Server + "/" + ref
	}
	parsed, err := imageref.Parse(ref)
	if err != nil {
		return "", nil, false, malformed(format, "report.artifact", err)
	}
	if len(o.Report.Vulnerabilities) > lim.ReportFindings {
		return "", nil, false, &TooLargeError{What: "operator report vulnerabilities", Size: int64(len(o.Report.Vulnerabilities)), Limit: int64(lim.ReportFindings)}
	}
	r = &Report{Format: format, ScannedAt: o.Report.UpdateTimestamp.Time,
		Scanner: Scanner{Name: strings.ToLower(o.Report.Scanner.Name), Version: o.Report.Scanner.Version}}
	for i, v := range o.Report.Vulnerabilities {
		if v.VulnerabilityID == "" {
			return "", nil, false, malformedf(format, fmt.Sprintf("report.vulnerabilities[%d].vulnerabilityID", i), "is empty")
		}
		f := Finding{ID: v.VulnerabilityID, Severity: ParseSeverity(v.Severity), Package: v.Resource,
			PURL: v.PkgPURL, InstalledVersion: v.InstalledVersion, FixedVersion: v.FixedVersion}
		if f.FixedVersion != "" {
			f.Status = "fixed"
		}
		r.Findings = append(r.Findings, f)
	}
	r.Findings = dedupe(r.Findings)
	return OperatorKey(parsed.Repository() + "@" + parsed.Digest), r, true, nil
}

// OperatorIndex holds the operator's reports by normalised repository@digest. The informer
// fills it; lookups never list the API. Safe for concurrent use.
type OperatorIndex struct {
	mu sync.RWMutex
	// by key, then by object (namespace/name): several workloads may run one image.
	reports map[OperatorKey]map[string]*Report
	objKey  map[string]OperatorKey
}

// NewOperatorIndex returns an empty index.
func NewOperatorIndex() *OperatorIndex {
	return &OperatorIndex{reports: map[OperatorKey]map[string]*Report{}, objKey: map[string]OperatorKey{}}
}

// Set records (or replaces) the report of object id; r nil removes it.
func (x *OperatorIndex) Set(id string, key OperatorKey, r *Report) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if old, ok := x.objKey[id]; ok {
		delete(x.reports[old], id)
		if len(x.reports[old]) == 0 {
			delete(x.reports, old)
		}
		delete(x.objKey, id)
	}
	if r == nil {
		return
	}
	m := x.reports[key]
	if m == nil {
		m = map[string]*Report{}
		x.reports[key] = m
	}
	m[id] = r
	x.objKey[id] = key
}

// Reports returns the reports about repository@digest.
func (x *OperatorIndex) Reports(key OperatorKey) []*Report {
	x.mu.RLock()
	defer x.mu.RUnlock()
	m := x.reports[key]
	out := make([]*Report, 0, len(m))
	for _, r := range m {
		out = append(out, r)
	}
	return out
}

// Len is the number of reports held.
func (x *OperatorIndex) Len() int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return len(x.objKey)
}
