// Command templategen renders templates/*.yaml from the Rego library:
//
//	go run ./provider/cmd/templategen -library library -out templates \
//	    [-docs docs/templates -constraints constraints] [-check]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"

	"github.com/imagetrust/imagetrust/provider/internal/templategen"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args, os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "templategen:", err)
		stop()
		os.Exit(1)
	}
}

var errStale = errors.New("generated files are stale: run 'make generate' and commit")

func run(_ context.Context, args []string, _ func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("templategen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	library := fs.String("library", "library", "Rego library folder (lib/ plus one folder per template)")
	out := fs.String("out", "templates", "output folder for the ConstraintTemplates")
	docs := fs.String("docs", "", "output folder for the template pages (none when empty)")
	constraints := fs.String("constraints", "", "constraints folder whose examples the pages show")
	check := fs.Bool("check", false, "write nothing; fail when an output folder is stale")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	dirs := templategen.Dirs{Library: *library, Templates: *out, Docs: *docs, Constraints: *constraints}
	if *check {
		stale, err := templategen.Stale(dirs)
		if err != nil {
			return err
		}
		if len(stale) > 0 {
			return fmt.Errorf("%w: %s", errStale, strings.Join(stale, ", "))
		}
		return nil
	}
	written, err := templategen.Generate(dirs)
	if err != nil {
		return err
	}
	for _, p := range written {
		fmt.Fprintln(stdout, "wrote", p)
	}
	return nil
}
