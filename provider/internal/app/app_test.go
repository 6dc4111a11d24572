package app

import (
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/imagetrust/imagetrust/provider/internal/config"
)

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	return ln
}

// The assembly refuses to start without what it needs, naming it, before touching any file.
func TestNewRefusesMissingDependencies(t *testing.T) {
	lg := slog.New(slog.NewTextHandler(io.Discard, nil))
	withKube := &config.Config{Auth: config.Auth{Kubernetes: &config.KubernetesAuth{Namespace: "imagetrust"}}}
	tests := []struct {
		name string
		cfg  *config.Config
		o    Options
		want string
	}{
		{"no logger", &config.Config{}, Options{Metrics: prometheus.NewRegistry()}, "Options.Logger and Options.Metrics are required"},
		{"no metrics", &config.Config{}, Options{Logger: lg}, "Options.Logger and Options.Metrics are required"},
		{"pull secrets without a client", withKube, Options{Logger: lg, Metrics: prometheus.NewRegistry()}, "auth.kubernetes is set but no Kubernetes client was given"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(context.Background(), tt.cfg, listen(t), listen(t), tt.o)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New() = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}
