// Command imagetrust-image builds, pushes and signs the provider and CLI images without a
// container runtime (`make image`, `make image-push`, `make image-sign`).
//
//	imagetrust-image build [-program provider|cli] -out DIR -binary linux/amd64=PATH [-binary linux/arm64=PATH] \
//	    -source URL -version V [-revision SHA] [-builder-id URI]
//	imagetrust-image push -dir DIR -to HOST/REPO[:TAG]
//	imagetrust-image sign -dir DIR -repo HOST/REPO -key FILE|KMS-REF
//
// build writes DIR/oci (an OCI layout holding the image index), DIR/digest, DIR/sbom.spdx.json
// (SPDX 2.3 of the binaries' Go modules) and DIR/provenance.slsa.json (SLSA v1 predicate). The
// creation time is SOURCE_DATE_EPOCH (required), so a rebuild of the same commit gives the
// same digest. sign signs the pushed index and its platform manifests and attaches the SBOM
// and the provenance as signed in-toto attestations; an encrypted cosign key is decrypted
// with COSIGN_PASSWORD.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/imagetrust/imagetrust/provider/internal/image"
)

// Files build writes into its output directory.
const (
	layoutDir      = "oci"
	digestFile     = "digest"
	sbomFile       = "sbom.spdx.json"
	provenanceFile = "provenance.slsa.json"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "imagetrust-image:", err)
		if errors.Is(err, errUsage) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

var errUsage = errors.New("usage")

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: imagetrust-image build|push|sign [flags] (-h for each)")
		return fmt.Errorf("%w: no command given", errUsage)
	}
	switch args[0] {
	case "build":
		return runBuild(args[1:], getenv, stdout, stderr)
	case "push":
		return runPush(ctx, args[1:], stdout, stderr)
	case "sign":
		return runSign(ctx, args[1:], getenv, stdout, stderr)
	}
	fmt.Fprintln(stderr, "usage: imagetrust-image build|push|sign [flags] (-h for each)")
	return fmt.Errorf("%w: unknown command %q", errUsage, args[0])
}

// binariesFlag collects -binary os/arch[/variant]=path.
type binariesFlag []image.Binary

func (b *binariesFlag) String() string { return fmt.Sprint(len(*b)) }

func (b *binariesFlag) Set(s string) error {
	plat, path, ok := strings.Cut(s, "=")
	if !ok || path == "" {
		return fmt.Errorf("%q: want os/arch=path", s)
	}
	p, err := v1.ParsePlatform(plat)
	if err != nil {
		return fmt.Errorf("%q: %w", s, err)
	}
	*b = append(*b, image.Binary{Platform: *p, Path: path})
	return nil
}

func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	return nil
}

// sourceDateEpoch reads SOURCE_DATE_EPOCH (seconds since 1970, required).
func sourceDateEpoch(getenv func(string) string) (time.Time, error) {
	v := getenv("SOURCE_DATE_EPOCH")
	if v == "" {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH is not set: set it to the commit time (git log -1 --format=%%ct)")
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH=%q: want seconds since 1970", v)
	}
	return time.Unix(n, 0).UTC(), nil
}

func runBuild(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("imagetrust-image build", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var bins binariesFlag
	var o image.Options
	out := fs.String("out", "", "output directory: oci/ layout, digest, sbom.spdx.json, provenance.slsa.json (required)")
	builder := fs.String("builder-id", "", "SLSA builder id: who ran the build (default: <source>/blob/<revision>/Makefile)")
	program := fs.String("program", image.ProgramProvider, "what the image runs: provider (imagetrust-provider) or cli (imagetrust, the report CronJob's image)")
	fs.Var(&bins, "binary", "os/arch=path of a statically linked binary of the program (repeat per platform)")
	fs.StringVar(&o.Source, "source", "", "source repository URL (required), e.g. https://github.com/imagetrust/imagetrust")
	fs.StringVar(&o.Version, "version", "", "image version (required)")
	fs.StringVar(&o.Revision, "revision", "", "source commit")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *out == "" {
		return fmt.Errorf("%w: -out is required", errUsage)
	}
	prog, err := image.ProgramNamed(*program)
	if err != nil {
		return fmt.Errorf("%w: -program: %w", errUsage, err)
	}
	created, err := sourceDateEpoch(getenv)
	if err != nil {
		return err
	}
	o.Binaries, o.Created, o.Program = bins, created, prog
	if *builder == "" {
		ref := o.Revision
		if ref == "" {
			ref = "main"
		}
		*builder = strings.TrimSuffix(o.Source, "/") + "/blob/" + ref + "/Makefile"
	}
	res, err := image.Build(o)
	if err != nil {
		return err
	}
	sbom, err := image.SBOM(o)
	if err != nil {
		return err
	}
	prov, err := image.ProvenanceFor(o, *builder)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(*out, 0o750); err != nil {
		return err
	}
	if err := image.WriteLayout(filepath.Join(*out, layoutDir), res.Index, o.Version); err != nil {
		return err
	}
	for n, b := range map[string][]byte{digestFile: []byte(res.Digest.String() + "\n"), sbomFile: sbom, provenanceFile: prov} {
		if err := os.WriteFile(filepath.Join(*out, n), b, 0o644); err != nil { //nolint:gosec // build outputs are public
			return err
		}
	}
	fmt.Fprintf(stdout, "index %s (%s)\n", res.Digest, filepath.Join(*out, layoutDir))
	for _, p := range res.Platforms {
		fmt.Fprintf(stdout, "  %-14s %s  %.1f MiB compressed\n", p.Platform.String(), p.Digest, float64(p.Size)/(1<<20))
	}
	fmt.Fprintf(stdout, "sbom %s, provenance %s\n", filepath.Join(*out, sbomFile), filepath.Join(*out, provenanceFile))
	return nil
}

func remoteOptions(ctx context.Context) []remote.Option {
	return []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain)}
}

