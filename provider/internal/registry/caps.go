package registry

import (
	"context"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"sync/atomic"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/imagetrust/imagetrust/provider/internal/wire"
)

// MaxResponseBytes caps the body of every registry response the provider reads — manifests,
// indexes, the referrers API, token answers, error bodies — except blobs, whose cap the caller
// gives (Blob's limit). go-containerregistry's own limit for a manifest is 100 MiB; the cap is
// enforced here, in the transport, while the body streams, so no code path reads more.
const MaxResponseBytes = 4 << 20

// MaxResponseHeaderBytes caps the header block of every registry response (net/http's default
// is 10 MiB a response). Registry headers are a few hundred bytes; a WWW-Authenticate challenge
// or a Link header a few hundred more.
const MaxResponseHeaderBytes = 64 << 10

// maxBlobResponseBytes caps a blob response read without a caller-given cap.
const maxBlobResponseBytes = 64 << 20

type bodyCapKey struct{}

// withBodyCap makes the transport cap responses to requests made with ctx at n bytes.
func withBodyCap(ctx context.Context, n int64) context.Context {
	return context.WithValue(ctx, bodyCapKey{}, n)
}

// responseCap is the byte cap for the response to req.
func responseCap(req *http.Request) int64 {
	if n, ok := req.Context().Value(bodyCapKey{}).(int64); ok && n > 0 {
		return n
	}
	if strings.Contains(req.URL.Path, "/blobs/") {
		return maxBlobResponseBytes
	}
	return MaxResponseBytes
}

func tooLargeResponse(req *http.Request, limit int64) *TooLargeError {
	return &TooLargeError{What: "registry response to " + req.Method + " " + req.URL.Redacted(), Max: limit}
}

// cappedBody fails a read once more than limit bytes have come, with a *TooLargeError naming
// the request and the cap, and reads no further.
type cappedBody struct {
	r     io.ReadCloser
	left  int64
	limit int64
	req   *http.Request
}

func (b *cappedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		// One byte more tells a body of exactly limit bytes from a longer one.
		var one [1]byte
		n, err := b.r.Read(one[:])
		if n > 0 {
			return 0, tooLargeResponse(b.req, b.limit)
		}
		return 0, err
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.r.Read(p)
	b.left -= int64(n)
	return n, err
}

// Close reads what is left of a small body (at most drainBytes, and never past the cap) before
// closing it, so that the connection can be reused.
func (b *cappedBody) Close() error {
	if b.left > 0 {
		_, _ = io.CopyN(io.Discard, b.r, min(b.left, drainBytes)) // best effort: a failed read just means no reuse
	}
	return b.r.Close()
}

// BudgetError means one key needed more registry requests than its budget: content a
// registry or tenant controls (an index with thousands of platforms, a referrer bomb) asked
// for more work than the provider gives one key. Not transient: failOpen never admits it.
type BudgetError struct {
	Max int64
}

func (e *BudgetError) Error() string {
	return e.Class().Message(fmt.Sprintf("the image needs more than %d registry requests, the budget of one key", e.Max))
}

// Class is wire.ClassLimitExceeded.
func (e *BudgetError) Class() wire.Class { return wire.ClassLimitExceeded }

type budgetKey struct{}

type requestBudget struct {
	left atomic.Int64
	max  int64
	// parent is the budget of the context this one was made under: a request spends from
	// both, so a nested budget (a verification inside a scan) never widens the outer one.
	parent *requestBudget
}

// WithRequestBudget returns a context under which at most n registry requests are sent (pings
// answered from memory are free); the next ones fail with a *BudgetError before they leave.
// Under a context that already has a budget, a request spends from both: the tighter one
// decides.
func WithRequestBudget(ctx context.Context, n int64) context.Context {
	parent, _ := ctx.Value(budgetKey{}).(*requestBudget)
	b := &requestBudget{max: n, parent: parent}
	b.left.Store(n)
	return context.WithValue(ctx, budgetKey{}, b)
}

// spend takes one request from every budget of req's context, if it has any.
func spend(req *http.Request) error {
	b, _ := req.Context().Value(budgetKey{}).(*requestBudget)
	for ; b != nil; b = b.parent {
		if b.left.Add(-1) < 0 {
			return &BudgetError{Max: b.max}
		}
	}
	return nil
}

// MaxPlatformFieldBytes caps each string of an index entry's platform (os, architecture,
// variant, os.version, features), which answers echo: real values are a few bytes ("linux",
// "arm64", "v8", "10.0.20348.2582").
const MaxPlatformFieldBytes = 128

// CheckPlatform returns a *TooLargeError when a string of p is longer than
// MaxPlatformFieldBytes (nil p is fine).
func CheckPlatform(p *v1.Platform) error {
	if p == nil {
		return nil
	}
	fields := append([]string{p.OS, p.Architecture, p.Variant, p.OSVersion}, p.OSFeatures...)
	fields = append(fields, p.Features...)
	for _, f := range fields {
		if len(f) > MaxPlatformFieldBytes {
			return &TooLargeError{What: "a platform field of an index entry", Max: MaxPlatformFieldBytes}
		}
	}
	return nil
}

// maxMediaTypeBytes caps a media type taken from a Content-Type header (RFC 6838: type and
// subtype are at most 127 characters each).
const maxMediaTypeBytes = 255

// headerMediaType is the media type of a Content-Type header, without parameters: "" when there
// is none, a *TooLargeError when it is longer than maxMediaTypeBytes, an error when it is not
// a media type. The value is echoed in answers, so it is never taken unchecked.
func headerMediaType(h http.Header) (types.MediaType, error) {
	ct := h.Get("Content-Type")
	if ct == "" {
		return "", nil
	}
	if len(ct) > 4*maxMediaTypeBytes {
		return "", &TooLargeError{What: "Content-Type header", Max: 4 * maxMediaTypeBytes}
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return "", fmt.Errorf("registry sent an invalid Content-Type %q: %w", ct, err)
	}
	if len(mt) > maxMediaTypeBytes {
		return "", &TooLargeError{What: "media type in Content-Type", Max: maxMediaTypeBytes}
	}
	return types.MediaType(mt), nil
}
