// Package image assembles the imagetrust provider image without a container runtime: the
// statically linked provider binaries (one per platform) and a small root filesystem built here
// (nonroot user 65532, CA roots, no shell) become OCI images with go-containerregistry, joined
// in an OCI image index and written to an OCI layout. Every timestamp comes from the build's
// creation time (SOURCE_DATE_EPOCH), so the same binaries and options give the same digest.
//
// Beside the image the package writes an SPDX 2.3 SBOM of the binaries' Go modules (from their
// build info) and a SLSA v1 provenance predicate, and signs and attests a pushed image with
// the cosign libraries (signature.go).
package image

import (
	"bytes"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Paths and identity inside the image.
const (
	// BinaryPath is where the provider binary lives in the provider image; it is the
	// entrypoint (Program.BinaryPath for any program).
	BinaryPath = "/usr/local/bin/imagetrust-provider"
	// UID and GID of the nonroot user the image runs as.
	UID = 65532
	GID = 65532
	// CertsPath is the CA bundle (PEM) from golang.org/x/crypto/x509roots/fallback.
	CertsPath = "/etc/ssl/certs/ca-certificates.crt"
)

// OCI annotation (and label) keys the image carries.
const (
	LabelSource   = "org.opencontainers.image.source"
	LabelVersion  = "org.opencontainers.image.version"
	LabelRevision = "org.opencontainers.image.revision"
	LabelCreated  = "org.opencontainers.image.created"
	LabelTitle    = "org.opencontainers.image.title"
)

// Binary is one platform's provider binary.
type Binary struct {
	// Platform is os/architecture[/variant], e.g. linux/amd64 (required).
	Platform v1.Platform
	// Path is the binary on disk (required).
	Path string
}

// Options describe one build.
type Options struct {
	// Program is what the image runs (optional; default the provider, Programs()["provider"]).
	Program Program
	// Binaries, one per platform, in index order (required, at least one, no platform twice).
	Binaries []Binary
	// Source is the source repository URL, e.g. https://github.com/imagetrust/imagetrust
	// (required): label org.opencontainers.image.source.
	Source string
	// Version, e.g. v0.1.0 (required): label org.opencontainers.image.version.
	Version string
	// Revision is the source commit (optional): label org.opencontainers.image.revision.
	Revision string
	// Created is the build's creation time (required, usually SOURCE_DATE_EPOCH or the commit
	// time): the config's created field, the label, the history and every file's mtime.
	Created time.Time
	// AllowDynamic accepts dynamically linked binaries (optional). Only for images that are
	// never run, such as the end-to-end test's copy; the release image is always static.
	AllowDynamic bool
}

// Platform is one image of the index.
type Platform struct {
	Platform v1.Platform
	Digest   v1.Hash
	// Size is the sum of the compressed layer sizes, the config and the manifest, in bytes.
	Size int64
	// BinarySHA256 is the hex SHA-256 of the program's binary in the image.
	BinarySHA256 string
}

// Result is a built image index.
type Result struct {
	Index     v1.ImageIndex
	Digest    v1.Hash
	Platforms []Platform
}

// OptionsError names the option that is wrong.
type OptionsError struct {
	Field  string
	Reason string
}

func (e *OptionsError) Error() string { return "image: " + e.Field + ": " + e.Reason }

func (o *Options) validate() error {
	if len(o.Binaries) == 0 {
		return &OptionsError{"binaries", "at least one platform binary is required"}
	}
	seen := map[string]bool{}
	for i, b := range o.Binaries {
		if b.Platform.OS == "" || b.Platform.Architecture == "" {
			return &OptionsError{fmt.Sprintf("binaries[%d].platform", i), "os and architecture are required"}
		}
		if b.Path == "" {
			return &OptionsError{fmt.Sprintf("binaries[%d].path", i), "required"}
		}
		p := b.Platform.String()
		if seen[p] {
			return &OptionsError{fmt.Sprintf("binaries[%d].platform", i), "platform " + p + " given twice"}
		}
		seen[p] = true
	}
	if !strings.HasPrefix(o.Source, "https://") {
		return &OptionsError{"source", fmt.Sprintf("%q is not an https:// repository URL", o.Source)}
	}
	if o.Version == "" {
		return &OptionsError{"version", "required"}
	}
	if o.Created.IsZero() {
		return &OptionsError{"created", "required (SOURCE_DATE_EPOCH or the commit time)"}
	}
	return nil
}

// Labels are the OCI labels (image config) and annotations (index) of the build.
func (o *Options) Labels() map[string]string {
	l := map[string]string{
		LabelSource:  o.Source,
		LabelVersion: o.Version,
		LabelCreated: o.Created.UTC().Format(time.RFC3339),
		LabelTitle:   o.program().Name,
	}
	if o.Revision != "" {
		l[LabelRevision] = o.Revision
	}
	return l
}

// Build assembles the index. It reads each binary, checks that it is an ELF executable for
// its platform (statically linked unless AllowDynamic), and builds one image per platform on
// the shared root filesystem layer.
func Build(o Options) (*Result, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	created := o.Created.UTC().Truncate(time.Second)
	base, err := baseLayer(created)
	if err != nil {
		return nil, err
	}
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	res := &Result{}
	for i, b := range o.Binaries {
		bin, err := os.ReadFile(b.Path)
		if err != nil {
			return nil, fmt.Errorf("image: binaries[%d]: %w", i, err)
		}
		if err := checkBinary(bin, b.Platform, o.AllowDynamic); err != nil {
			return nil, fmt.Errorf("image: binaries[%d] %s (%s): %w", i, b.Path, b.Platform.String(), err)
		}
		img, err := platformImage(o, created, b.Platform, base, bin)
		if err != nil {
			return nil, fmt.Errorf("image: %s: %w", b.Platform.String(), err)
		}
		p, err := describe(img, b.Platform, bin)
		if err != nil {
			return nil, fmt.Errorf("image: %s: %w", b.Platform.String(), err)
		}
		res.Platforms = append(res.Platforms, p)
		plat := b.Platform
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
			Add:        img,
			Descriptor: v1.Descriptor{Platform: &plat},
		})
	}
	idx, ok := mutate.Annotations(idx, o.Labels()).(v1.ImageIndex)
	if !ok {
		return nil, errors.New("image: annotating the index did not return an index")
	}
	d, err := idx.Digest()
	if err != nil {
		return nil, fmt.Errorf("image: index digest: %w", err)
	}
	res.Index, res.Digest = idx, d
	return res, nil
}

