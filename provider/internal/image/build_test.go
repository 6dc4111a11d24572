package image

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"debug/elf"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Two builds of the same inputs give the same digest, down to the bytes of the OCI layout:
// the binaries are compiled twice, into different directories, and assembled twice. A different
// creation time (another commit) gives another digest.
func TestBuildIsReproducible(t *testing.T) {
	o := testOptions(t)
	first, err := Build(o)
	if err != nil {
		t.Fatal(err)
	}
	o2 := o
	o2.Binaries = buildHello(t, t.TempDir()) // a second compilation, elsewhere
	second, err := Build(o2)
	if err != nil {
		t.Fatal(err)
	}
	if first.Digest != second.Digest {
		t.Errorf("two builds of the same inputs: digests %s and %s, want equal", first.Digest, second.Digest)
	}
	for i := range first.Platforms {
		if a, b := first.Platforms[i], second.Platforms[i]; a.Digest != b.Digest || a.BinarySHA256 != b.BinarySHA256 {
			t.Errorf("%s: %s (binary %s) and %s (binary %s), want equal", a.Platform.String(), a.Digest, a.BinarySHA256, b.Digest, b.BinarySHA256)
		}
	}

	// The layouts written from both are byte for byte the same.
	dirA, dirB := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
	if err := WriteLayout(dirA, first.Index, o.Version); err != nil {
		t.Fatal(err)
	}
	if err := WriteLayout(dirB, second.Index, o.Version); err != nil {
		t.Fatal(err)
	}
	if a, b := treeDigest(t, dirA), treeDigest(t, dirB); a != b {
		t.Errorf("layouts differ:\n%s\n---\n%s", a, b)
	}

	o3 := o
	o3.Created = o.Created.Add(time.Second)
	third, err := Build(o3)
	if err != nil {
		t.Fatal(err)
	}
	if third.Digest == first.Digest {
		t.Errorf("builds created at %v and %v have the same digest %s", o.Created, o3.Created, first.Digest)
	}
}

// treeDigest lists every file under dir with the SHA-256 of its contents.
func treeDigest(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		raw, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		fmt.Fprintf(&b, "%s %x\n", rel, sha256.Sum256(raw))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// hostELFArch is the GOARCH of an ELF file.
func hostELFArch(t *testing.T, path string) string {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Skipf("%s: %v", path, err)
	}
	defer func() { _ = f.Close() }()
	for _, arch := range []string{"amd64", "arm64", "arm", "386", "ppc64le", "s390x", "riscv64"} {
		if m, _ := elfMachine(arch); m == f.Machine {
			return arch
		}
	}
	t.Skipf("%s: ELF machine %v not supported", path, f.Machine)
	return ""
}

// The image is what the brief asks for: an OCI index of one image per platform, user 65532,
// no shell, the binary as entrypoint, CA roots, the OCI labels, and every mtime at Created.
func TestBuildContents(t *testing.T) {
	o := testOptions(t)
	res, err := Build(o)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "oci")
	if err := WriteLayout(dir, res.Index, o.Version); err != nil {
		t.Fatal(err)
	}
	idx, err := ReadLayout(dir)
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := idx.Digest(); d != res.Digest {
		t.Fatalf("layout index digest = %s, want %s", d, res.Digest)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if im.MediaType != types.OCIImageIndex {
		t.Errorf("index media type = %s, want %s", im.MediaType, types.OCIImageIndex)
	}
	wantLabels := map[string]string{
		LabelSource: o.Source, LabelVersion: o.Version, LabelRevision: o.Revision,
		LabelCreated: "2026-01-01T00:00:00Z", LabelTitle: "imagetrust-provider",
	}
	for k, v := range wantLabels {
		if im.Annotations[k] != v {
			t.Errorf("index annotation %s = %q, want %q", k, im.Annotations[k], v)
		}
	}
	if len(im.Manifests) != 2 {
		t.Fatalf("index has %d manifests, want 2", len(im.Manifests))
	}
	for i, m := range im.Manifests {
		want := o.Binaries[i].Platform
		if m.Platform == nil || m.Platform.OS != want.OS || m.Platform.Architecture != want.Architecture {
			t.Errorf("manifests[%d].platform = %v, want %v", i, m.Platform, want)
		}
		img, err := idx.Image(m.Digest)
		if err != nil {
			t.Fatal(err)
		}
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if cf.OS != want.OS || cf.Architecture != want.Architecture {
			t.Errorf("%s: config platform %s/%s", want.String(), cf.OS, cf.Architecture)
		}
		if cf.Config.User != "65532:65532" {
			t.Errorf("%s: user = %q, want 65532:65532", want.String(), cf.Config.User)
		}
		if len(cf.Config.Entrypoint) != 1 || cf.Config.Entrypoint[0] != BinaryPath {
			t.Errorf("%s: entrypoint = %q, want [%s]", want.String(), cf.Config.Entrypoint, BinaryPath)
		}
		if !cf.Created.Equal(testCreated) {
			t.Errorf("%s: created = %v, want %v", want.String(), cf.Created.Time, testCreated)
		}
		for k, v := range wantLabels {
			if cf.Config.Labels[k] != v {
				t.Errorf("%s: label %s = %q, want %q", want.String(), k, cf.Config.Labels[k], v)
			}
		}
		files := readFiles(t, img)
		for _, p := range []string{"bin/sh", "bin/bash", "bin/busybox", "usr/bin/sh"} {
			if _, ok := files[p]; ok {
				t.Errorf("%s: image has a shell at /%s", want.String(), p)
			}
		}
		bin, ok := files[BinaryPath[1:]]
		if !ok {
			t.Fatalf("%s: no %s in the image; files: %v", want.String(), BinaryPath, keys(files))
		}
		src, err := os.ReadFile(o.Binaries[i].Path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(bin.data, src) || bin.hdr.Mode != 0o755 || bin.hdr.Uid != 0 {
			t.Errorf("%s: %s differs from %s (mode %o uid %d)", want.String(), BinaryPath, o.Binaries[i].Path, bin.hdr.Mode, bin.hdr.Uid)
		}
		if !strings.Contains(string(files["etc/passwd"].data), "nonroot:x:65532:65532:") ||
			!strings.Contains(string(files["etc/group"].data), "nonroot:x:65532:") {
			t.Errorf("%s: /etc/passwd or /etc/group lacks nonroot 65532:\n%s%s", want.String(), files["etc/passwd"].data, files["etc/group"].data)
		}
		if home := files["home/nonroot"].hdr; home == nil || home.Uid != UID || home.Gid != GID {
			t.Errorf("%s: /home/nonroot not owned by 65532: %+v", want.String(), home)
		}
		if n := countCerts(t, files[CertsPath[1:]].data); n < 100 {
			t.Errorf("%s: %s holds %d certificates, want the Mozilla roots (> 100)", want.String(), CertsPath, n)
		}
		for p, f := range files {
			if !f.hdr.ModTime.Equal(testCreated) {
				t.Errorf("%s: /%s mtime = %v, want %v", want.String(), p, f.hdr.ModTime, testCreated)
			}
		}
	}
}

type file struct {
	hdr  *tar.Header
	data []byte
}

func readFiles(t *testing.T, img v1.Image) map[string]file {
	t.Helper()
	ls, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]file{}
	for _, l := range ls {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(rc)
		for {
			h, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			out[strings.TrimSuffix(h.Name, "/")] = file{hdr: h, data: b}
		}
		_ = rc.Close()
	}
	return out
}

