package verify

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"strconv"
	"sync"
	"time"
	"weak"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sync/singleflight"

	"github.com/imagetrust/imagetrust/provider/internal/cache"
	"github.com/imagetrust/imagetrust/provider/internal/imageref"
)

// One answer per digest. An answer holds what verification found about a digest (signatures,
// attestations, SBOMs, provenance, platforms, rejections) and three facts of the key: the image
// as written, what its tag points at now (tagDigest) and why it points at nothing (tagError).
// The cache keeps the first part once per plan, repository, digest and set of applicable
// authorities — the tags of one image, and its digest form, share one verification and one
// cached part — and the key's facts are added when the answer is served:
//
//   - name:tag: the tag is looked up (one HEAD) when the key is loaded, as before; the cached
//     value is the per-digest part itself, and tagDigest is its digest.
//   - name@digest: the per-digest part itself; tagDigest is empty.
//   - name:tag@digest: the tag is looked up for every load of the key (drift is per key); the
//     cached value holds tagDigest or tagError and points at the per-digest part.
//
// A key's cached value expires by the rules of the per-digest part it holds: unsigned parts
// after UnsignedTTL, signed ones after the cache's TTL, both counted from the verification, so
// a key that starts sharing an older part is looked up again when that part expires (the same
// age limits as an answer cached per key). Parts are found by digest through a table of weak
// pointers: a part lives as long as a cached key holds it.

// sharedParts finds the per-digest parts of cached answers (see above). Safe for concurrent use.
type sharedParts struct {
	mu sync.Mutex
	m  map[partKey]weak.Pointer[Value]
	// sweepAt: the table is swept of collected parts when it grows to twice this.
	sweepAt int
	group   singleflight.Group
}

// partKey is the first 128 bits of the sha256 of plan, repository, digest and applicable
// authorities.
type partKey [16]byte

func newSharedParts() *sharedParts {
	return &sharedParts{m: map[partKey]weak.Pointer[Value]{}, sweepAt: minSweep}
}

const minSweep = 1024

func (t *sharedParts) get(k partKey) *Value {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.m[k].Value()
}

func (t *sharedParts) put(k partKey, v *Value) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.m[k] = weak.Make(v)
	if len(t.m) < 2*t.sweepAt {
		return
	}
	for k, p := range t.m {
		if p.Value() == nil {
			delete(t.m, k)
		}
	}
	t.sweepAt = max(len(t.m), minSweep)
}

// Len is the number of parts the table holds that are still alive.
func (t *sharedParts) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, p := range t.m {
		if p.Value() != nil {
			n++
		}
	}
	return n
}

// partKeyOf names the per-digest part of ref under pl: what the verification of digest reads
// depends on the repository (signatures are read there) and on the authorities that apply to
// ref (an authority's images globs may name tags).
func (s *Service) partKeyOf(ref imageref.Ref, pl plan, digest string) partKey {
	b := make([]byte, 0, 160)
	b = strconv.AppendBool(b, pl.attestations)
	b = append(b, 0)
	b = append(b, ref.Host()...)
	b = append(b, '/')
	b = append(b, ref.Path...)
	b = append(b, 0)
	b = append(b, digest...)
	for i, a := range s.auths {
		if a.applies(ref) {
			b = append(b, 0)
			b = strconv.AppendInt(b, int64(i), 10)
		}
	}
	sum := sha256.Sum256(b)
	return partKey(sum[:16])
}

// loadShared is the pipelines' loader: the cached form of ref's answer under pl, verifying the
// digest only when no fresh per-digest part is known.
func (s *Service) loadShared(ctx context.Context, ref imageref.Ref, pl plan) (*Value, error) {
	parts := s.parts[pl.attestations]
	if parts == nil {
		v, err := s.lookup(ctx, ref, pl, nil)
		if err != nil {
			return nil, err
		}
		return s.cachedForm(ref, v)
	}
	var head *v1.Descriptor
	digest := ref.Digest
	if digest == "" {
		d, err := s.reg.Head(ctx, ref)
		if err != nil {
			return nil, err
		}
		head, digest = d, d.Digest.String()
	}
	k := s.partKeyOf(ref, pl, digest)
	if p := parts.get(k); p != nil && !s.expired(pl, p) {
		return s.bind(ctx, ref, p)
	}
	var (
		led bool
		own *Value // the cached form of ref when this key ran the verification
	)
	r, err, _ := parts.group.Do(string(k[:]), func() (any, error) {
		led = true
		v, err := s.lookup(ctx, ref, pl, head)
		if err != nil {
			return nil, err
		}
		if own, err = s.cachedForm(ref, v); err != nil {
			return nil, err
		}
		p := own.shared()
		parts.put(k, p)
		return p, nil
	})
	switch {
	case led && err != nil:
		return nil, err
	case led:
		return own, nil
	case err != nil:
		// The verification another key ran failed, perhaps for that key's own reasons (its
		// tag, deadline or request budget): this key verifies for itself.
		v, err := s.lookup(ctx, ref, pl, head)
		if err != nil {
			return nil, err
		}
		return s.cachedForm(ref, v)
	}
	return s.bind(ctx, ref, r.(*Value))
}

// bind is the cached form of ref sharing the per-digest part p: p itself, or for a
// name:tag@digest key p with what the tag points at now (one HEAD, as the verification does).
func (s *Service) bind(ctx context.Context, ref imageref.Ref, p *Value) (*Value, error) {
	if ref.Digest == "" || ref.Tag == "" {
		return p, nil
	}
	t := ref
	t.Digest = ""
	k := &keyPart{part: p}
	d, err := s.reg.Head(ctx, t)
	switch {
	case err == nil:
		k.tagDigest = d.Digest.String()
	case fatal(err):
		return nil, err
	default:
		k.tagError = err.Error()
	}
	return &Value{key: k, signed: p.signed, loadedAt: p.loadedAt}, nil
}