func platformImage(o Options, created time.Time, plat v1.Platform, base v1.Layer, bin []byte) (v1.Image, error) {
	prog := o.program()
	binLayer, err := binaryLayer(created, prog.BinaryPath(), bin)
	if err != nil {
		return nil, err
	}
	var ports map[string]struct{}
	if len(prog.Ports) > 0 {
		ports = map[string]struct{}{}
		for _, p := range prog.Ports {
			ports[p] = struct{}{}
		}
	}
	cfg := &v1.ConfigFile{
		Architecture: plat.Architecture,
		OS:           plat.OS,
		Variant:      plat.Variant,
		OSVersion:    plat.OSVersion,
		Created:      v1.Time{Time: created},
		Config: v1.Config{
			User:       fmt.Sprintf("%d:%d", UID, GID),
			Entrypoint: []string{prog.BinaryPath()},
			Env: []string{
				"PATH=/usr/local/bin",
				"SSL_CERT_FILE=" + CertsPath,
			},
			WorkingDir:   "/home/nonroot",
			Labels:       o.Labels(),
			ExposedPorts: ports,
		},
		RootFS: v1.RootFS{Type: "layers"},
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.ConfigFile(img, cfg)
	if err != nil {
		return nil, err
	}
	return mutate.Append(img,
		mutate.Addendum{Layer: base, History: v1.History{Created: v1.Time{Time: created},
			CreatedBy: "imagetrust-image: /etc/passwd, /etc/group (nonroot 65532), CA roots, /tmp", Comment: "root filesystem"}},
		mutate.Addendum{Layer: binLayer, History: v1.History{Created: v1.Time{Time: created},
			CreatedBy: "imagetrust-image: " + prog.BinaryPath(), Comment: prog.Name + " binary"}},
	)
}

func describe(img v1.Image, plat v1.Platform, bin []byte) (Platform, error) {
	d, err := img.Digest()
	if err != nil {
		return Platform{}, err
	}
	m, err := img.Manifest()
	if err != nil {
		return Platform{}, err
	}
	raw, err := img.RawManifest()
	if err != nil {
		return Platform{}, err
	}
	size := m.Config.Size + int64(len(raw))
	for _, l := range m.Layers {
		size += l.Size
	}
	sum := sha256.Sum256(bin)
	return Platform{Platform: plat, Digest: d, Size: size, BinarySHA256: hex.EncodeToString(sum[:])}, nil
}

// elfMachine is the ELF machine of GOARCH arch's binaries.
func elfMachine(arch string) (elf.Machine, bool) {
	switch arch {
	case "amd64":
		return elf.EM_X86_64, true
	case "arm64":
		return elf.EM_AARCH64, true
	case "arm":
		return elf.EM_ARM, true
	case "386":
		return elf.EM_386, true
	case "ppc64le":
		return elf.EM_PPC64, true
	case "s390x":
		return elf.EM_S390, true
	case "riscv64":
		return elf.EM_RISCV, true
	}
	return 0, false
}

// BinaryError says why a binary does not fit its platform.
type BinaryError struct{ Reason string }

func (e *BinaryError) Error() string { return e.Reason }

func checkBinary(bin []byte, plat v1.Platform, allowDynamic bool) error {
	if plat.OS != "linux" {
		return &BinaryError{fmt.Sprintf("os %q: only linux images are built", plat.OS)}
	}
	f, err := elf.NewFile(bytes.NewReader(bin))
	if err != nil {
		return &BinaryError{fmt.Sprintf("not an ELF executable: %v", err)}
	}
	defer func() { _ = f.Close() }() // read from memory
	want, ok := elfMachine(plat.Architecture)
	if !ok {
		return &BinaryError{fmt.Sprintf("architecture %q is not supported (386, amd64, arm, arm64, ppc64le, riscv64, s390x)", plat.Architecture)}
	}
	if f.Machine != want {
		return &BinaryError{fmt.Sprintf("ELF machine is %v, want %v for %s", f.Machine, want, plat.Architecture)}
	}
	if f.Type != elf.ET_EXEC && f.Type != elf.ET_DYN {
		return &BinaryError{fmt.Sprintf("ELF type %v is not an executable", f.Type)}
	}
	if !allowDynamic {
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				interp, _ := io.ReadAll(io.LimitReader(p.Open(), 256))
				return &BinaryError{fmt.Sprintf("dynamically linked (interpreter %s): build it with CGO_ENABLED=0", strings.TrimRight(string(interp), "\x00"))}
			}
		}
	}
	return nil
}
