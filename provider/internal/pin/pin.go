// Package pin is `imagetrust pin`: it rewrites every image reference of the workloads in
// manifests to its digest (name:tag@sha256:… by default), changing nothing in a file but the
// bytes of each rewritten scalar: comments, blank lines, quoting, key order, anchors and line
// endings stay as written. Tags are resolved with HEAD requests through the provider's registry
// client, one per distinct reference, with bounded concurrency.
package pin

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"go.yaml.in/yaml/v3"
	"golang.org/x/sync/errgroup"

	"github.com/imagetrust/imagetrust/provider/internal/imageref"
	"github.com/imagetrust/imagetrust/provider/internal/manifests"
	"github.com/imagetrust/imagetrust/provider/internal/registry"
)

// Registry is what pin needs from the registry client (*registry.Client).
type Registry interface {
	// Head resolves a reference with HEAD requests (by digest when it has one, else by tag).
	Head(ctx context.Context, ref imageref.Ref) (*registry.Descriptor, error)
	// Get fetches the manifest ref@digest (for --platform: the index's children).
	Get(ctx context.Context, ref imageref.Ref, digest string) (*remote.Descriptor, error)
}

// Forms of the rewritten reference.
const (
	// FormTagDigest keeps the reference as written and adds @digest: name:tag@sha256:….
	FormTagDigest = "tag-digest"
	// FormDigest drops the tag: name@sha256:….
	FormDigest = "digest"
)

// Options configure Plan.
type Options struct {
	// Registry resolves tags (required unless every reference is already pinned and Verify
	// is off).
	Registry Registry
	// Form is FormTagDigest (default) or FormDigest.
	Form string
	// Platform selects a platform's manifest digest inside an index (nil: the digest the tag
	// points at, an index for multi-platform images).
	Platform *v1.Platform
	// Concurrency bounds registry requests in flight (default 8).
	Concurrency int
	// Verify checks every existing digest: it must exist, and a written tag must still point at
	// it.
	Verify bool
	// Resolve is false for --check: only count what is unpinned, contact no registry.
	Resolve bool
}

// Edit is one rewritten scalar.
type Edit struct {
	File         string
	Line, Column int
	Object       string
	Path         string
	Old, New     string
}

// Warning is a reference left alone, with where it is.
type Warning struct {
	File string
	Line int
	Msg  string
}

func (w Warning) String() string { return fmt.Sprintf("%s:%d: %s", w.File, w.Line, w.Msg) }

// Problem is a reference that failed verification or resolution.
type Problem struct {
	File         string
	Line, Column int
	Image        string
	Msg          string
}

func (p Problem) String() string {
	return fmt.Sprintf("%s:%d:%d: %s: %s", p.File, p.Line, p.Column, p.Image, p.Msg)
}

// Result is the outcome of Plan.
type Result struct {
	// Output holds the rewritten bytes of every file with at least one edit.
	Output   map[string][]byte
	Edits    []Edit
	Warnings []Warning
	// Unpinned lists the references without a digest (what --check fails on).
	Unpinned []Problem
	// Problems lists failed resolutions and, with Verify, missing digests and moved tags.
	Problems []Problem
	// Lookups counts the distinct registry lookups made.
	Lookups int
}

// IsTemplated reports a reference a template engine or the shell fills in later.
func IsTemplated(s string) bool {
	return strings.Contains(s, "{{") || strings.Contains(s, "}}") || strings.Contains(s, "$")
}

type site struct {
	src *manifests.Source
	obj *manifests.Object
	im  manifests.Image
	ref imageref.Ref
}

