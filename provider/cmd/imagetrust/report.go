package main

import (
	"context"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"github.com/google/go-containerregistry/pkg/authn"
	"k8s.io/client-go/kubernetes"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/imagetrust/imagetrust/provider/internal/report"
)

const reportUsage = `usage: imagetrust report [flags]

Reads Gatekeeper's audit results (constraint and template status) and prints a report:
evidence header, summary, constraints, rollups by namespace and image, worst offenders,
health checks and every violation. Connection flags follow kubectl (--kubeconfig, --context,
$KUBECONFIG, in-cluster service account).

With --complete, constraints whose totalViolations exceed the violations Gatekeeper stored
(--constraint-violations-limit) are re-evaluated in-process against the objects they match,
with the cluster's templates and constraints; rows say whether they came from status or
re-evaluation and count mismatches are reported. Templates that call external_data need a
provider: the cluster's Provider objects as they are (in-cluster), --provider-url with a
client certificate (mTLS), or --provider-config to run the provider in this process.

Formats (--format): table, json, csv, markdown, html, openreports (openreports.io/v1alpha1
Report/ClusterReport), policyreport (wgpolicyk8s.io/v1alpha2). With --apply, the openreports or
policyreport objects are written to the cluster instead of printed.
`

type reportFlags struct {
	connect        report.ConnectOptions
	format, output string
	allConstraints bool
	complete       bool
	workers        int
	facts          bool
	apply          bool
	diff           string
	auditInterval  time.Duration
	gkNamespace    string
	providerURL    string
	providerCA     string
	providerCert   string
	providerKey    string
	providerConfig string
	verbose        bool
}

func runReport(ctx context.Context, args []string, _ func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("imagetrust report", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f reportFlags
	fs.StringVar(&f.connect.Kubeconfig, "kubeconfig", "", "kubeconfig file (default $KUBECONFIG, ~/.kube/config, then in-cluster)")
	fs.StringVar(&f.connect.Context, "context", "", "kubeconfig context (default the current context)")
	fs.StringVar(&f.format, "format", report.FormatTable, "output format: "+strings.Join(report.Formats, ", "))
	fs.StringVar(&f.format, "o", report.FormatTable, "shorthand for --format")
	fs.StringVar(&f.output, "output-file", "", "write the report to this file instead of standard output")
	fs.BoolVar(&f.allConstraints, "all-constraints", false, "report the constraints of every Gatekeeper template, not only imagetrust's")
	fs.BoolVar(&f.complete, "complete", false, "re-evaluate constraints whose status dropped violations, and list every violation")
	fs.IntVar(&f.workers, "workers", 0, "concurrent re-evaluations (default the number of CPUs)")
	fs.BoolVar(&f.facts, "facts", true, "with a provider (--provider-url or --provider-config), add digest, signature and scan state to the image rollup")
	fs.BoolVar(&f.apply, "apply", false, "write the openreports or policyreport objects to the cluster (server-side apply) and delete stale ones")
	fs.StringVar(&f.diff, "diff", "", "an earlier JSON report: show what is new and what was fixed since")
	fs.DurationVar(&f.auditInterval, "audit-interval", 60*time.Second, "Gatekeeper's --audit-interval; audits older than twice this are reported stale")
	fs.StringVar(&f.gkNamespace, "gatekeeper-namespace", "gatekeeper-system", "namespace of Gatekeeper (its Config and Deployments)")
	fs.StringVar(&f.providerURL, "provider-url", "", "scheme://host:port replacing the host of every Provider URL (path kept), e.g. a port-forward")
	fs.StringVar(&f.providerCA, "provider-ca", "", "PEM file of the CA that signed the provider's certificate (default the Providers' caBundle)")
	fs.StringVar(&f.providerCert, "provider-cert", "", "client certificate (PEM) presented to the provider")
	fs.StringVar(&f.providerKey, "provider-key", "", "client key (PEM) for --provider-cert")
	fs.StringVar(&f.providerConfig, "provider-config", "", "run the provider in this process with this configuration file")
	fs.BoolVar(&f.verbose, "v", false, "log progress and the in-process provider's lines to standard error")
	fs.Usage = func() {
		fmt.Fprint(stderr, reportUsage)
		fs.PrintDefaults()
	}
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return usageError(err)
	}
	if len(pos) > 0 {
		fs.Usage()
		return fmt.Errorf("%w: report takes no arguments, got %q", errUsage, pos)
	}
	if err := f.validate(); err != nil {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	return f.run(ctx, stdout, stderr)
}

func (f *reportFlags) validate() error {
	known := false
	for _, n := range report.Formats {
		known = known || n == f.format
	}
	if !known {
		return &report.UnknownFormatError{Format: f.format}
	}
	if f.apply && f.format != report.FormatOpenReports && f.format != report.FormatPolicyRep {
		return fmt.Errorf("--apply writes openreports or policyreport objects: use --format openreports or --format policyreport (got %q)", f.format)
	}
	if f.providerURL != "" && f.providerConfig != "" {
		return errors.New("--provider-url and --provider-config are exclusive")
	}
	if (f.providerCert == "") != (f.providerKey == "") {
		return errors.New("--provider-cert and --provider-key go together")
	}
	if f.auditInterval <= 0 {
		return fmt.Errorf("--audit-interval must be positive, got %v", f.auditInterval)
	}
	return nil
}

func (f *reportFlags) run(ctx context.Context, stdout, stderr io.Writer) error {
	logw := io.Discard
	if f.verbose {
		logw = stderr
	}
	lg := slog.New(slog.NewTextHandler(logw, nil))
	// controller-runtime's certificate watcher (the provider client certificate) logs through
	// its global logger, which prints a stack trace when unset.
	ctrllog.SetLogger(logr.FromSlogHandler(lg.Handler()))
	start := time.Now()
	cl, err := report.Connect(f.connect)
	if err != nil {
		return err
	}
	rep, in, err := report.Collect(ctx, cl, report.CollectOptions{
		AllConstraints: f.allConstraints, GatekeeperNamespace: f.gkNamespace, AuditInterval: f.auditInterval,
	})
	if err != nil {
		return err
	}
	lg.Info("read status", "templates", len(rep.Templates), "constraints", len(rep.Constraints), "rows", len(rep.Violations), "elapsed", time.Since(start))

	ed, withProvider, stop, err := f.externalData(ctx, cl, lg)
	if err != nil {
		return err
	}
	defer stop()

	if f.complete {
		cstart := time.Now()
		if cl.Excluded, err = report.AuditExclusions(ctx, cl, f.gkNamespace); err != nil {
			return err
		}
		ev, err := report.NewEvaluator(ctx, in, ed)
		if err != nil {
			return fmt.Errorf("--complete: %w", err)
		}
		if err := report.Complete(ctx, rep, report.CompleteOptions{Reviewer: ev, Objects: cl, Workers: f.workers}); err != nil {
			return fmt.Errorf("--complete: %w", err)
		}
		lg.Info("re-evaluated", "rows", len(rep.Violations), "elapsed", time.Since(cstart))
	}
	report.Finish(rep, report.HealthOptions{AuditInterval: f.auditInterval})
	if withProvider && f.facts {
		if err := report.Facts(ctx, rep, in, ed); err != nil {
			return fmt.Errorf("provider facts: %w", err)
		}
	}
	if f.diff != "" {
		old, err := report.ReadJSON(f.diff)
		if err != nil {
			return fmt.Errorf("--diff: %w", err)
		}
		report.Compare(rep, old, f.diff)
	}
	if f.apply {
		flavour := report.OpenReports
		if f.format == report.FormatPolicyRep {
			flavour = report.WGPolicy
		}
		objs, err := report.PolicyReports(rep, flavour)
		if err != nil {
			return err
		}
		res, err := report.Apply(ctx, cl, flavour, objs)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "applied %d %s/%s reports (%d results), deleted %d stale\n", len(res.Applied), flavour.Group, flavour.Version, len(rep.Violations), len(res.Deleted))
		for _, a := range res.Applied {
			fmt.Fprintln(stdout, "  applied", a)
		}
		for _, d := range res.Deleted {
			fmt.Fprintln(stdout, "  deleted", d)
		}
		return nil
	}
	return f.write(rep, stdout)
}

