package image

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

func decodeStrict(t *testing.T, raw []byte, v any) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("strict decode: %v\n%s", err, raw)
	}
}

var spdxID = regexp.MustCompile(`^SPDXRef-[A-Za-z0-9.-]+$`)

// The SBOM is SPDX 2.3 of what the binaries' build info lists: strict decoding into the SPDX
// subset, the fields SPDX 2.3 requires, identifiers that resolve, and the module and Go
// version the test program was really built with. It is the same bytes for the same build.
func TestSBOM(t *testing.T) {
	o := testOptions(t)
	raw, err := SBOM(o)
	if err != nil {
		t.Fatal(err)
	}
	var doc SPDXDocument
	decodeStrict(t, raw, &doc)
	if doc.SPDXVersion != "SPDX-2.3" || doc.DataLicense != "CC0-1.0" || doc.SPDXID != "SPDXRef-DOCUMENT" ||
		doc.Name == "" || !strings.HasPrefix(doc.DocumentNamespace, o.Source+"/spdx/") {
		t.Errorf("document header = %+v", doc)
	}
	if doc.CreationInfo.Created != "2026-01-01T00:00:00Z" || len(doc.CreationInfo.Creators) == 0 {
		t.Errorf("creationInfo = %+v, want created 2026-01-01T00:00:00Z and a creator", doc.CreationInfo)
	}
	ids := map[string]SPDXPackage{}
	for _, p := range doc.Packages {
		if !spdxID.MatchString(p.SPDXID) {
			t.Errorf("package %s: SPDXID %q is not an SPDX identifier", p.Name, p.SPDXID)
		}
		if _, dup := ids[p.SPDXID]; dup {
			t.Errorf("SPDXID %s used twice", p.SPDXID)
		}
		if p.Name == "" || p.DownloadLocation == "" || p.LicenseConcluded == "" || p.CopyrightText == "" {
			t.Errorf("package %s lacks a required field: %+v", p.SPDXID, p)
		}
		ids[p.SPDXID] = p
	}
	ids["SPDXRef-DOCUMENT"] = SPDXPackage{}
	deps := map[string][]string{} // app -> "name@version"
	for _, r := range doc.Relationships {
		if _, ok := ids[r.SPDXElementID]; !ok {
			t.Errorf("relationship from unknown %s", r.SPDXElementID)
		}
		if _, ok := ids[r.RelatedSPDXElement]; !ok {
			t.Errorf("relationship to unknown %s", r.RelatedSPDXElement)
		}
		if r.RelationshipType == "DEPENDS_ON" {
			p := ids[r.RelatedSPDXElement]
			deps[r.SPDXElementID] = append(deps[r.SPDXElementID], p.Name+"@"+p.VersionInfo)
		}
	}
	for _, b := range o.Binaries {
		id := "SPDXRef-Package-imagetrust-provider-linux-" + b.Platform.Architecture
		app, ok := ids[id]
		if !ok {
			t.Fatalf("no package %s", id)
		}
		sum, err := fileSHA256(b.Path)
		if err != nil {
			t.Fatal(err)
		}
		if len(app.Checksums) != 1 || app.Checksums[0].ChecksumValue != sum {
			t.Errorf("%s checksums = %+v, want SHA256 %s", id, app.Checksums, sum)
		}
		got := strings.Join(deps[id], " ")
		if !strings.Contains(got, "golang.org/x/sync@v0.22.0") || !strings.Contains(got, "stdlib@go1.") {
			t.Errorf("%s depends on %q, want golang.org/x/sync@v0.22.0 and the Go standard library", id, got)
		}
	}
	var purl string
	for _, p := range doc.Packages {
		if p.Name == "golang.org/x/sync" {
			purl = p.ExternalRefs[0].ReferenceLocator
			if p.DownloadLocation != "https://proxy.golang.org/golang.org/x/sync/@v/v0.22.0.zip" {
				t.Errorf("golang.org/x/sync downloadLocation = %s", p.DownloadLocation)
			}
		}
	}
	if purl != "pkg:golang/golang.org/x/sync@v0.22.0" {
		t.Errorf("golang.org/x/sync purl = %q, want pkg:golang/golang.org/x/sync@v0.22.0", purl)
	}
	again, err := SBOM(o)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(raw, again) {
		t.Error("two SBOMs of the same build differ")
	}
}

// The provenance is SLSA v1 with the source, commit, builder and each binary's digest, and
// the in-toto statement names the index and every platform manifest.
func TestProvenanceAndStatement(t *testing.T) {
	o := testOptions(t)
	if _, err := ProvenanceFor(o, ""); err == nil || !strings.Contains(err.Error(), "builderId: required") {
		t.Errorf("ProvenanceFor(no builder) = %v, want builderId: required", err)
	}
	raw, err := ProvenanceFor(o, "https://ci.example/builder@v1")
	if err != nil {
		t.Fatal(err)
	}
	var p Provenance
	decodeStrict(t, raw, &p)
	bd := p.BuildDefinition
	if bd.BuildType != BuildType || bd.ExternalParameters.Source.URI != o.Source ||
		bd.ExternalParameters.Source.Digest["gitCommit"] != o.Revision || p.RunDetails.Builder.ID != "https://ci.example/builder@v1" {
		t.Errorf("provenance = %s", raw)
	}
	if got := strings.Join(bd.ExternalParameters.Platforms, ","); got != "linux/amd64,linux/arm64" {
		t.Errorf("platforms = %s", got)
	}
	if bd.InternalParameters.BuildSettings["CGO_ENABLED"] != "0" || bd.InternalParameters.BuildSettings["-trimpath"] != "true" ||
		!strings.HasPrefix(bd.InternalParameters.GoVersion, "go1.") || bd.InternalParameters.SourceDateEpoch != testCreated.Unix() {
		t.Errorf("internalParameters = %+v", bd.InternalParameters)
	}
	if len(p.RunDetails.Byproducts) != 2 {
		t.Errorf("byproducts = %+v, want both binaries", p.RunDetails.Byproducts)
	}

	idx, _ := v1.NewHash("sha256:" + strings.Repeat("1", 64))
	m, _ := v1.NewHash("sha256:" + strings.Repeat("2", 64))
	st, err := Statement("ghcr.io/imagetrust/imagetrust-provider", []v1.Hash{idx, m}, Attestation{PredicateType: ProvenancePredicateType, Predicate: raw})
	if err != nil {
		t.Fatal(err)
	}
	var s struct {
		Type    string `json:"_type"`
		Subject []struct {
			Name   string            `json:"name"`
			Digest map[string]string `json:"digest"`
		} `json:"subject"`
		PredicateType string          `json:"predicateType"`
		Predicate     json.RawMessage `json:"predicate"`
	}
	decodeStrict(t, st, &s)
	if s.Type != "https://in-toto.io/Statement/v1" || s.PredicateType != ProvenancePredicateType || len(s.Subject) != 2 ||
		s.Subject[0].Digest["sha256"] != idx.Hex || s.Subject[1].Digest["sha256"] != m.Hex {
		t.Errorf("statement = %s", st)
	}
	if _, err := Statement("r", nil, Attestation{PredicateType: "x", Predicate: []byte("{")}); err == nil {
		t.Error("Statement accepted a predicate that is not JSON")
	}
}