// Plan parses srcs, resolves what needs resolving and returns the rewritten files.
func Plan(ctx context.Context, srcs []manifests.Source, o Options) (*Result, error) {
	if o.Form == "" {
		o.Form = FormTagDigest
	}
	if o.Form != FormTagDigest && o.Form != FormDigest {
		return nil, fmt.Errorf("pin: form %q: want %s or %s", o.Form, FormTagDigest, FormDigest)
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 8
	}
	res := &Result{Output: map[string][]byte{}}
	var sites []site
	for i := range srcs {
		src := &srcs[i]
		objs, err := manifests.Parse(*src)
		if err != nil {
			return nil, err
		}
		seen := map[int]bool{} // offsets: an anchored scalar is rewritten once
		for j := range objs {
			obj := &objs[j]
			for _, im := range obj.Images {
				if IsTemplated(im.Value) {
					res.Warnings = append(res.Warnings, Warning{File: src.Name, Line: im.Line, Msg: fmt.Sprintf("%s: skipping templated image reference %q", im.Path, im.Value)})
					continue
				}
				ref, err := imageref.Parse(im.Value)
				if err != nil {
					return nil, &manifests.Error{File: src.Name, Line: im.Line, Column: im.Column, Err: fmt.Errorf("%s: %w", im.Path, err)}
				}
				if o.Resolve && im.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0 {
					return nil, &manifests.Error{File: src.Name, Line: im.Line, Column: im.Column,
						Err: fmt.Errorf("%s: cannot rewrite a block scalar (| or >) in place: write the image as a plain or quoted scalar", im.Path)}
				}
				if seen[im.Offset] {
					continue
				}
				seen[im.Offset] = true
				sites = append(sites, site{src: src, obj: obj, im: im, ref: ref})
				if ref.Digest == "" {
					res.Unpinned = append(res.Unpinned, Problem{File: src.Name, Line: im.Line, Column: im.Column, Image: im.Value, Msg: "not pinned to a digest"})
				}
			}
		}
	}
	if !o.Resolve && !o.Verify {
		return res, nil
	}
	lookups, err := resolveAll(ctx, sites, o)
	if err != nil {
		return nil, err
	}
	res.Lookups = len(lookups)

	edits := map[string][]Edit{}
	for _, s := range sites {
		file := s.src.Name
		prob := func(msg string) {
			res.Problems = append(res.Problems, Problem{File: file, Line: s.im.Line, Column: s.im.Column, Image: s.im.Value, Msg: msg})
		}
		var newValue string
		if s.ref.Digest != "" {
			if o.Verify {
				if l := lookups[digestKey(s.ref)]; l.err != nil {
					prob("pinned digest: " + l.err.Error())
				}
				if s.ref.Tag != "" {
					l := lookups[tagKey(s.ref, nil)]
					switch {
					case l.err != nil:
						prob("tag <" + s.ref.Tag + ">: " + l.err.Error())
					case l.digest != s.ref.Digest:
						prob(fmt.Sprintf("tag <%s> moved: it now points at %s, not the pinned %s", s.ref.Tag, l.digest, s.ref.Digest))
					}
				}
			}
			if o.Form == FormDigest && s.ref.Tag != "" {
				newValue = nameOf(s.ref.Original) + "@" + s.ref.Digest
			}
		} else if o.Resolve {
			l := lookups[tagKey(s.ref, o.Platform)]
			if l.err != nil {
				prob(l.err.Error())
				continue
			}
			newValue = s.ref.Pinned(l.digest)
			if o.Form == FormDigest {
				newValue = nameOf(s.ref.Original) + "@" + l.digest
			}
		}
		if newValue == "" || newValue == s.im.Value {
			continue
		}
		edits[file] = append(edits[file], Edit{File: file, Line: s.im.Line, Column: s.im.Column, Object: s.obj.Ref(), Path: s.im.Path, Old: s.im.Value, New: newValue})
	}
	for i := range srcs {
		es := edits[srcs[i].Name]
		if len(es) == 0 {
			continue
		}
		out, err := splice(srcs[i], es)
		if err != nil {
			return nil, err
		}
		res.Output[srcs[i].Name] = out
		res.Edits = append(res.Edits, es...)
	}
	sort.SliceStable(res.Problems, func(i, j int) bool { return res.Problems[i].String() < res.Problems[j].String() })
	return res, nil
}

// nameOf returns the name part of a reference as written: without :tag and @digest.
func nameOf(original string) string {
	n, _, _ := strings.Cut(original, "@")
	if i := strings.LastIndex(n, ":"); i > strings.LastIndex(n, "/") {
		n = n[:i]
	}
	return n
}

// splice replaces each edit's scalar bytes, checking that the bytes found at the scalar's
// position are the scalar as parsed, in its style.
func splice(src manifests.Source, es []Edit) ([]byte, error) {
	objs, err := manifests.Parse(src)
	if err != nil {
		return nil, err
	}
	type span struct {
		at       int
		old, new string
		e        Edit
	}
	var spans []span
	byPos := map[[2]int]manifests.Image{}
	for _, o := range objs {
		for _, im := range o.Images {
			byPos[[2]int{im.Line, im.Column}] = im
		}
	}
	for _, e := range es {
		im, ok := byPos[[2]int{e.Line, e.Column}]
		if !ok {
			return nil, &manifests.Error{File: src.Name, Line: e.Line, Column: e.Column, Err: errors.New("image scalar not found again")}
		}
		old := manifests.Quote(im.Value, im.Style)
		if im.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0 || im.Offset < 0 || im.Offset+len(old) > len(src.Data) || string(src.Data[im.Offset:im.Offset+len(old)]) != old {
			return nil, &manifests.Error{File: src.Name, Line: e.Line, Column: e.Column,
				Err: fmt.Errorf("%s: cannot rewrite %q in place: write it as a plain or quoted scalar on one line", e.Path, e.Old)}
		}
		spans = append(spans, span{at: im.Offset, old: old, new: manifests.Quote(e.New, im.Style), e: e})
	}
	sort.Slice(spans, func(i, j int) bool { return spans[i].at < spans[j].at })
	var b bytes.Buffer
	b.Grow(len(src.Data) + 80*len(spans))
	last := 0
	for _, s := range spans {
		b.Write(src.Data[last:s.at])
		b.WriteString(s.new)
		last = s.at + len(s.old)
	}
	b.Write(src.Data[last:])
	return b.Bytes(), nil
}

