package imageref_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/distribution/reference"

	"github.com/imagetrust/imagetrust/provider/internal/imageref"
)

const dg = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestParse(t *testing.T) {
	tests := []struct {
		in                        string
		domain, path, tag, digest string
		normalized, pull, pinned  string
	}{
		{"nginx", "docker.io", "library/nginx", "", "", "docker.io/library/nginx:latest", "docker.io/library/nginx:latest", "nginx@" + dg},
		{"nginx:1.25", "docker.io", "library/nginx", "1.25", "", "docker.io/library/nginx:1.25", "docker.io/library/nginx:1.25", "nginx:1.25@" + dg},
		{"ghcr.io/a/b:v1@" + dg, "ghcr.io", "a/b", "v1", dg, "ghcr.io/a/b:v1@" + dg, "ghcr.io/a/b@" + dg, "ghcr.io/a/b:v1@" + dg},
		{"localhost:5000/x@" + dg, "localhost:5000", "x", "", dg, "localhost:5000/x@" + dg, "localhost:5000/x@" + dg, "localhost:5000/x@" + dg},
		{"Registry.Example:443/team/app:V1", "Registry.Example:443", "team/app", "V1", "", "Registry.Example:443/team/app:V1", "Registry.Example:443/team/app:V1", "Registry.Example:443/team/app:V1@" + dg},
		{"docker.io/library/busybox", "docker.io", "library/busybox", "", "", "docker.io/library/busybox:latest", "docker.io/library/busybox:latest", "docker.io/library/busybox@" + dg},
	}
	for _, tt := range tests {
		r, err := imageref.Parse(tt.in)
		if err != nil {
			t.Errorf("Parse(%q) = %v", tt.in, err)
			continue
		}
		got := []string{r.Domain, r.Path, r.Tag, r.Digest, r.Normalized(), r.Pull(), r.Pinned(dg), r.PrefixedNormalized("scan\x00")}
		want := []string{tt.domain, tt.path, tt.tag, tt.digest, tt.normalized, tt.pull, tt.pinned, "scan\x00" + tt.normalized}
		for i := range got {
			if got[i] != want[i] {
				t.Errorf("Parse(%q) field %d = %q, want %q", tt.in, i, got[i], want[i])
			}
		}
	}
}

func TestParseInvalid(t *testing.T) {
	for _, in := range []string{"", "NGINX", "docker://rust:1", "nginx:", "nginx@sha256:abc", " nginx", "nginx ", "a/b:c:d",
		"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", strings.Repeat("a", 600)} {
		_, err := imageref.Parse(in)
		var ie *imageref.InvalidError
		if !errors.As(err, &ie) || !strings.HasPrefix(err.Error(), "invalid reference: ") {
			t.Errorf("Parse(%q) = %v, want *InvalidError starting \"invalid reference: \"", in, err)
		}
	}
}

// FuzzParse checks Parse against the oracle: it accepts exactly what ParseDockerRef accepts, and
// its pull reference is what ParseDockerRef says the runtime pulls.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"nginx", "nginx:1.25", "ghcr.io/a/b:v1@" + dg, "localhost:5000/x", "docker://rust:1", "NGINX", "a/b@sha256:00", "[::1]:5000/a:b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := imageref.Parse(s)
		named, oerr := reference.ParseDockerRef(s)
		if len(s) > 512 {
			if err == nil {
				t.Fatalf("Parse(%d bytes) = nil error, want too long", len(s))
			}
			return
		}
		if (err == nil) != (oerr == nil) {
			t.Fatalf("Parse(%q) err = %v, ParseDockerRef err = %v", s, err, oerr)
		}
		if err != nil {
			return
		}
		if got, want := r.Pull(), named.String(); got != want {
			t.Fatalf("Parse(%q).Pull() = %q, ParseDockerRef = %q", s, got, want)
		}
		if r.Digest != "" && r.Pinned("sha256:x") != s {
			t.Fatalf("Parse(%q).Pinned() = %q, want the reference unchanged", s, r.Pinned("sha256:x"))
		}
		r2, err := imageref.Parse(r.Normalized())
		if err != nil || r2.Normalized() != r.Normalized() {
			t.Fatalf("Parse(Normalized(%q) = %q) = %v, %v: not a fixed point", s, r.Normalized(), r2.Normalized(), err)
		}
	})
}

func BenchmarkParse(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		r, _ := imageref.Parse("registry.example:5000/team/app:v1.2.3")
		_ = r.Pull()
	}
}

func TestMemo(t *testing.T) {
	m := imageref.NewMemo(4)
	for range 3 {
		for _, s := range []string{"nginx:1", "a/b", "NGINX", "ghcr.io/x/y:z", "busybox"} {
			got, err := m.Parse(s)
			want, werr := imageref.Parse(s)
			if got != want || (err == nil) != (werr == nil) || (err != nil && err.Error() != werr.Error()) {
				t.Errorf("Memo.Parse(%q) = %+v, %v, want %+v, %v", s, got, err, want, werr)
			}
		}
	}
}

func BenchmarkMemoParse(b *testing.B) {
	m := imageref.NewMemo(0)
	b.ReportAllocs()
	for b.Loop() {
		r, _ := m.Parse("registry.example:5000/team/app:v1.2.3")
		_ = r.Pull()
	}
}

// TestRealReferences: on 3,265 references from public manifests, Parse accepts exactly what
// ParseDockerRef accepts and pulls what it says the runtime pulls.
func TestRealReferences(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "..", "shared", "data", "real-image-refs.txt"))
	if err != nil {
		b, err = os.ReadFile(filepath.Join("..", "policy", "testdata", "real-image-refs.txt"))
	}
	if err != nil {
		t.Skipf("corpus not available: %v", err)
	}
	n := 0
	for line := range strings.Lines(string(b)) {
		s := strings.TrimRight(line, "\n")
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		n++
		r, err := imageref.Parse(s)
		named, oerr := reference.ParseDockerRef(s)
		if (err == nil) != (oerr == nil) {
			t.Errorf("Parse(%q) err = %v, ParseDockerRef err = %v", s, err, oerr)
			continue
		}
		if err == nil && r.Pull() != named.String() {
			t.Errorf("Parse(%q).Pull() = %q, ParseDockerRef = %q", s, r.Pull(), named.String())
		}
	}
	if n < 3000 {
		t.Errorf("read %d references, want the whole corpus (3265)", n)
	}
}
