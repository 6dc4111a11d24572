// Command imagetrust-demo (`make demo`) shows what imagetrust does at admission, on embedded
// defaults: an in-memory registry with signed and unsigned sample images, the real provider
// over mTLS, Gatekeeper's mutation system and constraint framework with templates/ and
// constraints/, and a table of decisions for sample workloads that fits 120 columns (-wide: one
// line per container).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/imagetrust/imagetrust/provider/internal/demo"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args, os.Getenv, os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintf(os.Stderr, "imagetrust-demo: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) (err error) {
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	repo := fs.String("repo", ".", "repository root (templates/, constraints/, manifests/ are read from it)")
	workDir := fs.String("workdir", "", "directory for the generated PKI, key and provider config (default: a temporary directory, removed at exit)")
	providerLog := fs.String("provider-log", "", "write the provider's JSON log lines to this file")
	timeout := fs.Duration("timeout", 2*time.Minute, "give up after this long")
	wide := fs.Bool("wide", false, fmt.Sprintf("print one line per container with its reasons beside it (wider than %d columns)", demo.Width))
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: %s [flags]\n\nRuns the imagetrust admission pipeline on sample workloads and prints the decisions.\n\nFlags:\n", fs.Name())
		fs.PrintDefaults()
	}
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *timeout <= 0 {
		return fmt.Errorf("-timeout %v must be positive", *timeout)
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()

	dir := *workDir
	if dir == "" {
		tmp, err := os.MkdirTemp(getenv("TMPDIR"), "imagetrust-demo-")
		if err != nil {
			return err
		}
		defer func() {
			if rerr := os.RemoveAll(tmp); rerr != nil && err == nil {
				err = rerr
			}
		}()
		dir = tmp
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	opts := demo.Options{RepoDir: *repo, WorkDir: dir}
	if *providerLog != "" {
		f, err := os.Create(*providerLog)
		if err != nil {
			return err
		}
		defer func() {
			if cerr := f.Close(); cerr != nil && err == nil {
				err = cerr
			}
		}()
		opts.ProviderLog = f
	}
	rep, err := demo.Run(ctx, opts)
	if err != nil {
		return err
	}
	if err := demo.PrintHeader(stdout, rep); err != nil {
		return err
	}
	if *wide {
		return demo.PrintTable(stdout, rep)
	}
	return demo.PrintCompact(stdout, rep, demo.Width)
}