// lookup is the answer for one distinct key.
type lookup struct {
	digest string
	err    error
}

func tagKey(r imageref.Ref, p *v1.Platform) string {
	k := "tag " + r.Repository() + ":" + r.EffectiveTag()
	if p != nil {
		k += " " + p.String()
	}
	return k
}

func digestKey(r imageref.Ref) string { return "digest " + r.Repository() + "@" + r.Digest }

// resolveAll makes one lookup per distinct key, at most o.Concurrency at a time.
func resolveAll(ctx context.Context, sites []site, o Options) (map[string]lookup, error) {
	type job struct {
		key string
		ref imageref.Ref
		fn  func(context.Context, imageref.Ref) (string, error)
	}
	var jobs []job
	seen := map[string]bool{}
	add := func(key string, ref imageref.Ref, fn func(context.Context, imageref.Ref) (string, error)) {
		if !seen[key] {
			seen[key] = true
			jobs = append(jobs, job{key, ref, fn})
		}
	}
	for _, s := range sites {
		switch {
		case s.ref.Digest == "" && o.Resolve:
			add(tagKey(s.ref, o.Platform), s.ref, func(ctx context.Context, r imageref.Ref) (string, error) {
				return resolveTag(ctx, o.Registry, r, o.Platform)
			})
		case s.ref.Digest != "" && o.Verify:
			add(digestKey(s.ref), s.ref, func(ctx context.Context, r imageref.Ref) (string, error) {
				d, err := o.Registry.Head(ctx, r)
				if err != nil {
					return "", err
				}
				return d.Digest.String(), nil
			})
			if s.ref.Tag != "" {
				tagOnly := s.ref
				tagOnly.Digest = ""
				add(tagKey(tagOnly, nil), tagOnly, func(ctx context.Context, r imageref.Ref) (string, error) {
					return resolveTag(ctx, o.Registry, r, nil)
				})
			}
		}
	}
	if len(jobs) > 0 && o.Registry == nil {
		return nil, errors.New("pin: no registry client")
	}
	out := make(map[string]lookup, len(jobs))
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(o.Concurrency)
	for _, j := range jobs {
		g.Go(func() error {
			d, err := j.fn(gctx, j.ref)
			mu.Lock()
			out[j.key] = lookup{digest: d, err: err}
			mu.Unlock()
			return nil
		})
	}
	_ = g.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// resolveTag returns the digest ref's tag points at: with a platform, the digest of that
// platform's manifest inside the index (exactly one must match).
func resolveTag(ctx context.Context, reg Registry, r imageref.Ref, p *v1.Platform) (string, error) {
	desc, err := reg.Head(ctx, r)
	if err != nil {
		return "", err
	}
	if p == nil || !desc.MediaType.IsIndex() {
		return desc.Digest.String(), nil
	}
	full, err := reg.Get(ctx, r, desc.Digest.String())
	if err != nil {
		return "", err
	}
	idx, err := full.ImageIndex()
	if err != nil {
		return "", fmt.Errorf("reading index %s: %w", desc.Digest, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return "", fmt.Errorf("reading index %s: %w", desc.Digest, err)
	}
	var found []string
	var have []string
	for _, m := range im.Manifests {
		if m.Platform == nil {
			continue
		}
		have = append(have, m.Platform.String())
		if m.Platform.Satisfies(*p) {
			found = append(found, m.Digest.String())
		}
	}
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		return "", fmt.Errorf("index %s has no manifest for platform %s (it has: %s)", desc.Digest, p, strings.Join(have, ", "))
	}
	return "", fmt.Errorf("index %s has %d manifests for platform %s: name the variant (e.g. linux/arm64/v8)", desc.Digest, len(found), p)
}

// Hosts returns the registry hosts the references of srcs name (templated ones skipped), for
// a registry client that may contact only them when no provider configuration lists them.
func Hosts(srcs []manifests.Source) ([]string, error) {
	set := map[string]bool{}
	for _, s := range srcs {
		objs, err := manifests.Parse(s)
		if err != nil {
			return nil, err
		}
		for _, o := range objs {
			for _, im := range o.Images {
				if IsTemplated(im.Value) {
					continue
				}
				if r, err := imageref.Parse(im.Value); err == nil {
					set[r.Host()] = true
				}
			}
		}
	}
	out := make([]string, 0, len(set))
	for h := range set {
		out = append(out, h)
	}
	sort.Strings(out)
	return out, nil
}
