package check

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"path/filepath"
	"sort"
	"strings"

	"github.com/imagetrust/imagetrust/provider/internal/manifests"
)

// SARIF 2.1.0, the subset GitHub code scanning reads: one rule per constraint, a result per
// finding with its region at the image scalar, and a fingerprint that does not depend on the
// line, so an alert survives edits above it.
type sarifLog struct {
	Schema  string     `json:"$schema"`
	Version string     `json:"version"`
	Runs    []sarifRun `json:"runs"`
}

type sarifRun struct {
	Tool    sarifTool     `json:"tool"`
	Results []sarifResult `json:"results"`
}

type sarifTool struct {
	Driver sarifDriver `json:"driver"`
}

type sarifDriver struct {
	Name           string      `json:"name"`
	Version        string      `json:"version,omitempty"`
	InformationURI string      `json:"informationUri"`
	Rules          []sarifRule `json:"rules"`
}

type sarifRule struct {
	ID                   string         `json:"id"`
	Name                 string         `json:"name"`
	ShortDescription     sarifText      `json:"shortDescription"`
	DefaultConfiguration sarifConfig    `json:"defaultConfiguration"`
	Properties           map[string]any `json:"properties"`
}

type sarifConfig struct {
	Level string `json:"level"`
}

type sarifText struct {
	Text string `json:"text"`
}

type sarifResult struct {
	RuleID              string            `json:"ruleId"`
	RuleIndex           int               `json:"ruleIndex"`
	Level               string            `json:"level"`
	Message             sarifText         `json:"message"`
	Locations           []sarifLocation   `json:"locations"`
	PartialFingerprints map[string]string `json:"partialFingerprints"`
	Properties          map[string]any    `json:"properties,omitempty"`
}

type sarifLocation struct {
	PhysicalLocation sarifPhysical `json:"physicalLocation"`
}

type sarifPhysical struct {
	ArtifactLocation sarifArtifact `json:"artifactLocation"`
	Region           sarifRegion   `json:"region"`
}

type sarifArtifact struct {
	URI string `json:"uri"`
}

type sarifRegion struct {
	StartLine   int `json:"startLine"`
	StartColumn int `json:"startColumn,omitempty"`
}

// sarifLevel: an incomplete result is an error, as admission would deny what it cannot decide.
func sarifLevel(action string) string {
	switch action {
	case ActionDeny, ActionIncomplete:
		return "error"
	case ActionWarn:
		return "warning"
	}
	return "note"
}

// severity maps an action to GitHub's security-severity (high for deny and incomplete, medium
// for warn).
func severity(action string) string {
	switch action {
	case ActionDeny, ActionIncomplete:
		return "7.5"
	case ActionWarn:
		return "5.0"
	}
	return "2.0"
}

// Fingerprint identifies a finding across runs: constraint, file, object, container, image and
// message, never the line.
func Fingerprint(f Finding) string {
	h := sha256.Sum256([]byte(strings.Join([]string{f.Constraint, sarifURI(f.File), f.Object, f.Field, f.Container, f.Image, f.Message}, "\x00")))
	return hex.EncodeToString(h[:16])
}

// sarifURI is the file as a relative URI with forward slashes (GitHub matches it against the
// repository); standard input has no file and is reported as "stdin".
func sarifURI(file string) string {
	if file == manifests.Stdin {
		return "stdin"
	}
	return strings.TrimPrefix(filepath.ToSlash(filepath.Clean(file)), "./")
}

func writeSARIF(w io.Writer, rep *Report, version string) error {
	// One rule per constraint; its default level is its strongest action.
	actions := map[string]string{}
	for _, f := range rep.Findings {
		if a, ok := actions[f.Constraint]; !ok || rank(f.Action) > rank(a) {
			actions[f.Constraint] = f.Action
		}
	}
	ids := make([]string, 0, len(actions))
	for id := range actions {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	index := map[string]int{}
	rules := make([]sarifRule, 0, len(ids))
	for i, id := range ids {
		index[id] = i
		kind, name, _ := strings.Cut(id, "/")
		rules = append(rules, sarifRule{
			ID: id, Name: kind,
			ShortDescription:     sarifText{Text: "Gatekeeper constraint " + name + " (" + kind + ")"},
			DefaultConfiguration: sarifConfig{Level: sarifLevel(actions[id])},
			Properties:           map[string]any{"security-severity": severity(actions[id]), "tags": []string{"security", "kubernetes", "container-image"}},
		})
	}
	results := make([]sarifResult, 0, len(rep.Findings))
	for _, f := range rep.Findings {
		msg := f.Object
		if f.Container != "" {
			msg += " container " + f.Container
		}
		res := sarifResult{
			RuleID: f.Constraint, RuleIndex: index[f.Constraint], Level: sarifLevel(f.Action),
			Message: sarifText{Text: msg + ": " + f.Message},
			Locations: []sarifLocation{{PhysicalLocation: sarifPhysical{
				ArtifactLocation: sarifArtifact{URI: sarifURI(f.File)},
				Region:           sarifRegion{StartLine: max(f.Line, 1), StartColumn: f.Column},
			}}},
			PartialFingerprints: map[string]string{"imagetrustFinding/v1": Fingerprint(f)},
			Properties:          map[string]any{"enforcementAction": f.Action, "object": f.Object},
		}
		if f.Image != "" {
			res.Properties["image"] = f.Image
		}
		results = append(results, res)
	}
	log := sarifLog{
		Schema:  "https://json.schemastore.org/sarif-2.1.0.json",
		Version: "2.1.0",
		Runs: []sarifRun{{
			Tool: sarifTool{Driver: sarifDriver{
				Name: "imagetrust", Version: version,
				InformationURI: "https://github.com/imagetrust/imagetrust/blob/main/docs/ci.md",
				Rules:          rules,
			}},
			Results: results,
		}},
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(log)
}

func rank(action string) int {
	switch action {
	case ActionDeny, ActionIncomplete:
		return 3
	case ActionWarn:
		return 2
	}
	return 1
}
