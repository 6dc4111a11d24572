package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/imagetrust/imagetrust/provider/internal/check"
)

// Exit codes of check and pin (besides 2, usage).
const (
	exitFindings   = 1 // deny violations (check), unpinned or drifted references (pin --check/--verify)
	exitIncomplete = 3 // the check could not be completed: provider or registry failure
)

// exitError carries a command's exit code; main reads it through ExitCode.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// ExitCode is the process exit code.
func (e *exitError) ExitCode() int { return e.code }

// stringList is a repeatable flag.
type stringList []string

func (s *stringList) String() string { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error {
	*s = append(*s, v)
	return nil
}

func runCheck(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return checkCmd{stdin: os.Stdin}.run(ctx, args, getenv, stdout, stderr)
}

type checkCmd struct {
	stdin io.Reader
}

func (c checkCmd) run(ctx context.Context, args []string, _ func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("imagetrust check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var inputs, kustomizations, policy stringList
	fs.Var(&inputs, "f", "manifest file, directory (recursive: *.yaml, *.yml, *.json; rendered with kustomize when it holds a kustomization.yaml) or - for stdin; repeatable")
	fs.Var(&kustomizations, "k", "kustomization directory, rendered in-process (as kubectl apply -k); repeatable")
	fs.Var(&policy, "policy", "ConstraintTemplate and Constraint file or directory; repeatable (default: ./templates and ./constraints)")
	providerConfig := fs.String("provider-config", "", "run the provider in-process with this configuration file (live registry lookups)")
	providerURL := fs.String("provider-url", "", "call a running provider at this https:// base URL")
	var ct check.ClientTLS
	fs.StringVar(&ct.CertFile, "provider-cert", "", "client certificate for --provider-url (mTLS)")
	fs.StringVar(&ct.KeyFile, "provider-key", "", "client key for --provider-url (mTLS)")
	fs.StringVar(&ct.CAFile, "provider-ca", "", "CA of the provider's serving certificate for --provider-url")
	fixtures := fs.String("provider-fixtures", "", "answer external_data from the ProviderFixtures files in this directory (offline)")
	record := fs.String("record", "", "write the live provider's answers as ProviderFixtures into this directory")
	timeout := fs.Duration("provider-timeout", 10*time.Second, "timeout of one provider call")
	format := fs.String("o", "text", "output format: "+strings.Join(check.Formats, ", "))
	rollup := fs.Bool("rollup", false, "text output: add the per-image rollup (image, findings, objects using it)")
	namespace := fs.String("namespace", "default", "namespace of workloads that set none (as kubectl apply -n)")
	onFailure := fs.String("provider-failure", "fail", "when a provider or registry failure leaves answers unknown: fail (exit 3) or warn (report and exit on the findings)")
	failOnWarn := fs.Bool("fail-on-warn", false, "exit 1 on warn and dryrun findings too")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: imagetrust check -f FILE|DIR|- [-f …] [-k KUSTOMIZATION-DIR …] [--policy DIR …] [--provider-config FILE | --provider-url URL | --provider-fixtures DIR] [-o text|json|sarif|junit|github]")
		fmt.Fprintln(stderr, "Evaluates Gatekeeper ConstraintTemplates and Constraints against manifests as admission would.")
		fmt.Fprintln(stderr, "Exit codes: 0 no deny, 1 deny findings, 2 usage, 3 the check could not be completed.")
		fs.PrintDefaults()
	}
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return usageError(err)
	}
	inputs = append(inputs, pos...)
	if len(inputs)+len(kustomizations) == 0 {
		fs.Usage()
		return fmt.Errorf("%w: check needs manifests: -f FILE|DIR|- or -k DIR", errUsage)
	}
	modes := 0
	for _, m := range []string{*providerConfig, *providerURL, *fixtures} {
		if m != "" {
			modes++
		}
	}
	if modes > 1 {
		return fmt.Errorf("%w: --provider-config, --provider-url and --provider-fixtures exclude each other", errUsage)
	}
	if *record != "" && *providerConfig == "" && *providerURL == "" {
		return fmt.Errorf("%w: --record needs a live provider (--provider-config or --provider-url)", errUsage)
	}
	if *onFailure != "fail" && *onFailure != "warn" {
		return fmt.Errorf("%w: --provider-failure %q: want fail or warn", errUsage, *onFailure)
	}
	if !validFormat(*format) {
		return fmt.Errorf("%w: -o %q: want one of %s", errUsage, *format, strings.Join(check.Formats, ", "))
	}
	if len(policy) == 0 {
		for _, d := range []string{"templates", "constraints"} {
			if st, err := os.Stat(d); err == nil && st.IsDir() {
				policy = append(policy, d)
			}
		}
	}

	pol, err := check.LoadPolicy(policy)
	if err != nil {
		return incomplete(err)
	}
	objs, err := check.LoadInputs(inputs, kustomizations, c.stdin)
	if err != nil {
		return incomplete(err)
	}

	var prov *check.Providers
	switch {
	case *fixtures != "":
		prov, err = check.FixtureProviders(*fixtures)
	case *providerURL != "":
		prov, err = check.URLProviders(*providerURL, ct, *timeout)
	case *providerConfig != "":
		dir, derr := os.MkdirTemp("", "imagetrust-check-")
		if derr != nil {
			return incomplete(derr)
		}
		defer func() { _ = os.RemoveAll(dir) }()
		prov, err = check.InProcessProviders(ctx, check.InProcessOptions{ConfigFile: *providerConfig, WorkDir: dir, Timeout: *timeout, Keychain: authn.DefaultKeychain})
	}
	if err != nil {
		return incomplete(err)
	}
	if prov != nil {
		defer func() { _ = prov.Close() }()
	}

	rep, runErr := check.Run(ctx, check.Options{Policy: pol, Objects: objs, Providers: prov, Review: check.ReviewOptions{DefaultNamespace: *namespace}})
	if rep == nil {
		return incomplete(runErr)
	}
	if err := check.WriteReport(stdout, rep, check.WriteOptions{Format: *format, Rollup: *rollup}); err != nil {
		return incomplete(err)
	}
	if runErr != nil && *onFailure == "fail" {
		fmt.Fprintln(stderr, "imagetrust check:", runErr)
		return &exitError{code: exitIncomplete, err: errSilent}
	}
	if runErr != nil {
		fmt.Fprintln(stderr, "imagetrust check: warning (--provider-failure=warn):", runErr)
	} else if *record != "" {
		file, err := prov.Record(*record)
		if err != nil {
			return incomplete(err)
		}
		fmt.Fprintln(stderr, "imagetrust check: recorded provider answers in", file)
	}
	// An incomplete result counts as a deny: admission would deny what it cannot decide.
	if rep.Summary.Deny+rep.Summary.Incomplete > 0 || (*failOnWarn && rep.Summary.Warn+rep.Summary.DryRun > 0) {
		return &exitError{code: exitFindings, err: errSilent}
	}
	return nil
}

// incomplete is a failure that stopped the check (bad input, a provider that would not start).
func incomplete(err error) error { return &exitError{code: exitIncomplete, err: err} }

func validFormat(f string) bool {
	for _, x := range check.Formats {
		if f == x {
			return true
		}
	}
	return false
}