// cachedForm splits a looked-up answer of ref into the per-digest part and, for a
// name:tag@digest key, the per-key value pointing at it.
func (s *Service) cachedForm(ref imageref.Ref, v *Value) (*Value, error) {
	p, err := v.split(s.packer)
	if err != nil {
		return nil, err
	}
	if ref.Digest == "" || ref.Tag == "" {
		return p, nil
	}
	return &Value{key: &keyPart{part: p, tagDigest: v.TagDigest, tagError: v.TagError}, signed: p.signed, loadedAt: p.loadedAt}, nil
}

// expired reports whether the per-digest part of v (a cached value) must be verified again:
// unsigned after UnsignedTTL, signed after the cache's TTL.
func (s *Service) expired(pl plan, v *Value) bool {
	if v == nil {
		return false
	}
	v = v.shared()
	age := s.now().Sub(v.loadedAt)
	if !v.signed {
		return age >= s.unsigned
	}
	ttl := s.ttl[pl.attestations]
	return ttl > 0 && age >= ttl
}

// serve renders the cached form v as ref's answer.
func (s *Service) serve(ref imageref.Ref, v *Value, stale bool) (json.RawMessage, error) {
	if v.packed.IsZero() && v.key == nil {
		c := *v // a looked-up answer (not cached form)
		c.Stale = stale
		return json.Marshal(&c)
	}
	if k := v.key; k != nil {
		return k.part.render(ref.Normalized(), k.tagDigest, k.tagError, false, stale)
	}
	// name:tag: the tag points at the digest; name@digest: no tag.
	return v.render(ref.Normalized(), "", "", ref.Digest == "", stale)
}

// shared is the per-digest part of a cached value: v itself, or the part a name:tag@digest key
// points at.
func (v *Value) shared() *Value {
	if v.key != nil {
		return v.key.part
	}
	return v
}

// split encodes v's per-digest fields once and returns the per-digest part: signed, loadedAt
// and the fields from "digest" to "platformsTruncated", a 0 byte, then "rejected" and "reads",
// as encoding/json writes them, packed by p (nil: not shared with other answers).
func (v *Value) split(p *cache.Packer) (*Value, error) {
	if v.Answer == nil {
		return nil, errors.New("verify: no answer to encode")
	}
	a := *v.Answer
	a.Image, a.TagDigest, a.TagError = "", "", ""
	raw, err := json.Marshal(&a)
	if err != nil {
		return nil, err
	}
	at := bytes.Index(raw, []byte(tagDigestField))
	if !bytes.HasPrefix(raw, []byte(emptyImage)) || at < 0 || raw[len(raw)-1] != '}' {
		return nil, errors.New("verify: unexpected answer encoding")
	}
	b := make([]byte, 0, len(raw))
	b = append(b, raw[len(emptyImage):at]...)
	b = append(b, 0)
	b = append(b, raw[at+len(tagDigestField):len(raw)-1]...)
	return &Value{signed: v.Signed, loadedAt: v.loadedAt, packed: p.Pack(b)}, nil
}

const (
	emptyImage     = `{"image":"",`
	tagDigestField = `,"tagDigest":""`
	digestField    = `"digest":"`
	staleField     = `,"stale":true`
)

// render is the answer of the per-digest part v for image, with tagDigest and tagError (or,
// with tagOf, the part's own digest as tagDigest): byte for byte what encoding/json writes for
// the whole Value.
func (v *Value) render(image, tagDigest, tagError string, tagOf, stale bool) (json.RawMessage, error) {
	n := v.packed.Len()
	out := make([]byte, 0, n+len(image)+len(tagDigest)+len(tagError)+96)
	out = append(out, `{"image":`...)
	out = appendString(out, image)
	out = append(out, ',')
	mark := len(out)
	out, err := v.packed.AppendUnpacked(out)
	if err != nil {
		return nil, err
	}
	z := bytes.IndexByte(out[mark:], 0)
	if z < 0 || !bytes.HasPrefix(out[mark:], []byte(digestField)) {
		return nil, errors.New("verify: cached answer is not a per-digest part")
	}
	z += mark
	var tail []byte
	if z+1 < len(out) {
		tail = bytes.Clone(out[z+1:])
	}
	if tagOf {
		d := out[mark+len(digestField):]
		tagDigest = string(d[:bytes.IndexByte(d, '"')])
	}
	out = append(out[:z], `,"tagDigest":`...)
	out = appendString(out, tagDigest)
	if tagError != "" {
		out = append(out, `,"tagError":`...)
		out = appendString(out, tagError)
	}
	out = append(out, tail...)
	if stale {
		out = append(out, staleField...)
	}
	return append(out, '}'), nil
}

// appendString appends s as encoding/json writes a string: directly when every byte is
// printable ASCII that it does not escape, else through encoding/json.
func appendString(out []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			b, err := json.Marshal(s)
			if err != nil { // never for a string
				return append(out, `""`...)
			}
			return append(out, b...)
		}
	}
	out = append(out, '"')
	out = append(out, s...)
	return append(out, '"')
}

// partsFor is the table of per-digest parts of one pipeline, when it caches (nil otherwise).
func partsFor(c *cache.Cache[*Value]) (*sharedParts, time.Duration) {
	if c == nil {
		return nil, 0
	}
	return newSharedParts(), c.TTL()
}
