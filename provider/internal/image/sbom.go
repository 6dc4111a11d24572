package image

import (
	"crypto/sha256"
	"debug/buildinfo"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"runtime/debug"
	"sort"
	"strings"
	"time"
)

// SBOMPredicateType is the in-toto predicate type of an SPDX document (what `cosign attest
// --type spdxjson` writes); the provider reports it as sbom.format "spdx".
const SBOMPredicateType = "https://spdx.dev/Document"

// SPDXDocument is the subset of SPDX 2.3 (JSON) the SBOM uses.
type SPDXDocument struct {
	SPDXVersion       string             `json:"spdxVersion"`
	DataLicense       string             `json:"dataLicense"`
	SPDXID            string             `json:"SPDXID"`
	Name              string             `json:"name"`
	DocumentNamespace string             `json:"documentNamespace"`
	CreationInfo      SPDXCreationInfo   `json:"creationInfo"`
	Packages          []SPDXPackage      `json:"packages"`
	Relationships     []SPDXRelationship `json:"relationships"`
}

// SPDXCreationInfo says who made the document and when.
type SPDXCreationInfo struct {
	Created  string   `json:"created"`
	Creators []string `json:"creators"`
}

// SPDXPackage is a binary, a Go module or the Go standard library.
type SPDXPackage struct {
	Name                  string            `json:"name"`
	SPDXID                string            `json:"SPDXID"`
	VersionInfo           string            `json:"versionInfo,omitempty"`
	DownloadLocation      string            `json:"downloadLocation"`
	FilesAnalyzed         bool              `json:"filesAnalyzed"`
	LicenseConcluded      string            `json:"licenseConcluded"`
	LicenseDeclared       string            `json:"licenseDeclared"`
	CopyrightText         string            `json:"copyrightText"`
	PrimaryPackagePurpose string            `json:"primaryPackagePurpose,omitempty"`
	Checksums             []SPDXChecksum    `json:"checksums,omitempty"`
	ExternalRefs          []SPDXExternalRef `json:"externalRefs,omitempty"`
	Comment               string            `json:"comment,omitempty"`
}

// SPDXChecksum is a package checksum.
type SPDXChecksum struct {
	Algorithm     string `json:"algorithm"`
	ChecksumValue string `json:"checksumValue"`
}

// SPDXExternalRef is a package URL.
type SPDXExternalRef struct {
	ReferenceCategory string `json:"referenceCategory"`
	ReferenceType     string `json:"referenceType"`
	ReferenceLocator  string `json:"referenceLocator"`
}

// SPDXRelationship links two elements.
type SPDXRelationship struct {
	SPDXElementID      string `json:"spdxElementId"`
	RelationshipType   string `json:"relationshipType"`
	RelatedSPDXElement string `json:"relatedSpdxElement"`
}

const noAssertion = "NOASSERTION"

