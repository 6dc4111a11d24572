package attest

import (
	"context"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/imagetrust/imagetrust/provider/internal/imageref"
	"github.com/imagetrust/imagetrust/provider/internal/registry"
	"github.com/imagetrust/imagetrust/provider/internal/verify"
)

// Lookup answers one parsed reference: at most one HEAD for a tag, then the verified
// statements of the digest, within the request budget of one key (verify.MaxKeyRequests).
func (s *Service) Lookup(ctx context.Context, ref imageref.Ref) (*Value, error) {
	ctx = registry.WithRequestBudget(ctx, verify.MaxKeyRequests)
	digest := ref.Digest
	if digest == "" {
		d, err := s.o.Registry.Head(ctx, ref)
		if err != nil {
			return nil, err
		}
		digest = d.Digest.String()
	}
	h, err := v1.NewHash(digest)
	if err != nil {
		return nil, &imageref.InvalidError{Ref: ref.Original, Reason: err.Error()}
	}
	c, err := s.o.Verifier.Contents(ctx, ref, h)
	if err != nil {
		return nil, err
	}
	return newValue(ref.Normalized(), h.String(), c, s.o.Limits)
}
