package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/imagetrust/imagetrust/provider/internal/batch"
	"github.com/imagetrust/imagetrust/provider/internal/config"
	"github.com/imagetrust/imagetrust/provider/internal/imageref"
	"github.com/imagetrust/imagetrust/provider/internal/registry"
	"github.com/imagetrust/imagetrust/provider/internal/resolve"
	"github.com/imagetrust/imagetrust/provider/internal/scan"
	"github.com/imagetrust/imagetrust/provider/internal/verify"
)

// newScan builds the /v1/scan service on the shared registry client, pool and memo: a verify
// service of its own with the scanner and VEX authorities (so scans are verified by the same
// code as /v1/verify's attestations, and these authorities never count as image signers), and
// a cache of its own; decoded indexes are shared with resolve and verify.
func newScan(ctx context.Context, cfg *config.Config, rc *registry.Client, pool *batch.Pool, refs *imageref.Memo, indexes *resolve.Indexes, o Options) (*scan.Service, error) {
	sc := cfg.Scan
	reg := o.Metrics
	op, err := watchOperator(ctx, cfg, o)
	if err != nil {
		return nil, err
	}
	auths := append(append([]config.Authority{}, sc.Scanners...), sc.VEXAuthorities...)
	vs, err := verify.New(ctx, verify.Options{
		Authorities: auths,
		Registry:    rc,
		Pool:        pool,
		Refs:        refs,
		Indexes:     indexes,
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
		Operator:       op,
	})
}

// watchOperator starts the Trivy Operator informers when scan.trivyOperator.enabled and
// returns the index they fill (nil when the source is off). The provider does not start
// until the reports are listed.
func watchOperator(ctx context.Context, cfg *config.Config, o Options) (*scan.OperatorIndex, error) {
	to := cfg.Scan.TrivyOperator
	if !to.Enabled {
		return nil, nil
	}
	if o.Dynamic == nil {
		return nil, errors.New("scan.trivyOperator.enabled: no Kubernetes client (set KUBECONFIG or run in a cluster)")
	}
	idx := scan.NewOperatorIndex()
	err := scan.WatchOperatorReports(ctx, scan.OperatorWatchOptions{
		Client:     o.Dynamic,
		Index:      idx,
		Namespaces: to.Namespaces,
		Resync:     to.Resync.D(),
		Limits:     scan.Limits{ReportBytes: cfg.Scan.MaxReportBytes, ReportFindings: cfg.Scan.MaxReportFindings, Findings: cfg.Scan.MaxFindings},
		OnError: func(id string, err error) {
			if o.Logger != nil {
				o.Logger.Warn("Trivy Operator report ignored", slog.String("object", id), slog.String("error", err.Error()))
			}
		},
	})
	if err != nil {
		return nil, fmt.Errorf("scan.trivyOperator: %w", err)
	}
	return idx, nil
}
