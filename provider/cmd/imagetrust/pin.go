package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/imagetrust/imagetrust/provider/internal/config"
	"github.com/imagetrust/imagetrust/provider/internal/manifests"
	"github.com/imagetrust/imagetrust/provider/internal/pin"
	"github.com/imagetrust/imagetrust/provider/internal/registry"
)

func runPin(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return pinCmd{stdin: os.Stdin}.run(ctx, args, getenv, stdout, stderr)
}

type pinCmd struct {
	stdin io.Reader
}

func (c pinCmd) run(ctx context.Context, args []string, _ func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("imagetrust pin", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var inputs, insecure stringList
	fs.Var(&inputs, "f", "manifest file, directory (recursive) or - (stdin: the result goes to stdout); repeatable")
	form := fs.String("form", pin.FormTagDigest, "rewritten form: tag-digest (name:tag@sha256:…) or digest (name@sha256:…)")
	platform := fs.String("platform", "", "pin a platform's manifest inside the index (os/arch[/variant]) instead of the index")
	checkOnly := fs.Bool("check", false, "change nothing; exit 1 when any reference is not pinned to a digest")
	diff := fs.Bool("diff", false, "print a unified diff instead of writing the files")
	verify := fs.Bool("verify", false, "also check existing digests exist and their tags still point at them (exit 1 otherwise)")
	providerConfig := fs.String("provider-config", "", "provider configuration: contact only its registries, with its auth and timeouts")
	fs.Var(&insecure, "insecure-registry", "registry host[:port] reached over plain HTTP (without --provider-config); repeatable")
	dockerConfig := fs.String("docker-config", "", "extra docker config.json whose auths entries are tried first (the default docker config, with credential helpers, is always consulted)")
	concurrency := fs.Int("concurrency", 8, "registry lookups in flight")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: imagetrust pin -f FILE|DIR|- [-f …] [--form tag-digest|digest] [--platform os/arch] [--check] [--diff] [--verify]")
		fmt.Fprintln(stderr, "Rewrites image references to digests, changing only the bytes of each reference.")
		fs.PrintDefaults()
	}
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return usageError(err)
	}
	inputs = append(inputs, pos...)
	if len(inputs) == 0 {
		fs.Usage()
		return fmt.Errorf("%w: pin needs manifests: -f FILE|DIR|-", errUsage)
	}
	if *form != pin.FormTagDigest && *form != pin.FormDigest {
		return fmt.Errorf("%w: --form %q: want tag-digest or digest", errUsage, *form)
	}
	var plat *v1.Platform
	if *platform != "" {
		plat, err = v1.ParsePlatform(*platform)
		if err != nil || plat.OS == "" || plat.Architecture == "" {
			return fmt.Errorf("%w: --platform %q: want os/arch[/variant]", errUsage, *platform)
		}
	}

	srcs, err := manifests.Collect(inputs, c.stdin)
	if err != nil {
		return incomplete(err)
	}
	opts := pin.Options{Form: *form, Platform: plat, Concurrency: *concurrency, Verify: *verify, Resolve: !*checkOnly}
	if opts.Resolve || opts.Verify {
		reg, err := pinRegistry(ctx, srcs, *providerConfig, insecure, *dockerConfig)
		if err != nil {
			return incomplete(err)
		}
		defer reg.CloseIdleConnections()
		opts.Registry = reg
	}
	res, err := pin.Plan(ctx, srcs, opts)
	if err != nil {
		return incomplete(err)
	}
	for _, w := range res.Warnings {
		fmt.Fprintln(stderr, "warning:", w)
	}
	if *checkOnly {
		for _, u := range res.Unpinned {
			fmt.Fprintln(stdout, u)
		}
		if len(res.Unpinned) > 0 {
			fmt.Fprintf(stderr, "imagetrust pin --check: %d reference(s) not pinned to a digest\n", len(res.Unpinned))
			return &exitError{code: exitFindings, err: errSilent}
		}
		return nil
	}
	for _, s := range srcs {
		out, ok := res.Output[s.Name]
		switch {
		case s.Name == manifests.Stdin && !*diff:
			if !ok {
				out = s.Data
			}
			if _, err := stdout.Write(out); err != nil {
				return err
			}
		case !ok:
		case *diff:
			d, err := pin.Diff(s.Name, s.Data, out)
			if err != nil {
				return err
			}
			if _, err := io.WriteString(stdout, d); err != nil {
				return err
			}
		default:
			if err := writeInPlace(s.Name, out); err != nil {
				return incomplete(err)
			}
		}
	}
	fmt.Fprintf(stderr, "imagetrust pin: %d reference(s) rewritten, %d registry lookup(s)\n", len(res.Edits), res.Lookups)
	for _, p := range res.Problems {
		fmt.Fprintln(stderr, p)
	}
	if len(res.Problems) > 0 {
		return &exitError{code: exitFindings, err: fmt.Errorf("%d reference(s) could not be resolved or verified", len(res.Problems))}
	}
	return nil
}

// pinRegistry builds the provider's registry client: the provider configuration's registries
// and auth when given, else exactly the hosts the manifests name. Either way the docker
// config ($DOCKER_CONFIG/config.json or ~/.docker/config.json, with its credential helpers
// and credsStore) is consulted after the configured credentials.
func pinRegistry(ctx context.Context, srcs []manifests.Source, cfgFile string, insecure []string, dockerConfig string) (*registry.Client, error) {
	if cfgFile != "" {
		data, err := os.ReadFile(cfgFile) //nolint:gosec // the user names the configuration
		if err != nil {
			return nil, fmt.Errorf("--provider-config: %w", err)
		}
		cfg, err := config.Decode(data)
		if err != nil {
			return nil, fmt.Errorf("--provider-config %s: %w", cfgFile, err)
		}
		cfg.ApplyDefaults()
		if cfg.Auth.Kubernetes != nil {
			return nil, fmt.Errorf("--provider-config %s: auth.kubernetes (pull secrets) is not available to pin; use auth.dockerConfigFile", cfgFile)
		}
		return registry.New(ctx, registry.Options{Registries: cfg.Registries, Auth: cfg.Auth, PerRegistryConcurrency: cfg.Lookup.PerRegistryConcurrency, Timeout: cfg.Lookup.RegistryTimeout.D(), UserAgent: "imagetrust-pin", Keychain: authn.DefaultKeychain})
	}
	hosts, err := pin.Hosts(srcs)
	if err != nil {
		return nil, err
	}
	if len(hosts) == 0 {
		hosts = []string{"docker.io"} // nothing to resolve; the client needs one registry
	}
	plain := map[string]bool{}
	for _, h := range insecure {
		plain[strings.ToLower(h)] = true
	}
	regs := make([]config.Registry, 0, len(hosts))
	for _, h := range hosts {
		regs = append(regs, config.Registry{Host: h, Insecure: plain[h]})
	}
	return registry.New(ctx, registry.Options{Registries: regs, Auth: config.Auth{DockerConfigFile: dockerConfig}, UserAgent: "imagetrust-pin", Keychain: authn.DefaultKeychain})
}

// writeInPlace replaces the file atomically, keeping its mode.
func writeInPlace(name string, data []byte) error {
	st, err := os.Stat(name)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".pin-*")
	if err != nil {
		return err
	}
	defer func() { _ = os.Remove(tmp.Name()) }()
	if _, err := tmp.Write(data); err != nil {
		_ = tmp.Close()
		return err
	}
	if err := tmp.Chmod(st.Mode().Perm()); err != nil {
		_ = tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), name)
}
