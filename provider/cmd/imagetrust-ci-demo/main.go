// Command imagetrust-ci-demo is the second step of `make demo`: imagetrust in CI. It runs the
// imagetrust binary as a pipeline would: `check` on the seed samples (finding the non-compliant
// Deployment at its lines), then `pin` on a copy of the tag-only payments-api Deployment against
// an in-memory registry standing in for registry.bank.internal (a tag-trusted mirror in the
// provider configuration), showing the diff and `pin --check` passing afterwards.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"unicode/utf8"

	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/imagetrust/imagetrust/provider/internal/demo"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "imagetrust-ci-demo:", err)
		os.Exit(1)
	}
}

// samples are the seed's demo workloads (read, not changed).
const samples = "provider/internal/demo/samples.yaml"

func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("imagetrust-ci-demo", flag.ContinueOnError)
	bin := fs.String("imagetrust", "", "the imagetrust binary (required)")
	repo := fs.String("repo", ".", "repository root")
	work := fs.String("work", "", "work directory (required)")
	width := fs.Int("width", 120, "wrap output lines at this many columns (0: print them as imagetrust writes them)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *bin == "" || *work == "" {
		return errors.New("-imagetrust and -work are required")
	}
	if err := os.MkdirAll(*work, 0o750); err != nil {
		return err
	}
	abs, err := filepath.Abs(*bin)
	if err != nil {
		return err
	}
	sh := &shell{bin: abs, dir: *repo, out: out, width: *width}

	fmt.Fprintln(out, "== imagetrust in CI: check (the admission decision on manifests) ==")
	code, err := sh.run(ctx, "check", "-f", samples,
		"--policy", "templates/base.yaml", "--policy", "templates/digest.yaml",
		"--policy", "constraints/base/bank.yaml", "--policy", "constraints/digest/production.yaml", "--rollup")
	if err != nil {
		return err
	}
	if code != 1 {
		return fmt.Errorf("check exited %d, want 1: the seed's non-compliant Deployment must be denied", code)
	}
	fmt.Fprintln(out, "exit code 1: deny findings (legacy-web: implicit registry, :latest, public registry)")

	fmt.Fprintln(out, "\n== imagetrust in CI: pin (tags to digests, nothing else changes) ==")
	reg := httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))))
	defer reg.Close()
	host := strings.TrimPrefix(reg.URL, "http://")
	for _, ref := range []string{"payments/api:2.4.1", "platform/envoy:1.30.2"} {
		img, err := random.Image(512, 1)
		if err != nil {
			return err
		}
		tag, err := name.NewTag(host + "/" + ref)
		if err != nil {
			return err
		}
		if err := remote.Write(tag, img, remote.WithContext(ctx)); err != nil {
			return fmt.Errorf("pushing %s: %w", ref, err)
		}
	}
	cfg := filepath.Join(*work, "provider.yaml")
	if err := os.WriteFile(cfg, fmt.Appendf(nil, `# registry.bank.internal, served here by an in-memory registry as a tag-trusted mirror.
server:
  tls: {certFile: unused, keyFile: unused, clientCAFile: unused}
registries:
  - host: registry.bank.internal
    mirrors:
      - {host: %q, insecure: true, trustTags: true}
`, host), 0o600); err != nil {
		return err
	}
	b, err := os.ReadFile(filepath.Join(*repo, samples))
	if err != nil {
		return err
	}
	first, _, _ := strings.Cut(string(b), "\n---\n")
	deploy := filepath.Join(*work, "payments-api.yaml")
	if err := os.WriteFile(deploy, []byte(first+"\n"), 0o600); err != nil {
		return err
	}
	for _, args := range [][]string{
		{"pin", "--check", "-f", deploy},
		{"pin", "--diff", "-f", deploy, "--provider-config", cfg},
		{"pin", "-f", deploy, "--provider-config", cfg},
		{"pin", "--check", "-f", deploy},
	} {
		code, err := sh.run(ctx, args...)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "exit code %d\n", code)
	}
	return nil
}

type shell struct {
	bin, dir string
	out      io.Writer
	width    int
}

// run runs imagetrust with args, showing the command and its output, and returns its exit code.
func (s *shell) run(ctx context.Context, args ...string) (int, error) {
	fmt.Fprintln(s.out)
	s.print("$ imagetrust "+strings.Join(args, " "), "    ")
	cmd := exec.CommandContext(ctx, s.bin, args...) //nolint:gosec // the demo runs the binary it was given
	cmd.Dir = s.dir
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	err := cmd.Run()
	for _, line := range strings.Split(strings.TrimRight(buf.String(), "\n"), "\n") {
		s.print(line, "      ")
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), nil
	}
	if err != nil {
		return 0, err
	}
	return 0, nil
}

// print writes line, wrapped at the shell's width with rest before each continuation line
// (diff and YAML lines, whose leading spaces matter, keep them on the first line).
func (s *shell) print(line, rest string) {
	if s.width <= 0 || utf8.RuneCountInString(line) <= s.width {
		fmt.Fprintln(s.out, line)
		return
	}
	indent := line[:len(line)-len(strings.TrimLeft(line, " "))]
	for _, l := range demo.Wrap(line, s.width, indent, indent+rest) {
		fmt.Fprintln(s.out, l)
	}
}
