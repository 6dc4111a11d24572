package image

import (
	"crypto/sha256"
	"debug/buildinfo"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
)

// ProvenancePredicateType is SLSA provenance v1.
const ProvenancePredicateType = "https://slsa.dev/provenance/v1"

// BuildType identifies how `make image` builds (documented in docs/image.md).
const BuildType = "https://github.com/imagetrust/imagetrust/blob/main/docs/image.md#build-type-v1"

// Provenance is a SLSA v1 provenance predicate.
type Provenance struct {
	BuildDefinition ProvenanceBuildDefinition `json:"buildDefinition"`
	RunDetails      ProvenanceRunDetails      `json:"runDetails"`
}

// ProvenanceBuildDefinition is what was built, from what.
type ProvenanceBuildDefinition struct {
	BuildType            string               `json:"buildType"`
	ExternalParameters   ProvenanceExternal   `json:"externalParameters"`
	InternalParameters   ProvenanceInternal   `json:"internalParameters"`
	ResolvedDependencies []ResourceDescriptor `json:"resolvedDependencies"`
}

// ProvenanceExternal are the parameters a user of `make image` chooses.
type ProvenanceExternal struct {
	// Source is the repository and commit (the provider reports Source.URI as sourceUri).
	Source    ResourceDescriptor `json:"source"`
	Version   string             `json:"version"`
	Platforms []string           `json:"platforms"`
}

// ProvenanceInternal are the builder's own settings, read from the binaries' build info.
type ProvenanceInternal struct {
	GoVersion       string            `json:"goVersion"`
	BuildSettings   map[string]string `json:"buildSettings"`
	SourceDateEpoch int64             `json:"sourceDateEpoch"`
}

// ResourceDescriptor is an in-toto v1 resource descriptor.
type ResourceDescriptor struct {
	URI    string            `json:"uri,omitempty"`
	Name   string            `json:"name,omitempty"`
	Digest map[string]string `json:"digest,omitempty"`
}

// ProvenanceRunDetails names the builder and the binaries it produced.
type ProvenanceRunDetails struct {
	Builder    ProvenanceBuilder    `json:"builder"`
	Byproducts []ResourceDescriptor `json:"byproducts,omitempty"`
}

// ProvenanceBuilder is the builder's identity.
type ProvenanceBuilder struct {
	ID string `json:"id"`
}

// ProvenanceFor is the SLSA v1 provenance predicate of a build by builderID (required: who ran
// `make image`, e.g. a CI workflow URL). Like the SBOM it is a pure function of its inputs: no
// start or finish times, which would make each run's statement differ.
func ProvenanceFor(o Options, builderID string) ([]byte, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	if builderID == "" {
		return nil, &OptionsError{"builderId", "required (the identity of the build platform)"}
	}
	src := ResourceDescriptor{URI: o.Source}
	if o.Revision != "" {
		src.Digest = map[string]string{"gitCommit": o.Revision}
	}
	p := Provenance{
		BuildDefinition: ProvenanceBuildDefinition{
			BuildType: BuildType,
			ExternalParameters: ProvenanceExternal{
				Source:  src,
				Version: o.Version,
			},
			InternalParameters: ProvenanceInternal{
				BuildSettings:   map[string]string{},
				SourceDateEpoch: o.Created.Unix(),
			},
			ResolvedDependencies: []ResourceDescriptor{{URI: "git+" + o.Source, Digest: src.Digest}},
		},
		RunDetails: ProvenanceRunDetails{Builder: ProvenanceBuilder{ID: builderID}},
	}
	for i, b := range o.Binaries {
		bi, err := buildinfo.ReadFile(b.Path)
		if err != nil {
			return nil, fmt.Errorf("provenance: binaries[%d] %s: reading Go build info: %w", i, b.Path, err)
		}
		sum, err := fileSHA256(b.Path)
		if err != nil {
			return nil, fmt.Errorf("provenance: binaries[%d]: %w", i, err)
		}
		plat := b.Platform.String()
		p.BuildDefinition.ExternalParameters.Platforms = append(p.BuildDefinition.ExternalParameters.Platforms, plat)
		if p.BuildDefinition.InternalParameters.GoVersion == "" {
			p.BuildDefinition.InternalParameters.GoVersion = bi.GoVersion
		} else if p.BuildDefinition.InternalParameters.GoVersion != bi.GoVersion {
			return nil, fmt.Errorf("provenance: binaries[%d] %s was built with %s, the others with %s", i, b.Path, bi.GoVersion, p.BuildDefinition.InternalParameters.GoVersion)
		}
		for _, s := range bi.Settings {
			if perPlatform(s.Key) {
				continue
			}
			p.BuildDefinition.InternalParameters.BuildSettings[s.Key] = s.Value
		}
		p.RunDetails.Byproducts = append(p.RunDetails.Byproducts, ResourceDescriptor{
			Name:   o.program().Name + " " + plat,
			Digest: map[string]string{"sha256": sum},
		})
	}
	out, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}

// perPlatform reports whether a build setting differs between the platforms of one build.
func perPlatform(key string) bool {
	switch key {
	case "GOOS", "GOARCH", "GOAMD64", "GOARM64", "GOARM", "GO386":
		return true
	}
	return false
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path) //nolint:gosec // a binary the build names
	if err != nil {
		return "", err
	}
	defer func() { _ = f.Close() }() // read only
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
