// Command imagetrust is the imagetrust command-line tool.
//
//	imagetrust verify [-run regexp] [-v] [-trace] <path>
//
// runs Gatekeeper Suite files (the `gator verify` format) for templates that call
// external_data, answering the calls from ProviderFixtures files beside each suite.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"syscall"

	"github.com/imagetrust/imagetrust/provider/internal/suite"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, errSilent) {
			fmt.Fprintln(os.Stderr, "imagetrust:", err)
		}
		os.Exit(exitCode(err))
	}
}

// errSilent marks failures whose explanation has already been printed.
var errSilent = errors.New("failed")

// errUsage marks a command line that could not be understood (exit code 2).
var errUsage = errors.New("usage")

// usageError is what a command returns when its arguments do not parse: nil for -h (the
// usage was printed), else err marked as a usage error (exit code 2).
func usageError(err error) error {
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	return fmt.Errorf("%w: %w", errUsage, err)
}

func exitCode(err error) int {
	if errors.Is(err, errUsage) {
		return 2
	}
	var coded interface{ ExitCode() int }
	if errors.As(err, &coded) {
		return coded.ExitCode()
	}
	return 1
}

// command is one subcommand. New subcommands (check, report) are added to commands.
type command struct {
	summary string
	run     func(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error
}

var commands = map[string]command{
	"verify": {summary: "run Gatekeeper Suite files for external-data templates against provider fixtures", run: runVerify},
	"check":  {summary: "evaluate templates and constraints against manifests, as admission would (exit 1 on deny)", run: runCheck},
	"pin":    {summary: "rewrite image references in manifests to digests, changing only those bytes", run: runPin},
	"report": {summary: "audit report from constraint status, complete beyond the violations limit", run: runReport},
	"export": {summary: "turn registry allow-lists and key authorities into node policy (OpenShift, policy.json)", run: runExport},
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return fmt.Errorf("%w: no command given", errUsage)
		}
		return nil
	}
	cmd, ok := commands[args[0]]
	if !ok {
		usage(stderr)
		return fmt.Errorf("%w: unknown command %q", errUsage, args[0])
	}
	return cmd.run(ctx, args[1:], getenv, stdout, stderr)
}

func usage(w io.Writer) {
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintln(w, "usage: imagetrust <command> [flags] [args]")
	fmt.Fprintln(w, "commands:")
	for _, n := range names {
		fmt.Fprintf(w, "  %-8s %s\n", n, commands[n].summary)
	}
}

// parseInterspersed parses flags that may come before or after positional arguments, as
// gator (cobra) allows: `imagetrust verify dir -v` and `imagetrust verify -v dir`.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			// Everything after "--" is positional.
			return append(pos, rest...), nil
		}
		// Parse stopped at a positional argument: keep it and parse what follows.
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

func runVerify(ctx context.Context, args []string, _ func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("imagetrust verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var opts suite.Options
	fs.StringVar(&opts.Run, "run", "", "regular expression which filters tests to run by name (gator syntax: test//case)")
	fs.StringVar(&opts.Run, "r", "", "shorthand for -run")
	fs.BoolVar(&opts.Verbose, "v", false, "print extended test output")
	fs.BoolVar(&opts.Verbose, "verbose", false, "print extended test output")
	fs.BoolVar(&opts.Trace, "trace", false, "include a trace of the Rego evaluation")
	fs.BoolVar(&opts.Trace, "t", false, "shorthand for -trace")
	fs.BoolVar(&opts.K8sNativeValidation, "enable-k8s-native-validation", true, "also load the K8sNativeValidation (CEL) driver, as gator does")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: imagetrust verify [-run regexp] [-v] [-trace] <suite file | dir | dir/...>")
		fmt.Fprintln(stderr, "Runs Gatekeeper Suite files; external_data calls are answered from")
		fmt.Fprintln(stderr, "ProviderFixtures files (kind: ProviderFixtures) in each suite's directory.")
		fs.PrintDefaults()
	}
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return usageError(err)
	}
	if len(pos) != 1 {
		fs.Usage()
		return fmt.Errorf("%w: verify takes exactly one path, got %d", errUsage, len(pos))
	}
	err = suite.RunPath(ctx, pos[0], opts, stdout)
	if errors.Is(err, suite.ErrFailed) {
		return errSilent
	}
	return err
}