func (f *reportFlags) write(rep *report.Report, stdout io.Writer) (err error) {
	if f.output == "" {
		return report.Write(stdout, rep, f.format)
	}
	out, err := os.Create(f.output)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := out.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	return report.Write(out, rep, f.format)
}

// externalData decides where external_data calls and provider facts go.
func (f *reportFlags) externalData(ctx context.Context, cl *report.Cluster, lg *slog.Logger) (report.ExternalData, bool, func(), error) {
	ed := report.ExternalData{ProviderURL: f.providerURL, CertFile: f.providerCert, KeyFile: f.providerKey}
	if f.providerCA != "" {
		b, err := os.ReadFile(f.providerCA)
		if err != nil {
			return ed, false, func() {}, fmt.Errorf("--provider-ca: %w", err)
		}
		ed.CABundle = base64.StdEncoding.EncodeToString(b)
	}
	if f.providerConfig == "" {
		return ed, f.providerURL != "" || f.providerCert != "", func() {}, nil
	}
	dir, err := os.MkdirTemp("", "imagetrust-report-")
	if err != nil {
		return ed, false, func() {}, err
	}
	kc, err := kubernetes.NewForConfig(cl.Config)
	if err != nil {
		_ = os.RemoveAll(dir)
		return ed, false, func() {}, err
	}
	p, err := report.StartProvider(ctx, report.InProcessOptions{ConfigFile: f.providerConfig, Dir: filepath.Clean(dir), Logger: lg, Kubernetes: kc, Keychain: authn.DefaultKeychain})
	if err != nil {
		_ = os.RemoveAll(dir)
		return ed, false, func() {}, fmt.Errorf("--provider-config %s: %w", f.providerConfig, err)
	}
	return p.ExternalData, true, func() {
		if err := p.Stop(); err != nil {
			lg.Warn("stopping the in-process provider", "err", err)
		}
		_ = os.RemoveAll(dir)
	}, nil
}
