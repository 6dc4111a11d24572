package app

import (
	"context"
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/imagetrust/imagetrust/provider/internal/batch"
	"github.com/imagetrust/imagetrust/provider/internal/config"
	"github.com/imagetrust/imagetrust/provider/internal/imageref"
	"github.com/imagetrust/imagetrust/provider/internal/registry"
	"github.com/imagetrust/imagetrust/provider/internal/scan"
	"github.com/imagetrust/imagetrust/provider/internal/verify"
)

// newScan builds the /v1/scan service on the shared registry client, pool and memo: a verify
// service of its own with the scanner and VEX authorities (so scans are verified by the same
// code as /v1/verify's attestations, and these authorities never count as image signers), and
// a cache of its own.
func newScan(ctx context.Context, cfg *config.Config, rc *registry.Client, pool *batch.Pool, refs *imageref.Memo, reg prometheus.Registerer) (*scan.Service, error) {
	sc := cfg.Scan
	if sc.TrivyOperator.Enabled {
		return nil, errors.New("scan.trivyOperator.enabled: the Trivy Operator source is not available in this provider build; set it to false")
	}
	auths := append(append([]config.Authority{}, sc.Scanners...), sc.VEXAuthorities...)
	vs, err := verify.New(ctx, verify.Options{
		Authorities: auths,
		Registry:    rc,
		Pool:        pool,
		Refs:        refs,
		Deadline:    sc.Deadline.D(),
		Limits:      verify.Limits{AttestationBytes: sc.MaxReportBytes + sc.MaxReportBytes/3 + 64<<10},
	})
	if err != nil {
		return nil, fmt.Errorf("scan: %w", err)
	}
	c, err := newCache[*scan.Value](cfg, "scan", reg)
	if err != nil {
		return nil, err
	}
	names := func(as []config.Authority) []string {
		out := make([]string, len(as))
		for i, a := range as {
			out[i] = a.Name
		}
		return out
	}
	return scan.New(scan.Options{
		Verifier:       vs,
		Registry:       rc,
		Pool:           pool,
		Refs:           refs,
		Cache:          c,
		Scanners:       names(sc.Scanners),
		VEXAuthorities: names(sc.VEXAuthorities),
		SARIF:          sc.UsesSARIF(),
		Deadline:       sc.Deadline.D(),
		ClockSkew:      sc.ClockSkew.D(),
		Limits:         scan.Limits{ReportBytes: sc.MaxReportBytes, ReportFindings: sc.MaxReportFindings, Findings: sc.MaxFindings},
		Registerer:     reg,
	})
}