func keys(m map[string]file) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func countCerts(t *testing.T, pemData []byte) int {
	t.Helper()
	n := 0
	for {
		var blk *pem.Block
		blk, pemData = pem.Decode(pemData)
		if blk == nil {
			return n
		}
		if _, err := x509.ParseCertificate(blk.Bytes); err != nil {
			t.Errorf("CA bundle certificate %d: %v", n, err)
		}
		n++
	}
}

// Wrong inputs fail with an error that names what is wrong.
func TestBuildRejects(t *testing.T) {
	good := testOptions(t)
	amd64, arm64 := good.Binaries[0], good.Binaries[1]
	text := filepath.Join(t.TempDir(), "script.sh")
	if err := os.WriteFile(text, []byte("#!/bin/sh\necho hi\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		edit func(*Options)
		want string
	}{
		{"no binaries", func(o *Options) { o.Binaries = nil }, "binaries: at least one platform binary is required"},
		{"platform twice", func(o *Options) { o.Binaries = []Binary{amd64, amd64} }, "binaries[1].platform: platform linux/amd64 given twice"},
		{"no architecture", func(o *Options) { o.Binaries = []Binary{{Platform: v1.Platform{OS: "linux"}, Path: amd64.Path}} }, "binaries[0].platform: os and architecture are required"},
		{"wrong architecture", func(o *Options) {
			o.Binaries = []Binary{{Platform: arm64.Platform, Path: amd64.Path}}
		}, "ELF machine is EM_X86_64, want EM_AARCH64 for arm64"},
		{"not ELF", func(o *Options) { o.Binaries = []Binary{{Platform: amd64.Platform, Path: text}} }, "not an ELF executable"},
		{"windows", func(o *Options) {
			o.Binaries = []Binary{{Platform: v1.Platform{OS: "windows", Architecture: "amd64"}, Path: amd64.Path}}
		}, `os "windows": only linux images are built`},
		{"missing file", func(o *Options) {
			o.Binaries = []Binary{{Platform: amd64.Platform, Path: filepath.Join(t.TempDir(), "nope")}}
		}, "no such file"},
		{"source not https", func(o *Options) { o.Source = "github.com/imagetrust/imagetrust" }, `source: "github.com/imagetrust/imagetrust" is not an https:// repository URL`},
		{"no version", func(o *Options) { o.Version = "" }, "version: required"},
		{"no created", func(o *Options) { o.Created = time.Time{} }, "created: required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := good
			tt.edit(&o)
			_, err := Build(o)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Build() = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

// A dynamically linked binary would not start in an image without a libc: it is refused,
// saying how to build it, unless the caller says the image is never run.
func TestBuildRejectsDynamicBinary(t *testing.T) {
	dyn := ""
	for _, p := range []string{"/bin/true", "/usr/bin/true"} {
		if f, err := os.Stat(p); err == nil && f.Mode().IsRegular() {
			dyn = p
			break
		}
	}
	if dyn == "" {
		t.Skip("no dynamically linked /bin/true on this machine")
	}
	o := testOptions(t)
	o.Binaries = []Binary{{Platform: v1.Platform{OS: "linux", Architecture: hostELFArch(t, dyn)}, Path: dyn}}
	_, err := Build(o)
	var be *BinaryError
	if !errors.As(err, &be) || !strings.Contains(err.Error(), "dynamically linked") || !strings.Contains(err.Error(), "CGO_ENABLED=0") {
		t.Fatalf("Build(%s) = %v, want a BinaryError saying it is dynamically linked", dyn, err)
	}
	o.AllowDynamic = true
	if _, err := Build(o); err != nil {
		t.Errorf("Build(%s) with AllowDynamic = %v", dyn, err)
	}
}
