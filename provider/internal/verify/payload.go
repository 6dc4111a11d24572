package verify

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	sigpayload "github.com/sigstore/sigstore/pkg/signature/payload"

	"github.com/imagetrust/imagetrust/provider/internal/imageref"
)

// payloadGuess returns a function that knows the simple-signing payload of a cosign signature
// layer without reading it, when the layer holds the payload `cosign sign` writes by default.
//
// That payload is a pure function of the signed repository and digest, and a layer names its
// content by sha256. So the payload cosign would have written for this image is built here
// (with the package cosign uses, for the repository as go-containerregistry names it, which is
// what cosign signs: index.docker.io/library/nginx for nginx), and if its sha256 and size are
// the layer's digest and size, it is that layer's content: the blob read — a third of the
// requests of a key-signed image and a round trip on its critical path — is saved. Nothing is
// trusted that was not before: the signature is verified over these bytes exactly as over
// bytes read from the registry, and a layer with any other payload (annotations given to
// `cosign sign -a`, another repository, another digest, a tampered payload) does not match and
// is read and checked as always.
func payloadGuess(ref imageref.Ref, h v1.Hash) func(v1.Descriptor) []byte {
	var cand []byte
	built := false
	return func(l v1.Descriptor) []byte {
		if l.Digest.Algorithm != "sha256" {
			return nil
		}
		if !built {
			cand, built = simpleSigningPayload(ref, h), true
		}
		if cand == nil || int64(len(cand)) != l.Size {
			return nil
		}
		sum := sha256.Sum256(cand)
		if hex.EncodeToString(sum[:]) != l.Digest.Hex {
			return nil
		}
		return cand
	}
}

// simpleSigningPayload is the payload cosign's default signing writes for digest h of ref's
// repository (nil if it cannot be built).
//
// The payload depends on the digest only through its "docker-manifest-digest" string, so it is
// built with the package cosign uses once per repository and kept as the bytes before and after
// that string (payloadTemplates): a cold image costs a concatenation, not a reference parse and
// a reflective JSON encoding. A template that does not hold its digest exactly once is not kept.
func simpleSigningPayload(ref imageref.Ref, h v1.Hash) []byte {
	k := repoKey{ref.Domain, ref.Path}
	payloadTemplates.mu.Lock()
	t, ok := payloadTemplates.m[k]
	payloadTemplates.mu.Unlock()
	if ok {
		out := make([]byte, 0, len(t.before)+len(h.Algorithm)+1+len(h.Hex)+len(t.after))
		out = append(append(append(out, t.before...), h.Algorithm...), ':')
		return append(append(out, h.Hex...), t.after...)
	}
	b := packagePayload(ref, h)
	if b == nil {
		return nil
	}
	quoted := []byte(`"` + h.String() + `"`)
	if at := bytes.Index(b, quoted); at >= 0 && bytes.Count(b, quoted) == 1 {
		c := bytes.Clone(b) // the template shares nothing with the payload handed out
		t := payloadTemplate{before: c[:at+1], after: c[at+len(quoted)-1:]}
		payloadTemplates.mu.Lock()
		if len(payloadTemplates.m) >= maxPayloadTemplates {
			clear(payloadTemplates.m)
		}
		payloadTemplates.m[k] = t
		payloadTemplates.mu.Unlock()
	}
	return b
}

// packagePayload is the payload cosign's default signing writes for digest h of ref's repository,
// built by the package cosign uses (nil if it cannot be built).
func packagePayload(ref imageref.Ref, h v1.Hash) []byte {
	d, err := name.NewDigest(ref.Repository() + "@" + h.String())
	if err != nil {
		return nil
	}
	b, err := (&sigpayload.Cosign{Image: d}).MarshalJSON()
	if err != nil {
		return nil
	}
	return b
}

// repoKey names a repository as written in a reference.
type repoKey struct{ domain, path string }

// payloadTemplate is a repository's payload around its digest string; both parts are only read.
type payloadTemplate struct{ before, after []byte }

// maxPayloadTemplates bounds the kept templates; when full they are forgotten (forgetting costs
// one payload built by the package per repository).
const maxPayloadTemplates = 4096

var payloadTemplates = struct {
	mu sync.Mutex
	m  map[repoKey]payloadTemplate
}{m: map[repoKey]payloadTemplate{}}
