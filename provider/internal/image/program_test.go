package image

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// repoRoot is the repository, from this package.
const repoRoot = "../../.."

// TestBuildCLIImage: the CLI program's image runs /usr/local/bin/imagetrust on the same root
// filesystem, exposes no port and is titled imagetrust; same binaries, another image.
func TestBuildCLIImage(t *testing.T) {
	o := testOptions(t)
	cli, err := ProgramNamed(ProgramCLI)
	if err != nil {
		t.Fatal(err)
	}
	o.Program = cli
	res, err := Build(o)
	if err != nil {
		t.Fatal(err)
	}
	prov, err := Build(testOptions(t))
	if err != nil {
		t.Fatal(err)
	}
	if res.Digest == prov.Digest {
		t.Fatal("the CLI and provider images of the same binaries have one digest")
	}
	im, err := res.Index.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if im.Annotations[LabelTitle] != "imagetrust" {
		t.Errorf("index title = %q, want imagetrust", im.Annotations[LabelTitle])
	}
	for i, m := range im.Manifests {
		img, err := res.Index.Image(m.Digest)
		if err != nil {
			t.Fatal(err)
		}
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if got := cf.Config.Entrypoint; len(got) != 1 || got[0] != "/usr/local/bin/imagetrust" {
			t.Errorf("entrypoint = %q, want [/usr/local/bin/imagetrust]", got)
		}
		if len(cf.Config.ExposedPorts) != 0 || cf.Config.User != "65532:65532" {
			t.Errorf("ports %v user %q, want none and 65532:65532", cf.Config.ExposedPorts, cf.Config.User)
		}
		files := readFiles(t, img)
		bin, ok := files["usr/local/bin/imagetrust"]
		src, _ := os.ReadFile(o.Binaries[i].Path)
		if !ok || !bytes.Equal(bin.data, src) {
			t.Errorf("usr/local/bin/imagetrust missing or not the binary; files: %v", keys(files))
		}
		if _, ok := files[BinaryPath[1:]]; ok {
			t.Errorf("the CLI image holds %s", BinaryPath)
		}
		if _, ok := files[CertsPath[1:]]; !ok {
			t.Errorf("the CLI image lacks %s (it calls the API server and providers over TLS)", CertsPath)
		}
	}
	sbom, err := SBOM(o)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(sbom, []byte(`"name": "imagetrust (linux/amd64)"`)) || bytes.Contains(sbom, []byte("imagetrust-provider")) {
		t.Errorf("CLI SBOM does not name the imagetrust binary (or names the provider)")
	}
	if _, err := ProgramNamed("operator"); err == nil {
		t.Error(`ProgramNamed("operator") = nil error`)
	}
}

// TestManifestsUseTheBuiltImages: the images the manifests run are the ones `make image`
// builds: the Makefile's IMAGE_PROGRAMS pairs the programs with their commands, the provider
// Deployment runs the provider repository, the report CronJob the CLI repository with the
// CLI's entrypoint (args only, starting with a CLI command).
func TestManifestsUseTheBuiltImages(t *testing.T) {
	mk, err := os.ReadFile(filepath.Join(repoRoot, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^IMAGE_PROGRAMS\s*\?=\s*(.*)$`).FindSubmatch(mk)
	if m == nil {
		t.Fatal("Makefile: no IMAGE_PROGRAMS")
	}
	var got, want []string
	for _, f := range strings.Fields(string(m[1])) {
		got = append(got, f)
		kind, cmd, _ := strings.Cut(f, "=")
		if _, err := os.Stat(filepath.Join(repoRoot, "provider", "cmd", cmd, "main.go")); err != nil {
			t.Errorf("IMAGE_PROGRAMS %s: no command provider/cmd/%s", kind, cmd)
		}
	}
	for k, p := range Programs() {
		want = append(want, k+"="+p.Name)
	}
	sort.Strings(got)
	sort.Strings(want)
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("Makefile IMAGE_PROGRAMS = %v, want %v (image.Programs)", got, want)
	}

	var dep appsv1.Deployment
	readYAML(t, filepath.Join(repoRoot, "manifests", "base", "deployment.yaml"), &dep)
	checkImage(t, "provider Deployment", dep.Spec.Template.Spec.Containers, Programs()[ProgramProvider])

	var cj batchv1.CronJob
	readYAML(t, filepath.Join(repoRoot, "manifests", "components", "report", "cronjob.yaml"), &cj)
	cs := cj.Spec.JobTemplate.Spec.Template.Spec.Containers
	checkImage(t, "report CronJob", cs, Programs()[ProgramCLI])
	if len(cs) == 1 && (len(cs[0].Command) != 0 || len(cs[0].Args) == 0 || cs[0].Args[0] != "report") {
		t.Errorf("report CronJob: command %q args %q; want the image's entrypoint (imagetrust) with args starting with report", cs[0].Command, cs[0].Args)
	}
}

func readYAML(t *testing.T, file string, into any) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict(b, into); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
}

func checkImage(t *testing.T, what string, cs []corev1.Container, p Program) {
	t.Helper()
	if len(cs) != 1 {
		t.Fatalf("%s: %d containers, want 1", what, len(cs))
	}
	ref, err := name.ParseReference(cs[0].Image, name.StrictValidation)
	if err != nil {
		t.Fatalf("%s: image %q: %v", what, cs[0].Image, err)
	}
	if got := ref.Context().Name(); got != p.Repository {
		t.Errorf("%s runs %s, want an image of %s (what make image builds for %s)", what, got, p.Repository, p.Name)
	}
}
