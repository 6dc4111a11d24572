package main

import (
	"context"
	"crypto"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature/kms"
	"github.com/sigstore/sigstore/pkg/signature/options"

	"github.com/imagetrust/imagetrust/provider/internal/config"
	"github.com/imagetrust/imagetrust/provider/internal/export"
)

type exportFormat struct {
	name, file string
	render     func(*export.Policy) ([]byte, error)
}

// exportFormats are the files `imagetrust export` writes, by -format name.
func exportFormats() []exportFormat {
	return []exportFormat{
		{"openshift-image", "image.config.openshift.io.yaml", (*export.Policy).OpenShiftImage},
		{"policy-json", "policy.json", (*export.Policy).PolicyJSON},
		{"registries-d", "registries.d/imagetrust.yaml", (*export.Policy).RegistriesD},
		{"cluster-image-policy", "clusterimagepolicies.yaml", (*export.Policy).ClusterImagePolicies},
	}
}

type stringsFlag []string

func (s *stringsFlag) String() string     { return strings.Join(*s, ",") }
func (s *stringsFlag) Set(v string) error { *s = append(*s, v); return nil }

func runExport(ctx context.Context, args []string, _ func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("imagetrust export", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var constraints, extra stringsFlag
	fs.Var(&constraints, "constraints", "file or directory of constraints; the enforced K8sTrustedImageSource ones are read (repeatable; required)")
	cfgPath := fs.String("config", "", "provider configuration whose key authorities sign the allowed registries (optional)")
	fs.Var(&extra, "allow", "registry scope always allowed at the node, e.g. the platform's quay.io/openshift-release-dev (repeatable)")
	format := fs.String("format", "all", "openshift-image, policy-json, registries-d, cluster-image-policy, or all (needs -out)")
	out := fs.String("out", "", "directory to write every format into (with -format all)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: imagetrust export -constraints DIR [-config provider.yaml] [-allow SCOPE] [-format F | -out DIR]")
		fmt.Fprintln(stderr, "Turns the registry allow-lists and the provider's key authorities into node-level policy:")
		fmt.Fprintln(stderr, "OpenShift registrySources, containers policy.json + registries.d, ClusterImagePolicy.")
		fs.PrintDefaults()
	}
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return usageError(err)
	}
	constraints = append(constraints, pos...)
	if len(constraints) == 0 {
		fs.Usage()
		return fmt.Errorf("%w: export needs -constraints", errUsage)
	}
	var render func(*export.Policy) ([]byte, error)
	if *format == "all" {
		if *out == "" {
			return fmt.Errorf("%w: -format all writes several files: give -out DIR, or one -format", errUsage)
		}
	} else {
		for _, f := range exportFormats() {
			if f.name == *format {
				render = f.render
			}
		}
		if render == nil {
			return fmt.Errorf("%w: -format %q: want openshift-image, policy-json, registries-d, cluster-image-policy or all", errUsage, *format)
		}
	}

	sources, skipped, err := export.LoadConstraints(constraints)
	if err != nil {
		return err
	}
	for _, s := range skipped {
		fmt.Fprintln(stderr, "imagetrust export: not enforced, left out:", s)
	}
	o := export.Options{Sources: sources, ExtraRegistries: extra}
	if *cfgPath != "" {
		cfg, err := config.Load(*cfgPath)
		if err != nil {
			return err
		}
		for i := range cfg.Authorities {
			a, err := exportAuthority(ctx, &cfg.Authorities[i])
			if err != nil {
				return fmt.Errorf("config %s: authorities[%d] (%s): %w", *cfgPath, i, cfg.Authorities[i].Name, err)
			}
			o.Authorities = append(o.Authorities, a)
		}
	}
	p, err := export.Compute(o)
	if err != nil {
		return err
	}
	for _, w := range p.Warnings {
		fmt.Fprintln(stderr, "imagetrust export: warning:", w)
	}
	if render != nil {
		b, err := render(p)
		if err != nil {
			return err
		}
		_, err = stdout.Write(b)
		return err
	}
	for _, f := range exportFormats() {
		b, err := f.render(p)
		if err != nil {
			return err
		}
		path := filepath.Join(*out, f.file)
		if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
			return err
		}
		if err := os.WriteFile(path, b, 0o644); err != nil { //nolint:gosec // node policy holds public keys only
			return err
		}
		fmt.Fprintln(stdout, path)
	}
	return nil
}

// exportAuthority reads an authority's public key: the PEM file, or the KMS key's public half
// (this contacts the KMS, as the provider does at start).
func exportAuthority(ctx context.Context, a *config.Authority) (export.Authority, error) {
	out := export.Authority{Name: a.Name, Images: a.Images}
	switch {
	case a.Key == nil:
		return out, nil // keyless
	case a.Key.File != "":
		b, err := os.ReadFile(a.Key.File)
		if err != nil {
			return out, err
		}
		out.PublicKeyPEM = b
	default:
		sv, err := kms.Get(ctx, a.Key.KMS, crypto.SHA256)
		if err != nil {
			return out, fmt.Errorf("kms %q: %w", a.Key.KMS, err)
		}
		pub, err := sv.PublicKey(options.WithContext(ctx))
		if err != nil {
			return out, fmt.Errorf("kms %q: fetching the public key: %w", a.Key.KMS, err)
		}
		if out.PublicKeyPEM, err = cryptoutils.MarshalPublicKeyToPEM(pub); err != nil {
			return out, err
		}
	}
	return out, nil
}