func runPush(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("imagetrust-image push", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", "", "the output directory of build (required)")
	to := fs.String("to", "", "HOST/REPO[:TAG] to push to (required; TAG defaults to the image version)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *dir == "" || *to == "" {
		return fmt.Errorf("%w: -dir and -to are required", errUsage)
	}
	idx, err := image.ReadLayout(filepath.Join(*dir, layoutDir))
	if err != nil {
		return err
	}
	ref, err := pushRef(idx, *to)
	if err != nil {
		return err
	}
	d, err := image.Push(ctx, idx, ref, remoteOptions(ctx)...)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "pushed %s\n%s\n", ref, d)
	return nil
}

// pushRef is to with the tag the layout names (the image version) when to has none.
func pushRef(idx v1.ImageIndex, to string) (name.Reference, error) {
	ref, err := name.ParseReference(to, name.StrictValidation)
	if err == nil {
		return ref, nil
	}
	repo, rerr := name.NewRepository(to, name.StrictValidation)
	if rerr != nil {
		return nil, fmt.Errorf("-to %q: %w", to, err)
	}
	m, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	tag := m.Annotations[image.LabelVersion]
	if tag == "" {
		return nil, fmt.Errorf("-to %q has no tag and the layout names no version", to)
	}
	t := repo.Tag(strings.ReplaceAll(tag, "+", "_"))
	return t, nil
}

func runSign(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("imagetrust-image sign", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", "", "the output directory of build (required)")
	repo := fs.String("repo", "", "HOST/REPO the image was pushed to (required)")
	key := fs.String("key", "", "signing key: PEM file (cosign or PKCS#8) or KMS reference awskms://, gcpkms://, azurekms://, hashivault:// (required)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *dir == "" || *repo == "" || *key == "" {
		return fmt.Errorf("%w: -dir, -repo and -key are required", errUsage)
	}
	d, atts, err := readBuild(*dir)
	if err != nil {
		return err
	}
	r, err := name.NewRepository(*repo, name.StrictValidation)
	if err != nil {
		return fmt.Errorf("-repo %q: %w", *repo, err)
	}
	sv, err := image.LoadSigner(ctx, *key, []byte(getenv("COSIGN_PASSWORD")))
	if err != nil {
		return err
	}
	ref := r.Digest(d.String())
	if err := image.Sign(ctx, image.SignOptions{Image: ref, Signer: sv, Attestations: atts, Remote: remoteOptions(ctx)}); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "signed %s and its platform manifests; attested %s, %s\n", ref, image.SBOMPredicateType, image.ProvenancePredicateType)
	return nil
}

// readBuild reads the index digest and the two predicates build wrote into dir, and checks
// that the digest is the layout's.
func readBuild(dir string) (v1.Hash, []image.Attestation, error) {
	raw, err := os.ReadFile(filepath.Join(dir, digestFile))
	if err != nil {
		return v1.Hash{}, nil, fmt.Errorf("%w (run make image first)", err)
	}
	d, err := v1.NewHash(strings.TrimSpace(string(raw)))
	if err != nil {
		return v1.Hash{}, nil, fmt.Errorf("%s: %w", filepath.Join(dir, digestFile), err)
	}
	idx, err := image.ReadLayout(filepath.Join(dir, layoutDir))
	if err != nil {
		return v1.Hash{}, nil, err
	}
	ld, err := idx.Digest()
	if err != nil {
		return v1.Hash{}, nil, fmt.Errorf("%s: %w", filepath.Join(dir, layoutDir), err)
	}
	if ld != d {
		return v1.Hash{}, nil, fmt.Errorf("%s says %s but the layout holds %s: rebuild with make image", filepath.Join(dir, digestFile), d, ld)
	}
	sbom, err := os.ReadFile(filepath.Join(dir, sbomFile))
	if err != nil {
		return v1.Hash{}, nil, err
	}
	prov, err := os.ReadFile(filepath.Join(dir, provenanceFile))
	if err != nil {
		return v1.Hash{}, nil, err
	}
	return d, []image.Attestation{
		{PredicateType: image.SBOMPredicateType, Predicate: sbom},
		{PredicateType: image.ProvenancePredicateType, Predicate: prov},
	}, nil
}
