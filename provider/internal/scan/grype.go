package scan

import (
	"encoding/json"
	"fmt"
	"strings"
)

// grypeDocument is the subset of Grype's JSON output the scan value needs.
type grypeDocument struct {
	Matches []struct {
		Vulnerability struct {
			ID       string `json:"id"`
			Severity string `json:"severity"`
			Fix      struct {
				Versions []string `json:"versions"`
				State    string   `json:"state"`
			} `json:"fix"`
		} `json:"vulnerability"`
		Related []struct {
			ID string `json:"id"`
		} `json:"relatedVulnerabilities"`
		Artifact struct {
			Name    string `json:"name"`
			Version string `json:"version"`
			PURL    string `json:"purl"`
		} `json:"artifact"`
	} `json:"matches"`
	Source struct {
		Type   string          `json:"type"`
		Target json.RawMessage `json:"target"`
	} `json:"source"`
	Descriptor struct {
		Name      string   `json:"name"`
		Version   string   `json:"version"`
		Timestamp flexTime `json:"timestamp"`
		DB        struct {
			Built flexTime `json:"built"`
		} `json:"db"`
	} `json:"descriptor"`
}

// isGrype sniffs a Grype JSON document: matches at the top.
func isGrype(p *probe) bool { return bool(p.Matches) }

// DecodeGrype reads a Grype JSON document.
func DecodeGrype(raw []byte, lim Limits) (*Report, error) {
	var g grypeDocument
	if err := strictish(raw, &g); err != nil {
		return nil, malformed("grype", "", err)
	}
	return g.report(lim)
}

// report normalises a decoded Grype document.
func (g *grypeDocument) report(lim Limits) (*Report, error) {
	const format = "grype"
	lim = lim.withDefaults()
	if g.Matches == nil {
		return nil, malformedf(format, "matches", "is missing")
	}
	if len(g.Matches) > lim.ReportFindings {
		return nil, &TooLargeError{What: "grype report findings", Size: int64(len(g.Matches)), Limit: int64(lim.ReportFindings)}
	}
	name := g.Descriptor.Name
	if name == "" {
		name = "grype"
	}
	out := &Report{Format: format, ScannedAt: g.Descriptor.Timestamp.Time,
		Scanner: Scanner{Name: strings.ToLower(name), Version: g.Descriptor.Version}}
	if !g.Descriptor.DB.Built.IsZero() {
		t := g.Descriptor.DB.Built.Time
		out.Scanner.DB.UpdatedAt = &t
	}
	if g.Source.Type == "image" && len(g.Source.Target) > 0 && g.Source.Target[0] == '{' {
		var t struct {
			ManifestDigest string   `json:"manifestDigest"`
			RepoDigests    []string `json:"repoDigests"`
		}
		if err := json.Unmarshal(g.Source.Target, &t); err != nil {
			return nil, malformed(format, "source.target", err)
		}
		if t.ManifestDigest != "" {
			out.Digests = append(out.Digests, t.ManifestDigest)
		}
		for _, rd := range t.RepoDigests {
			if _, d, ok := strings.Cut(rd, "@"); ok {
				out.Digests = append(out.Digests, d)
			}
		}
	}
	out.Findings = make([]Finding, 0, len(g.Matches))
	for i := range g.Matches {
		m := &g.Matches[i]
		v := &m.Vulnerability
		if v.ID == "" {
			return nil, malformedf(format, fmt.Sprintf("matches[%d].vulnerability.id", i), "is empty")
		}
		f := Finding{
			ID: v.ID, Severity: ParseSeverity(v.Severity), Package: m.Artifact.Name,
			PURL: m.Artifact.PURL, InstalledVersion: m.Artifact.Version,
			FixedVersion: strings.Join(v.Fix.Versions, ", "), Status: normaliseFixStatus(v.Fix.State),
		}
		for _, r := range m.Related {
			if r.ID != "" && r.ID != v.ID {
				f.Aliases = append(f.Aliases, r.ID)
			}
		}
		out.Findings = append(out.Findings, f)
	}
	out.Findings = dedupe(out.Findings)
	return out, nil
}
