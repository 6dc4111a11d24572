package app

import (
	"github.com/imagetrust/imagetrust/provider/internal/attest"
	"github.com/imagetrust/imagetrust/provider/internal/batch"
	"github.com/imagetrust/imagetrust/provider/internal/config"
	"github.com/imagetrust/imagetrust/provider/internal/imageref"
	"github.com/imagetrust/imagetrust/provider/internal/registry"
	"github.com/imagetrust/imagetrust/provider/internal/verify"
)

// newAttestations builds the /v1/attestations service on the shared registry client, pool and
// memo, verifying with the /v1/verify service (the same authorities, compiled once) and
// caching in a cache of its own, so full predicates never enter the verify cache.
func newAttestations(cfg *config.Config, vs *verify.Service, rc *registry.Client, pool *batch.Pool, refs *imageref.Memo, o Options) (*attest.Service, error) {
	c, err := newCache[*attest.Value](cfg, "attestations", o.Metrics)
	if err != nil {
		return nil, err
	}
	a := cfg.Attestations
	return attest.New(attest.Options{
		Verifier: vs,
		Registry: rc,
		Refs:     refs,
		Pool:     pool,
		Deadline: a.Deadline.D(),
		Cache:    c,
		EmptyTTL: config.DefaultUnsignedTTL,
		Limits: attest.Limits{
			Statements: a.MaxStatements, StatementBytes: a.MaxStatementBytes, ImageBytes: a.MaxImageBytes,
		},
		Registerer: o.Metrics,
	})
}
