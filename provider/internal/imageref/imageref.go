// Package imageref parses container image references exactly as the container runtime does,
// using github.com/distribution/reference (the grammar containerd and CRI-O use), and converts
// them to go-containerregistry names for registry access.
//
// The one deliberate difference from reference.ParseDockerRef is that the tag of a
// name:tag@digest reference is kept as written (ParseDockerRef drops it): the runtime pulls by
// digest either way, but the mutation endpoint answers name:tag@digest and verification reports
// tag drift, so the tag must survive parsing.
package imageref

import (
	"fmt"
	"strings"

	"github.com/distribution/reference"
	"github.com/google/go-containerregistry/pkg/name"

	"github.com/imagetrust/imagetrust/provider/internal/wire"
)

// maxLen bounds a reference before it reaches the parser (distribution allows names up to 255
// characters; a tag adds 128 and a digest 71).
const maxLen = 512

// Ref is a parsed image reference.
type Ref struct {
	// Original is the reference exactly as written.
	Original string
	// Domain is the registry host[:port] ("docker.io" for Docker Hub).
	Domain string
	// Path is the repository path within the registry ("library/nginx").
	Path string
	// Tag as written, or "" when none was written.
	Tag string
	// Digest as written, or "" when none was written.
	Digest string
}

// InvalidError reports a reference the runtime would reject.
type InvalidError struct {
	Ref    string
	Reason string
}

func (e *InvalidError) Error() string {
	return e.Class().Message(fmt.Sprintf("%q: %s", e.Ref, e.Reason))
}

// Class is wire.ClassInvalidReference.
func (e *InvalidError) Class() wire.Class { return wire.ClassInvalidReference }

// Parse parses s with ParseDockerRef semantics, keeping the tag of name:tag@digest.
func Parse(s string) (Ref, error) {
	if s == "" {
		return Ref{}, &InvalidError{Ref: s, Reason: "empty reference"}
	}
	if len(s) > maxLen {
		return Ref{}, &InvalidError{Ref: s[:64] + "…", Reason: fmt.Sprintf("longer than %d bytes", maxLen)}
	}
	named, err := reference.ParseNormalizedNamed(s)
	if err != nil {
		return Ref{}, &InvalidError{Ref: s, Reason: err.Error()}
	}
	r := Ref{Original: s, Domain: reference.Domain(named), Path: reference.Path(named)}
	if t, ok := named.(reference.Tagged); ok {
		r.Tag = t.Tag()
	}
	if d, ok := named.(reference.Digested); ok {
		r.Digest = d.Digest().String()
	}
	return r, nil
}

// Repository is domain/path.
func (r Ref) Repository() string { return r.Domain + "/" + r.Path }

// EffectiveTag is the tag, or "latest" when neither tag nor digest was written.
func (r Ref) EffectiveTag() string {
	if r.Tag == "" && r.Digest == "" {
		return "latest"
	}
	return r.Tag
}

// Normalized is repository[:tag][@digest], with "latest" filled in only when there is no digest.
func (r Ref) Normalized() string { return r.PrefixedNormalized("") }

// PrefixedNormalized is prefix followed by Normalized, built in one allocation (a cache key).
func (r Ref) PrefixedNormalized(prefix string) string {
	var b strings.Builder
	b.Grow(len(prefix) + len(r.Domain) + len(r.Path) + len(r.Tag) + len(r.Digest) + 10)
	b.WriteString(prefix)
	b.WriteString(r.Domain)
	b.WriteByte('/')
	b.WriteString(r.Path)
	if t := r.EffectiveTag(); t != "" {
		b.WriteByte(':')
		b.WriteString(t)
	}
	if r.Digest != "" {
		b.WriteByte('@')
		b.WriteString(r.Digest)
	}
	return b.String()
}

// Pull is what the runtime pulls: repository@digest when there is a digest, else repository:tag.
func (r Ref) Pull() string {
	if r.Digest != "" {
		return r.Repository() + "@" + r.Digest
	}
	return r.Repository() + ":" + r.EffectiveTag()
}

// Pinned is the reference in the user's own spelling pinned to digest: the original text plus
// "@digest" when it had no digest, the original unchanged when it already had one (so pinning
// is idempotent). A written tag is kept: name:tag@digest.
func (r Ref) Pinned(digest string) string {
	if r.Digest != "" {
		return r.Original
	}
	return r.Original + "@" + digest
}

// Host returns the registry host[:port], lower-cased for comparison with configuration.
func (r Ref) Host() string { return strings.ToLower(r.Domain) }

// GGCRRepository converts the repository to a go-containerregistry name on host (which may be
// a mirror of r.Domain). insecure selects plain HTTP.
func (r Ref) GGCRRepository(host string, insecure bool) (name.Repository, error) {
	opts := []name.Option{name.StrictValidation}
	if insecure {
		opts = append(opts, name.Insecure)
	}
	repo, err := name.NewRepository(host+"/"+r.Path, opts...)
	if err != nil {
		return name.Repository{}, &InvalidError{Ref: r.Original, Reason: err.Error()}
	}
	return repo, nil
}
