package app

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/imagetrust/imagetrust/provider/internal/config"
)

// The Trivy Operator source needs a Kubernetes client; without one the provider does not
// start, naming the setting.
func TestNewTrivyOperatorNeedsClient(t *testing.T) {
	cfg := &config.Config{Registries: []config.Registry{{Host: "127.0.0.1:5000", Insecure: true}}}
	cfg.ApplyDefaults()
	cfg.Scan.TrivyOperator.Enabled = true
	_, err := New(context.Background(), cfg, listen(t), listen(t), Options{
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Metrics: prometheus.NewRegistry()})
	if err == nil || !strings.Contains(err.Error(), "scan.trivyOperator.enabled: no Kubernetes client") {
		t.Errorf("New() = %v, want the missing client named", err)
	}
}
