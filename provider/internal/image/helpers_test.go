package image

import (
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// testCreated is the creation time of the test builds (a SOURCE_DATE_EPOCH).
var testCreated = time.Unix(1767225600, 0).UTC() // 2026-01-01T00:00:00Z

var (
	helloOnce sync.Once
	helloDir  string
	helloErr  error
)

// buildHello builds testdata/hello statically (CGO off, -trimpath) for linux/amd64 and linux/arm64
// into dir, as `make image` builds the provider, and returns the binaries.
func buildHello(t testing.TB, dir string) []Binary {
	t.Helper()
	var out []Binary
	for _, arch := range []string{"amd64", "arm64"} {
		p := filepath.Join(dir, "hello-"+arch)
		cmd := exec.Command("go", "build", "-trimpath", "-o", p, "./testdata/hello")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch, "GOFLAGS=-buildvcs=false")
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build testdata/hello for %s: %v\n%s", arch, err, b)
		}
		out = append(out, Binary{Platform: v1.Platform{OS: "linux", Architecture: arch}, Path: p})
	}
	return out
}

// hello returns the binaries of one shared build of testdata/hello.
func hello(t testing.TB) []Binary {
	t.Helper()
	helloOnce.Do(func() {
		helloDir, helloErr = os.MkdirTemp("", "imagetrust-image-test-")
	})
	if helloErr != nil {
		t.Fatal(helloErr)
	}
	bins := []Binary{
		{Platform: v1.Platform{OS: "linux", Architecture: "amd64"}, Path: filepath.Join(helloDir, "hello-amd64")},
		{Platform: v1.Platform{OS: "linux", Architecture: "arm64"}, Path: filepath.Join(helloDir, "hello-arm64")},
	}
	if _, err := os.Stat(bins[1].Path); err != nil {
		return buildHello(t, helloDir)
	}
	return bins
}

func testOptions(t testing.TB) Options {
	return Options{
		Binaries: hello(t),
		Source:   "https://github.com/imagetrust/imagetrust",
		Version:  "v0.1.0-test",
		Revision: "0123456789abcdef0123456789abcdef01234567",
		Created:  testCreated,
	}
}

func TestMain(m *testing.M) {
	code := m.Run()
	if helloDir != "" {
		_ = os.RemoveAll(helloDir)
	}
	os.Exit(code)
}
