package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imagetrust/imagetrust/provider/internal/report"
)

func TestReportUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"report", "--format", "pdf"}, `unknown format "pdf"`},
		{[]string{"report", "--format", "html", "--apply"}, "--apply writes openreports or policyreport objects"},
		{[]string{"report", "--provider-url", "https://x", "--provider-config", "p.yaml"}, "exclusive"},
		{[]string{"report", "--provider-cert", "c.pem"}, "--provider-cert and --provider-key go together"},
		{[]string{"report", "extra"}, "report takes no arguments"},
	} {
		_, _, err := runCLI(tc.args...)
		if !errors.Is(err, errUsage) || exitCode(err) != 2 || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("imagetrust %s = %v (exit %d), want a usage error containing %q", strings.Join(tc.args, " "), err, exitCode(err), tc.want)
		}
	}
}

// TestReportUnreachable: a kubeconfig naming a port nothing listens on gives an error naming
// the API server, exit 1 (a real refused TCP connection).
func TestReportUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	kc := filepath.Join(t.TempDir(), "kubeconfig")
	y := fmt.Sprintf("apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {server: \"https://%s\", insecure-skip-tls-verify: true}\nusers:\n- name: u\n  user: {token: t}\ncontexts:\n- name: x\n  context: {cluster: c, user: u}\ncurrent-context: x\n", addr)
	if err := os.WriteFile(kc, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err = runCLI("report", "--kubeconfig", kc)
	var ue *report.UnreachableError
	if !errors.As(err, &ue) || exitCode(err) != 1 || !strings.Contains(err.Error(), "API server https://"+addr+" is unreachable") {
		t.Errorf("report against a closed port = %v, want UnreachableError naming https://%s, exit 1", err, addr)
	}
	_, _, err = runCLI("report", "--kubeconfig", kc, "--context", "nope")
	if err == nil || !strings.Contains(err.Error(), `context "nope" does not exist`) {
		t.Errorf("report --context nope = %v, want an error naming the context", err)
	}
}
