package registry

import (
	"context"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"sync/atomic"

	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/imagetrust/imagetrust/provider/internal/wire"
)

// MaxResponseBytes caps the body of every registry response the provider reads — manifests,
// indexes, the referrers API, token answers, error bodies — except blobs, whose cap the caller
// gives (Blob's limit). go-containerregistry's own limit for a manifest is 100 MiB; the cap is
// enforced here, in the transport, while the body streams, so no code path reads more.
const MaxResponseBytes = 4 << 20

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

func (b *cappedBody) Close() error { return b.r.Close() }

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
}

// WithRequestBudget returns a context under which at most n registry requests are sent (pings
// answered from memory are free); the next ones fail with a *BudgetError before they leave.
func WithRequestBudget(ctx context.Context, n int64) context.Context {
	b := &requestBudget{max: n}
	b.left.Store(n)
	return context.WithValue(ctx, budgetKey{}, b)
}

// spend takes one request from the budget of req's context, if it has one.
func spend(req *http.Request) error {
	b, ok := req.Context().Value(budgetKey{}).(*requestBudget)
	if !ok {
		return nil
	}
	if b.left.Add(-1) < 0 {
		return &BudgetError{Max: b.max}
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
