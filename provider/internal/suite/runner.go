// Package suite runs Gatekeeper test suites (test.gatekeeper.sh/v1alpha1 Suite files, the
// format of `gator verify`) for templates that call external_data. It uses gatekeeper's own
// pkg/gator/verify runner and injects an external-data provider cache whose providers are
// served, over real HTTPS, from ProviderFixtures files beside each suite.
//
// gator itself cannot do this: it never registers the external_data builtin (Gatekeeper
// issue #2826).
package suite

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	constraintclient "github.com/open-policy-agent/frameworks/constraint/pkg/client"
	"github.com/open-policy-agent/frameworks/constraint/pkg/client/drivers/rego"
	"github.com/open-policy-agent/frameworks/constraint/pkg/client/reviews"
	"github.com/open-policy-agent/frameworks/constraint/pkg/externaldata"
	"github.com/open-policy-agent/frameworks/constraint/pkg/types"
	"github.com/open-policy-agent/gatekeeper/v3/pkg/gator"
	"github.com/open-policy-agent/gatekeeper/v3/pkg/gator/verify"
)

// ErrFailed means at least one suite, test or case failed. The printed output says which.
var ErrFailed = errors.New("FAIL")

// Options are the knobs of `imagetrust verify`, named as in `gator verify`.
type Options struct {
	// Run filters tests and cases by name (gator's --run syntax: "test//case", regexps).
	Run string
	// Verbose prints every test and case, as gator's -v.
	Verbose bool
	// Trace includes the Rego evaluation trace of each case.
	Trace bool
	// K8sNativeValidation adds the K8sNativeValidation (CEL) driver, as gator does by default.
	K8sNativeValidation bool
}

// Result is the outcome of a run.
type Result struct {
	Suites []verify.SuiteResult
	// Requests counts the external-data requests the fixture server answered.
	Requests int
}

// Failed reports whether any suite, test or case failed.
func (r *Result) Failed() bool {
	for i := range r.Suites {
		if r.Suites[i].IsFailure() {
			return true
		}
	}
	return false
}

// RunPath runs the suites at p as `gator verify p` would: p is a Suite file, a directory
// (its Suite files, not subdirectories) or "dir/..." (recursively). Output goes to w in
// gator's format. It returns ErrFailed if anything failed.
func RunPath(ctx context.Context, p string, opts Options, w io.Writer) error {
	original := p
	recursive := strings.HasSuffix(original, "/...")
	if recursive {
		original = strings.TrimSuffix(original, "...")
		p = strings.TrimSuffix(p, "...")
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return fmt.Errorf("resolving %s: %w", p, err)
	}
	// Read below the working directory when the target is there, so that paths in
	// messages (fixture files) are relative like the ones the user typed; else below the
	// file system root, as gator does.
	root := filepath.VolumeName(abs) + string(filepath.Separator)
	target := strings.TrimPrefix(abs, root)
	if cwd, err := os.Getwd(); err == nil {
		if rel, err := filepath.Rel(cwd, abs); err == nil && rel != "." && !strings.HasPrefix(rel, "..") {
			root, target = cwd, rel
		}
	}
	target = strings.Trim(filepath.ToSlash(target), "/")
	res, err := Run(ctx, os.DirFS(root), target, original, recursive, opts)
	if err != nil {
		return err
	}
	return Print(w, res, opts.Verbose)
}

// Print writes the results in gator's format and returns ErrFailed if anything failed.
func Print(w io.Writer, res *Result, verbose bool) error {
	var sb strings.Builder
	if err := (verify.PrinterGo{}).Print(&sb, res.Suites, verbose); err != nil {
		return fmt.Errorf("printing results: %w", err)
	}
	if _, err := io.WriteString(w, sb.String()); err != nil {
		return fmt.Errorf("writing results: %w", err)
	}
	if res.Failed() {
		return ErrFailed
	}
	return nil
}

// Run reads the suites at target inside fsys (see verify.ReadSuites; display is the path as
// the user wrote it) and runs each with the provider fixtures of its directory. The error
// is only for problems before any suite ran (unreadable target, bad filter); per-suite
// problems, including unusable fixture files, are suite errors in the Result.
//
// Run creates frameworks rego drivers: external_data is registered process-wide, so Run
// must not be called concurrently with anything else that creates one.
func Run(ctx context.Context, fsys fs.FS, target, display string, recursive bool, opts Options) (*Result, error) {
	suites, err := verify.ReadSuites(fsys, target, display, recursive)
	if err != nil {
		return nil, fmt.Errorf("listing test files: %w", err)
	}
	filter, err := verify.NewFilter(opts.Run)
	if err != nil {
		return nil, fmt.Errorf("compiling filter: %w", err)
	}

	srv := newFixtureServer()
	defer srv.Close()
	// One provider cache for the whole run: every driver the runner creates registers the
	// process-global external_data builtin, and all of them must see the same providers.
	// No response cache is configured, so every review reaches the fixture server.
	pc := externaldata.NewCache()
	withExternalData := func() ([]constraintclient.Opt, []rego.Arg, error) {
		return nil, []rego.Arg{rego.AddExternalDataProviderCache(pc)}, nil
	}
	runner, err := verify.NewRunner(fsys, func(gopts ...gator.Opt) (gator.Client, error) {
		gopts = append(gopts, withExternalData)
		if opts.K8sNativeValidation {
			gopts = append(gopts, gator.WithK8sCEL())
		}
		c, err := gator.NewOPAClient(opts.Trace, gopts...)
		if err != nil {
			return nil, err
		}
		return &recordingClient{Client: c, srv: srv}, nil
	}, verify.IncludeTrace(opts.Trace))
	if err != nil {
		return nil, fmt.Errorf("creating runner: %w", err)
	}

	res := &Result{}
	sets := map[string]*providerSet{}
	var registered []string
	for _, s := range suites {
		dir := path.Dir(s.AbsolutePath)
		set, ok := sets[dir]
		if !ok {
			set, err = loadFixtures(fsys, dir)
			if err != nil {
				res.Suites = append(res.Suites, verify.SuiteResult{Path: s.InputPath, Error: err})
				continue
			}
			sets[dir] = set
		}
		registered, err = syncProviders(pc, srv, registered, set)
		if err != nil {
			res.Suites = append(res.Suites, verify.SuiteResult{Path: s.InputPath, Error: err})
			continue
		}
		srv.use(set)
		res.Suites = append(res.Suites, runner.Run(ctx, filter, s))
	}
	srv.mu.Lock()
	res.Requests = srv.requests
	srv.mu.Unlock()
	return res, nil
}

// syncProviders makes the provider cache hold exactly the providers of set.
func syncProviders(pc *externaldata.ProviderCache, srv *fixtureServer, registered []string, set *providerSet) ([]string, error) {
	for _, name := range registered {
		pc.Remove(name)
	}
	names := set.names()
	for _, name := range names {
		if err := pc.Upsert(srv.provider(name)); err != nil {
			return nil, fmt.Errorf("registering provider %q: %w", name, err)
		}
	}
	return names, nil
}

// recordingClient fails a review that asked the fixture server for a key no fixture answers.
// The runner reviews one case at a time, so the recording is per case.
type recordingClient struct {
	gator.Client
	srv *fixtureServer
}

func (c *recordingClient) Review(ctx context.Context, obj any, opts ...reviews.ReviewOpt) (*types.Responses, error) {
	c.srv.beginReview()
	resp, err := c.Client.Review(ctx, obj, opts...)
	if missing := c.srv.endReview(); missing != nil {
		return nil, missing
	}
	return resp, err
}