// SBOM is the SPDX 2.3 document of the build's binaries: one APPLICATION package per platform
// binary (with its SHA-256), each depending on the Go modules and the Go standard library its
// build info lists (debug/buildinfo), with package URLs. The document is a pure function of
// the binaries and options: the same build gives the same bytes.
func SBOM(o Options) ([]byte, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	doc := SPDXDocument{
		SPDXVersion: "SPDX-2.3",
		DataLicense: "CC0-1.0",
		SPDXID:      "SPDXRef-DOCUMENT",
		Name:        o.program().Name + "-" + o.Version,
		CreationInfo: SPDXCreationInfo{
			Created:  o.Created.UTC().Truncate(time.Second).Format(time.RFC3339),
			Creators: []string{"Tool: imagetrust-image"},
		},
	}
	ids := map[string]bool{doc.SPDXID: true}
	modules := map[string]string{} // "path@version" -> SPDXID
	var nsHash = sha256.New()
	for i, b := range o.Binaries {
		bi, err := buildinfo.ReadFile(b.Path)
		if err != nil {
			return nil, fmt.Errorf("sbom: binaries[%d] %s: reading Go build info: %w", i, b.Path, err)
		}
		sum, err := fileSHA256(b.Path)
		if err != nil {
			return nil, fmt.Errorf("sbom: binaries[%d]: %w", i, err)
		}
		nsHash.Write([]byte(sum))
		plat := b.Platform
		appID := uniqueID(ids, "SPDXRef-Package-"+o.program().Name+"-"+plat.OS+"-"+plat.Architecture+plat.Variant)
		doc.Packages = append(doc.Packages, SPDXPackage{
			Name:                  o.program().Name + " (" + plat.String() + ")",
			SPDXID:                appID,
			VersionInfo:           o.Version,
			DownloadLocation:      o.Source,
			LicenseConcluded:      noAssertion,
			LicenseDeclared:       noAssertion,
			CopyrightText:         noAssertion,
			PrimaryPackagePurpose: "APPLICATION",
			Checksums:             []SPDXChecksum{{Algorithm: "SHA256", ChecksumValue: sum}},
			ExternalRefs: []SPDXExternalRef{purlRef(golangPURL(bi.Main.Path, o.Version,
				"goos="+plat.OS, "goarch="+plat.Architecture))},
			Comment: "Go build settings: " + settings(bi.Settings),
		})
		doc.Relationships = append(doc.Relationships, SPDXRelationship{"SPDXRef-DOCUMENT", "DESCRIBES", appID})
		deps := []*debug.Module{{Path: "stdlib", Version: bi.GoVersion}}
		deps = append(deps, bi.Deps...)
		for _, m := range deps {
			if m.Replace != nil {
				m = &debug.Module{Path: m.Replace.Path, Version: m.Replace.Version, Sum: m.Replace.Sum}
			}
			key := m.Path + "@" + m.Version
			id, ok := modules[key]
			if !ok {
				id = uniqueID(ids, "SPDXRef-Package-go-"+m.Path+"-"+m.Version)
				modules[key] = id
				p := SPDXPackage{
					Name:                  m.Path,
					SPDXID:                id,
					VersionInfo:           m.Version,
					DownloadLocation:      noAssertion,
					LicenseConcluded:      noAssertion,
					LicenseDeclared:       noAssertion,
					CopyrightText:         noAssertion,
					PrimaryPackagePurpose: "LIBRARY",
					ExternalRefs:          []SPDXExternalRef{purlRef(golangPURL(m.Path, m.Version))},
				}
				if m.Path != "stdlib" && !strings.HasPrefix(m.Path, ".") && !strings.HasPrefix(m.Path, "/") {
					p.DownloadLocation = "https://proxy.golang.org/" + escapeModule(m.Path) + "/@v/" + escapeModule(m.Version) + ".zip"
				}
				if m.Sum != "" {
					p.Comment = "go.sum " + m.Sum
				}
				doc.Packages = append(doc.Packages, p)
			}
			doc.Relationships = append(doc.Relationships, SPDXRelationship{appID, "DEPENDS_ON", id})
		}
	}
	doc.DocumentNamespace = strings.TrimSuffix(o.Source, "/") + "/spdx/" + o.program().Name + "/" +
		url.PathEscape(o.Version) + "/" + hex.EncodeToString(nsHash.Sum(nil))[:32]
	// Binaries first (in platform order), then modules by name.
	apps := len(o.Binaries)
	sort.SliceStable(doc.Packages[apps:], func(i, j int) bool {
		a, b := doc.Packages[apps+i], doc.Packages[apps+j]
		return a.Name+"@"+a.VersionInfo < b.Name+"@"+b.VersionInfo
	})
	out, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}

// uniqueID turns s into an SPDX identifier (letters, digits, '.', '-') not yet in ids.
func uniqueID(ids map[string]bool, s string) string {
	b := []byte(s)
	for i, c := range b {
		if (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && (c < '0' || c > '9') && c != '.' && c != '-' {
			b[i] = '-'
		}
	}
	id := string(b)
	for n := 2; ids[id]; n++ {
		id = fmt.Sprintf("%s-%d", b, n)
	}
	ids[id] = true
	return id
}

// golangPURL is the package URL of a Go module: pkg:golang/<path>@<version>[?qualifiers].
func golangPURL(path, version string, qualifiers ...string) string {
	segs := strings.Split(path, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	p := "pkg:golang/" + strings.Join(segs, "/")
	if version != "" && version != "(devel)" {
		p += "@" + url.PathEscape(version)
	}
	if len(qualifiers) > 0 {
		p += "?" + strings.Join(qualifiers, "&")
	}
	return p
}

func purlRef(p string) SPDXExternalRef {
	return SPDXExternalRef{ReferenceCategory: "PACKAGE-MANAGER", ReferenceType: "purl", ReferenceLocator: p}
}

// escapeModule is the module proxy's case encoding: an upper-case letter becomes '!' and its
// lower case.
func escapeModule(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= 'A' && r <= 'Z' {
			b.WriteByte('!')
			b.WriteRune(r + ('a' - 'A'))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func settings(s []debug.BuildSetting) string {
	parts := make([]string, 0, len(s))
	for _, kv := range s {
		parts = append(parts, kv.Key+"="+kv.Value)
	}
	return strings.Join(parts, " ")
}
