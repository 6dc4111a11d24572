package scan

import (
	"fmt"
	"regexp"
	"strings"
)

// sarifLog is the subset of SARIF 2.1.0 that Trivy and Grype write.
type sarifLog struct {
	Version seenString `json:"version"`
	Runs    []struct {
		Tool struct {
			Driver struct {
				Name    string      `json:"name"`
				Version string      `json:"version"`
				Rules   []sarifRule `json:"rules"`
			} `json:"driver"`
		} `json:"tool"`
		Results []struct {
			RuleID    string `json:"ruleId"`
			RuleIndex *int   `json:"ruleIndex"`
			Message   struct {
				Text string `json:"text"`
			} `json:"message"`
		} `json:"results"`
		Invocations []struct {
			EndTimeUTC flexTime `json:"endTimeUtc"`
		} `json:"invocations"`
		Properties struct {
			RepoDigests []string `json:"repoDigests"`
		} `json:"properties"`
	} `json:"runs"`
}

type sarifRule struct {
	ID   string `json:"id"`
	Help struct {
		Text string `json:"text"`
	} `json:"help"`
	Properties struct {
		Tags  []string `json:"tags"`
		PURLs []string `json:"purls"`
	} `json:"properties"`
}

// isSARIF sniffs a SARIF log: version and runs at the top.
func isSARIF(p *probe) bool { return bool(p.Version) && bool(p.Runs) }

// helpLine finds "Key: value" lines in Trivy's and Grype's help and message texts.
var helpLine = regexp.MustCompile(`(?m)^(Vulnerability|Severity|Package|Installed Version|Version|Fixed Version|Fix Version):[ \t]*(.*?)\r?$`)

func helpFields(text string) map[string]string {
	out := map[string]string{}
	for _, m := range helpLine.FindAllStringSubmatch(text, -1) {
		if _, ok := out[m[1]]; !ok {
			out[m[1]] = strings.TrimSpace(m[2])
		}
	}
	// "Vulnerability CVE-…" (no colon) heads both scanners' help texts.
	for _, line := range strings.Split(text, "\n") {
		if id, ok := strings.CutPrefix(strings.TrimSpace(line), "Vulnerability "); ok && !strings.Contains(id, " ") {
			out["Vulnerability"] = id
			break
		}
	}
	return out
}

// DecodeSARIF reads a SARIF 2.1.0 log written by Trivy or Grype (every run). SARIF carries no
// scan time unless a run records an invocation end time, and severities only as text: Trivy's
// severity tag or help line, Grype's help line.
func DecodeSARIF(raw []byte, lim Limits) (*Report, error) {
	var l sarifLog
	if err := strictish(raw, &l); err != nil {
		return nil, malformed("sarif", "", err)
	}
	return l.report(lim)
}

// report normalises a decoded SARIF log.
func (l *sarifLog) report(lim Limits) (*Report, error) {
	lim = lim.withDefaults()
	if l.Version.S != "2.1.0" {
		return nil, malformedf("sarif", "version", "is %q, only 2.1.0 is understood", l.Version.S)
	}
	if len(l.Runs) == 0 {
		return nil, malformedf("sarif", "runs", "is empty")
	}
	out := &Report{}
	for ri := range l.Runs {
		run := &l.Runs[ri]
		tool := strings.ToLower(run.Tool.Driver.Name)
		if tool != "trivy" && tool != "grype" {
			return nil, malformedf("sarif", fmt.Sprintf("runs[%d].tool.driver.name", ri), "is %q; only Trivy and Grype SARIF carry severities", run.Tool.Driver.Name)
		}
		if out.Format == "" {
			out.Format = "sarif/" + tool
			out.Scanner = Scanner{Name: tool, Version: run.Tool.Driver.Version}
		} else if out.Format != "sarif/"+tool {
			return nil, malformedf("sarif", fmt.Sprintf("runs[%d].tool.driver.name", ri), "is %q, runs[0] is %q", tool, strings.TrimPrefix(out.Format, "sarif/"))
		}
		for _, inv := range run.Invocations {
			if inv.EndTimeUTC.After(out.ScannedAt) {
				out.ScannedAt = inv.EndTimeUTC.Time
			}
		}
		for _, rd := range run.Properties.RepoDigests {
			if _, d, ok := strings.Cut(rd, "@"); ok {
				out.Digests = append(out.Digests, d)
			}
		}
		rules := run.Tool.Driver.Rules
		byID := make(map[string]int, len(rules))
		for i := range rules {
			byID[rules[i].ID] = i
		}
		if len(out.Findings)+len(run.Results) > lim.ReportFindings {
			return nil, &TooLargeError{What: "sarif results", Size: int64(len(out.Findings) + len(run.Results)), Limit: int64(lim.ReportFindings)}
		}
		for i := range run.Results {
			res := &run.Results[i]
			field := fmt.Sprintf("runs[%d].results[%d]", ri, i)
			ruleIdx, ok := byID[res.RuleID]
			if res.RuleIndex != nil && *res.RuleIndex >= 0 && *res.RuleIndex < len(rules) && rules[*res.RuleIndex].ID == res.RuleID {
				ruleIdx, ok = *res.RuleIndex, true
			}
			if !ok {
				return nil, malformedf("sarif", field+".ruleId", "%q names no rule", res.RuleID)
			}
			f, err := sarifFinding(tool, &rules[ruleIdx], res.Message.Text)
			if err != nil {
				return nil, malformed("sarif", field, err)
			}
			out.Findings = append(out.Findings, f)
		}
	}
	out.Findings = dedupe(out.Findings)
	return out, nil
}

func sarifFinding(tool string, rule *sarifRule, message string) (Finding, error) {
	help := helpFields(rule.Help.Text)
	msg := helpFields(message)
	get := func(k string) string {
		if v := msg[k]; v != "" {
			return v
		}
		return help[k]
	}
	f := Finding{ID: get("Vulnerability"), Package: get("Package")}
	if tool == "trivy" {
		if f.ID == "" {
			f.ID = rule.ID
		}
		f.InstalledVersion = get("Installed Version")
		f.FixedVersion = get("Fixed Version")
		sev := ""
		for _, t := range rule.Properties.Tags {
			if s := ParseSeverity(t); s != Unknown || strings.EqualFold(t, "UNKNOWN") {
				sev = t
			}
		}
		if sev == "" {
			sev = get("Severity")
		}
		f.Severity = ParseSeverity(sev)
	} else {
		if f.ID == "" {
			return Finding{}, fmt.Errorf("rule %q: help text names no vulnerability", rule.ID)
		}
		f.InstalledVersion = get("Version")
		f.FixedVersion = get("Fix Version")
		f.Severity = ParseSeverity(get("Severity"))
		if len(rule.Properties.PURLs) > 0 {
			f.PURL = rule.Properties.PURLs[0]
		}
	}
	if f.ID == "" {
		return Finding{}, fmt.Errorf("rule %q names no vulnerability", rule.ID)
	}
	if f.FixedVersion != "" {
		f.Status = "fixed"
	}
	return f, nil
}
