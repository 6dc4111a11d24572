//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/imagetrust/imagetrust/provider/internal/imageref"
	"github.com/imagetrust/imagetrust/provider/internal/pki"
	"github.com/imagetrust/imagetrust/provider/internal/report"
)

// Report scenario objects: 4 namespaces x (12 Pods + 1 Deployment), all violating a dryrun
// K8sTrustedImageSource (52) and, for the unsigned images, a dryrun K8sImageSignature (40):
// both above Gatekeeper's default --constraint-violations-limit of 20.
var reportNamespaces = []string{"rep-a", "rep-b", "rep-c", "rep-d"}

const (
	reportSource    = "K8sTrustedImageSource/e2e-report-source"
	reportSignature = "K8sImageSignature/e2e-report-signed"
	podsPerNS       = 12
	unsignedPerNS   = 9
)

// reportScenario: imagetrust report against the live stack (see the comment on each step).
func (s *stack) reportScenario(t *testing.T) {
	t.Run("report", func(t *testing.T) {
		bin := filepath.Join(s.dir, "imagetrust")
		built := make(chan error, 1)
		go func() {
			cmd := exec.Command("go", "build", "-o", bin, "./provider/cmd/imagetrust")
			cmd.Dir = repoRoot
			out, err := cmd.CombinedOutput()
			if err != nil {
				err = fmt.Errorf("go build ./provider/cmd/imagetrust: %w\n%s", err, out)
			}
			built <- err
		}()
		s.reportObjects(t)
		if err := <-built; err != nil {
			t.Fatal(err)
		}
		s.waitReportAudit(t)
		s.reportStatus(t, bin)
		complete := s.reportComplete(t, bin)
		s.reportHTML(t, bin)
		s.reportDiff(t, bin, complete)
		s.reportErrors(t, bin)
		s.reportApply(t, bin)
	})
}

func (s *stack) reportObjects(t *testing.T) {
	var b strings.Builder
	for _, ns := range reportNamespaces {
		fmt.Fprintf(&b, "apiVersion: v1\nkind: Namespace\nmetadata: {name: %s}\n---\n", ns)
	}
	fmt.Fprintf(&b, `apiVersion: constraints.gatekeeper.sh/v1beta1
kind: K8sTrustedImageSource
metadata: {name: e2e-report-source}
spec:
  enforcementAction: dryrun
  match:
    namespaces: [%[1]s]
    kinds:
    - {apiGroups: [""], kinds: [Pod]}
    - {apiGroups: [apps], kinds: [Deployment]}
  parameters:
    allowedRegistries: [registry.bank.internal]
---
apiVersion: constraints.gatekeeper.sh/v1beta1
kind: K8sImageSignature
metadata: {name: e2e-report-signed}
spec:
  enforcementAction: dryrun
  match:
    namespaces: [%[1]s]
    kinds:
    - {apiGroups: [""], kinds: [Pod]}
    - {apiGroups: [apps], kinds: [Deployment]}
  parameters:
    authorities: [e2e-key]
    failOpen: false
`, strings.Join(reportNamespaces, ", "))
	s.kubectlOK(b.String(), "apply", "-f", "-")
	b.Reset()
	for _, ns := range reportNamespaces {
		for i := range podsPerNS {
			img := s.regHost + "/demo/app:v1"
			if i >= unsignedPerNS {
				img = s.regHost + "/demo/signed:1.0.0"
			}
			b.WriteString(pod(ns, fmt.Sprintf("p%02d", i), img) + "\n---\n")
		}
		b.WriteString(deployment(ns, "web", s.regHost+"/demo/app:v2") + "\n---\n")
	}
	waitFor(t, 60*time.Second, "create the report scenario's objects", func() error {
		out, err := s.kubectlCmd(b.String(), "apply", "-f", "-")
		if err != nil {
			return fmt.Errorf("%w: %s", err, out)
		}
		return nil
	}, s.gatekeeper)
}

type constraintStatus struct {
	Kind     string
	Metadata struct{ Name string }
	Status   struct {
		AuditTimestamp  string `json:"auditTimestamp"`
		TotalViolations int64  `json:"totalViolations"`
		Violations      []struct{ Namespace, Name string }
	}
}

func (s *stack) constraintStatuses(t *testing.T) map[string]constraintStatus {
	t.Helper()
	out := s.kubectlOK("", "get", "constraints", "-o", "json")
	var list struct{ Items []constraintStatus }
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatal(err)
	}
	m := map[string]constraintStatus{}
	for _, c := range list.Items {
		m[c.Kind+"/"+c.Metadata.Name] = c
	}
	return m
}

// waitReportAudit waits until audit has counted every object and kept 20 of each.
func (s *stack) waitReportAudit(t *testing.T) {
	want := map[string]int64{reportSource: int64(len(reportNamespaces) * (podsPerNS + 1)), reportSignature: int64(len(reportNamespaces) * (unsignedPerNS + 1))}
	start := time.Now()
	waitFor(t, 120*time.Second, "audit counts the report scenario's violations", func() error {
		st := s.constraintStatuses(t)
		for id, n := range want {
			c := st[id]
			if c.Status.TotalViolations != n || len(c.Status.Violations) != 20 {
				return fmt.Errorf("%s: totalViolations %d (want %d), stored %d (want 20)", id, c.Status.TotalViolations, n, len(c.Status.Violations))
			}
		}
		return nil
	}, s.gatekeeper, s.provider)
	s.logf("scenario %q: audit counted %v after %v (status stores 20 each)", "report", want, time.Since(start).Round(time.Second))
}

// runReport runs the CLI; it returns stdout, stderr and the exit code.
func (s *stack) runReport(t *testing.T, bin string, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{"report"}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	err := cmd.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError) //nolint:errorlint // Run returns it unwrapped
		if !ok {
			t.Fatalf("imagetrust report %s: %v", strings.Join(args, " "), err)
		}
		code = ee.ExitCode()
	}
	s.logf("$ imagetrust report %s  (exit %d, %v)", strings.Join(args, " "), code, time.Since(start).Round(time.Millisecond))
	return out.String(), errb.String(), code
}

func (s *stack) reportJSON(t *testing.T, bin string, args ...string) *report.Report {
	t.Helper()
	out, errOut, code := s.runReport(t, bin, append([]string{"--kubeconfig=" + s.kubeconfig, "--format=json", "--audit-interval=5s"}, args...)...)
	if code != 0 {
		t.Fatalf("imagetrust report exit %d: %s", code, errOut)
	}
	var r report.Report
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("report JSON: %v\n%s", err, out)
	}
	return &r
}

func findConstraint(r *report.Report, id string) report.Constraint {
	for _, c := range r.Constraints {
		if c.ID() == id {
			return c
		}
	}
	return report.Constraint{}
}

// reportStatus: from status alone the report reproduces every totalViolations and says how
// many rows status dropped.
func (s *stack) reportStatus(t *testing.T, bin string) {
	r := s.reportJSON(t, bin)
	st := s.constraintStatuses(t)
	var sum int64
	for id, c := range st {
		got := findConstraint(r, id)
		if got.TotalViolations != c.Status.TotalViolations || got.Stored != len(c.Status.Violations) {
			t.Errorf("%s: report total %d stored %d, status total %d stored %d", id, got.TotalViolations, got.Stored, c.Status.TotalViolations, len(c.Status.Violations))
		}
		sum += c.Status.TotalViolations
	}
	if r.Summary.TotalViolations != sum || len(r.Constraints) != len(st) {
		t.Errorf("summary total %d over %d constraints, want %d over %d", r.Summary.TotalViolations, len(r.Constraints), sum, len(st))
	}
	if r.Evidence.KubernetesVersion != kubeVersion || len(r.Evidence.Templates) < 3 || r.Evidence.Templates[0].SHA256 == "" {
		t.Errorf("evidence = %+v", r.Evidence)
	}
	capped := 0
	for _, h := range r.Health {
		if h.Check == report.CheckCapped && (h.Object == reportSource || h.Object == reportSignature) {
			capped++
		}
	}
	if capped != 2 || r.Summary.Unlisted < 52+40-40 {
		t.Errorf("status-only report: %d capped findings for the scenario's constraints (want 2), %d unlisted", capped, r.Summary.Unlisted)
	}
	s.logf("scenario %q: status-only report: total %d, listed %d, unlisted %d, health %d", "report", r.Summary.TotalViolations, r.Summary.Listed, r.Summary.Unlisted, len(r.Health))
}

// reportComplete: --complete lists every violating object status dropped, via re-evaluation
// with the provider over mTLS for the signature template, and the rollups count them.
func (s *stack) reportComplete(t *testing.T, bin string) *report.Report {
	gk := s.certs.gatekeeperDir
	start := time.Now()
	r := s.reportJSON(t, bin, "--complete",
		fmt.Sprintf("--provider-url=https://127.0.0.1:%d", s.providerPort),
		"--provider-ca="+filepath.Join(s.certs.providerDir, pki.CAFile),
		"--provider-cert="+filepath.Join(gk, pki.CertFile), "--provider-key="+filepath.Join(gk, pki.KeyFile))
	s.logf("scenario %q: --complete report in %v: listed %d (%d from status, %d re-evaluated), mismatches %d",
		"report", time.Since(start).Round(time.Millisecond), r.Summary.Listed, r.Summary.FromStatus, r.Summary.Reevaluated, r.Summary.Mismatches)

	rows := map[string]map[string]string{} // constraint -> ns/name -> source
	for _, v := range r.Violations {
		if rows[v.Constraint] == nil {
			rows[v.Constraint] = map[string]string{}
		}
		rows[v.Constraint][v.Namespace+"/"+v.Kind+"/"+v.Name] = v.Source
	}
	st := s.constraintStatuses(t)
	for _, id := range []string{reportSource, reportSignature} {
		c := findConstraint(r, id)
		if !c.Completed || c.Mismatch != "" || int64(c.Listed) != c.TotalViolations || c.Reevaluated != int(c.TotalViolations)-20 {
			t.Errorf("%s after --complete: %+v", id, c)
		}
		stored := map[string]bool{}
		for _, v := range st[id].Status.Violations {
			stored[v.Namespace+"/"+v.Name] = true
		}
		for _, ns := range reportNamespaces {
			for i := range podsPerNS {
				if id == reportSignature && i >= unsignedPerNS {
					continue
				}
				key := fmt.Sprintf("%s/Pod/p%02d", ns, i)
				want := report.SourceReevaluated
				if stored[fmt.Sprintf("%s/p%02d", ns, i)] {
					want = report.SourceStatus
				}
				if got := rows[id][key]; got != want {
					t.Errorf("%s: row %s source %q, want %q", id, key, got, want)
				}
			}
			if rows[id][ns+"/Deployment/web"] == "" {
				t.Errorf("%s: no row for Deployment %s/web", id, ns)
			}
		}
	}
	for _, n := range r.Rollups.ByNamespace {
		for _, ns := range reportNamespaces {
			if n.Key == ns && (n.Violations != podsPerNS+1+unsignedPerNS+1 || n.Objects != podsPerNS+1) {
				t.Errorf("namespace rollup %s = %+v, want %d violations over %d objects", ns, n, podsPerNS+1+unsignedPerNS+1, podsPerNS+1)
			}
		}
	}
	// Image rollup: the images as the objects hold them (the mutators pin tags to digests).
	wantImg := map[string][2]int{} // normalised image -> violations, workloads
	out := s.kubectlOK("", "get", "pods,deployments", "-A", "-o", `jsonpath={range .items[*]}{.metadata.namespace}{" "}{.metadata.name}{" "}{.spec.containers[0].image}{.spec.template.spec.containers[0].image}{"\n"}{end}`)
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) != 3 || !strings.HasPrefix(f[0], "rep-") {
			continue
		}
		ref, err := imageref.Parse(f[2])
		if err != nil {
			t.Fatalf("%s/%s image %q: %v", f[0], f[1], f[2], err)
		}
		img := ref.Normalized()
		n := 2
		if strings.Contains(f[2], "/demo/signed:") {
			n = 1
		}
		w := wantImg[img]
		wantImg[img] = [2]int{w[0] + n, w[1] + 1}
	}
	for _, ir := range r.Rollups.ByImage {
		if w, ok := wantImg[ir.Image]; ok {
			if ir.Violations != w[0] || ir.Workloads != w[1] || len(ir.Namespaces) != len(reportNamespaces) {
				t.Errorf("image rollup %s = %+v, want %d violations, %d workloads, 4 namespaces", ir.Image, ir, w[0], w[1])
			}
			if ir.Facts == nil || !strings.HasPrefix(ir.Facts.Digest, "sha256:") {
				t.Errorf("image %s: provider facts %+v, want a digest", ir.Image, ir.Facts)
			} else if want := map[bool]string{true: "yes", false: "no"}[strings.Contains(ir.Image, "/demo/signed:")]; ir.Facts.Signed != want {
				t.Errorf("image %s: signed %q, want %q", ir.Image, ir.Facts.Signed, want)
			}
			delete(wantImg, ir.Image)
		}
	}
	if len(wantImg) != 0 {
		t.Errorf("image rollup lacks %v", wantImg)
	}
	return r
}

// reportHTML: the HTML report opened in headless Chromium shows the summary numbers and both
// charts; the screenshot is kept as a test artifact.
func (s *stack) reportHTML(t *testing.T, bin string) {
	chromium := os.Getenv("CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	if _, err := os.Stat(chromium); err != nil {
		t.Fatalf("chromium not installed (%v): make e2e installs Debian's chromium package", err)
	}
	page := filepath.Join(s.dir, "report.html")
	gk := s.certs.gatekeeperDir
	_, errOut, code := s.runReport(t, bin, "--kubeconfig="+s.kubeconfig, "--format=html", "--output-file="+page, "--complete",
		"--provider-cert="+filepath.Join(gk, pki.CertFile), "--provider-key="+filepath.Join(gk, pki.KeyFile), "--audit-interval=5s")
	if code != 0 {
		t.Fatalf("html report: exit %d: %s", code, errOut)
	}
	var want report.Report
	jsonOut, _, _ := s.runReport(t, bin, "--kubeconfig="+s.kubeconfig, "--format=json", "--complete",
		"--provider-cert="+filepath.Join(gk, pki.CertFile), "--provider-key="+filepath.Join(gk, pki.KeyFile))
	if err := json.Unmarshal([]byte(jsonOut), &want); err != nil {
		t.Fatal(err)
	}
	artifacts := os.Getenv("E2E_ARTIFACTS")
	if artifacts == "" {
		artifacts = filepath.Join(os.TempDir(), "imagetrust-e2e-artifacts")
	}
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(artifacts, "report.png")
	_ = os.Remove(shot)
	browse := func(extra ...string) string {
		args := append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
			"--disable-background-networking", "--disable-component-update", "--disable-sync",
			"--user-data-dir=" + t.TempDir(), "--window-size=1400,1800"}, extra...)
		args = append(args, "file://"+page)
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, chromium, args...)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			t.Fatalf("chromium %v: %v\n%s", extra, err, errb.String())
		}
		return out.String()
	}
	browse("--screenshot=" + shot)
	dom := browse("--dump-dom")
	if err := os.WriteFile(filepath.Join(artifacts, "report.dom.html"), []byte(dom), 0o644); err != nil {
		t.Fatal(err)
	}
	for id, n := range map[string]int64{"sum-total": want.Summary.TotalViolations, "sum-listed": int64(want.Summary.Listed),
		"sum-reevaluated": int64(want.Summary.Reevaluated), "sum-namespaces": int64(want.Summary.Namespaces), "sum-images": int64(want.Summary.Images)} {
		if !strings.Contains(dom, fmt.Sprintf(`id="%s">%d<`, id, n)) {
			t.Errorf("rendered DOM lacks %s = %d", id, n)
		}
	}
	for _, chart := range []string{"chart-constraints", "chart-namespaces"} {
		m := regexp.MustCompile(`(?s)<svg id="` + chart + `".*?</svg>`).FindString(dom)
		if strings.Count(m, `<rect class="bar"`) < 2 {
			t.Errorf("rendered DOM: chart %s has %d bars", chart, strings.Count(m, `<rect class="bar"`))
		}
	}
	for _, ns := range reportNamespaces {
		if !strings.Contains(dom, `data-key="`+ns+`"`) {
			t.Errorf("namespace chart lacks a bar for %s", ns)
		}
	}
	f, err := os.Open(shot)
	if err != nil {
		t.Fatalf("no screenshot: %v", err)
	}
	defer func() { _ = f.Close() }() // read-only
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("screenshot %s: %v", shot, err)
	}
	// The chart bars are #c0392b: the screenshot must show them.
	red := 0
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y += 2 {
		for x := b.Min.X; x < b.Max.X; x += 2 {
			r, g, bl, _ := img.At(x, y).RGBA()
			if r>>8 > 170 && r>>8 < 215 && g>>8 > 40 && g>>8 < 75 && bl>>8 > 25 && bl>>8 < 60 {
				red++
			}
		}
	}
	if red < 200 {
		t.Errorf("screenshot %s shows %d bar-coloured samples; the charts did not render", shot, red)
	}
	s.logf("scenario %q: HTML report rendered by Chromium: %dx%d screenshot %s (%d bar samples), DOM %d bytes", "report", b.Dx(), b.Dy(), shot, red, len(dom))
}

// reportDiff: --diff against an earlier JSON report names the new and the fixed violations.
func (s *stack) reportDiff(t *testing.T, bin string, before *report.Report) {
	old := filepath.Join(s.dir, "report-before.json")
	b, err := json.Marshal(before)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(old, b, 0o644); err != nil {
		t.Fatal(err)
	}
	s.kubectlOK("", "delete", "pod", "-n", "rep-d", "p00", "--wait=false")
	waitFor(t, 30*time.Second, "create rep-d/p99", func() error {
		out, err := s.kubectlCmd(pod("rep-d", "p99", s.regHost+"/demo/app:v1"), "apply", "-f", "-")
		if err != nil {
			return fmt.Errorf("%w: %s", err, out)
		}
		return nil
	}, s.gatekeeper)
	gk := s.certs.gatekeeperDir
	r := s.reportJSON(t, bin, "--complete", "--diff="+old,
		"--provider-cert="+filepath.Join(gk, pki.CertFile), "--provider-key="+filepath.Join(gk, pki.KeyFile))
	d := r.Diff
	if d == nil {
		t.Fatal("--diff: no diff in the report")
	}
	names := func(vs []report.Violation) map[string]int {
		m := map[string]int{}
		for _, v := range vs {
			m[v.Namespace+"/"+v.Name]++
		}
		return m
	}
	if n := names(d.New); n["rep-d/p99"] != 2 || len(n) != 1 {
		t.Errorf("--diff new = %v, want rep-d/p99 twice (both constraints)", n)
	}
	if f := names(d.Fixed); f["rep-d/p00"] != 2 || len(f) != 1 {
		t.Errorf("--diff fixed = %v, want rep-d/p00 twice", f)
	}
	s.logf("scenario %q: --diff: %d new, %d fixed, %d unchanged", "report", len(d.New), len(d.Fixed), d.Unchanged)
}

// reportErrors: unreachable API server, forbidden RBAC and missing CRDs fail with an error
// naming what is missing, and a non-zero exit.
func (s *stack) reportErrors(t *testing.T, bin string) {
	kc := func(name, server string, kp *pki.KeyPair) string {
		p := filepath.Join(s.dir, name+".kubeconfig")
		y := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: e2e
  cluster: {server: %q, certificate-authority-data: %q}
users:
- name: u
  user: {client-certificate-data: %q, client-key-data: %q}
contexts:
- name: %s
  context: {cluster: e2e, user: u}
current-context: %s
`, server, b64(s.certs.cluster.CertPEM), b64(kp.CertPEM), b64(kp.KeyPEM), name, name)
		if err := os.WriteFile(p, []byte(y), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	expect := func(what string, wantCode int, patterns []string, args ...string) {
		_, errOut, code := s.runReport(t, bin, args...)
		if code != wantCode {
			t.Errorf("%s: exit %d, want %d; stderr: %s", what, code, wantCode, errOut)
		}
		for _, p := range patterns {
			if !regexp.MustCompile(p).MatchString(errOut) {
				t.Errorf("%s: stderr %q does not match %q", what, errOut, p)
			}
		}
		s.logf("scenario %q: %s: %s", "report", what, strings.TrimSpace(errOut))
	}
	nobody, err := s.certs.cluster.ClientCert("auditor")
	if err != nil {
		t.Fatal(err)
	}
	expect("unreachable API server", 1, []string{`API server https://127\.0\.0\.1:\d+ is unreachable`},
		"--kubeconfig="+kc("down", "https://127.0.0.1:"+strconv.Itoa(freePort(t)), nobody))
	auditor := kc("auditor", s.apiURL, nobody)
	expect("no RBAC", 1, []string{`forbidden: cannot list constrainttemplates\.templates\.gatekeeper\.sh at cluster scope`}, "--kubeconfig="+auditor)
	expect("--context that does not exist", 1, []string{`context "nope" does not exist`}, "--kubeconfig="+auditor, "--context=nope")

	// The shipped read-only ClusterRole is enough for the report, and not for --apply.
	s.kubectlOK("", "apply", "-f", filepath.Join(repoRoot, "manifests/components/report/rbac.yaml"))
	s.kubectlOK("", "create", "clusterrolebinding", "e2e-auditor-reader", "--clusterrole=imagetrust-report-reader", "--user=auditor")
	waitFor(t, 30*time.Second, "auditor reads with imagetrust-report-reader", func() error {
		_, errOut, code := s.runReport(t, bin, "--kubeconfig="+auditor, "--format=json")
		if code != 0 {
			return fmt.Errorf("exit %d: %s", code, errOut)
		}
		return nil
	})
	gk := s.certs.gatekeeperDir
	_, errOut, code := s.runReport(t, bin, "--kubeconfig="+auditor, "--format=json", "--complete",
		"--provider-cert="+filepath.Join(gk, pki.CertFile), "--provider-key="+filepath.Join(gk, pki.KeyFile))
	if code != 0 {
		t.Errorf("--complete with the read-only ClusterRole: exit %d: %s", code, errOut)
	}
	expect("missing OpenReports CRDs", 1, []string{`reports\.openreports\.io`, `CustomResourceDefinition is not installed`},
		"--kubeconfig="+s.kubeconfig, "--format=openreports", "--apply")
	expect("--apply with a format that is not a report API", 2, []string{`--apply writes openreports or policyreport objects`},
		"--kubeconfig="+s.kubeconfig, "--format=html", "--apply")
	s.installReportCRDs(t)
	expect("read-only auditor --apply", 1, []string{`forbidden: cannot apply reports\.openreports\.io in namespace \S+`},
		"--kubeconfig="+auditor, "--format=openreports", "--apply")
}

// installReportCRDs installs the OpenReports CRDs (from the openreports reports-api module) and
// the wgpolicyk8s.io v1alpha2 CRDs (test data).
func (s *stack) installReportCRDs(t *testing.T) {
	out, err := exec.Command("go", "mod", "download", "-json", openReportsModule).Output()
	if err != nil {
		t.Fatalf("go mod download %s: %v", openReportsModule, err)
	}
	var m struct{ Dir string }
	if err := json.Unmarshal(out, &m); err != nil || m.Dir == "" {
		t.Fatalf("go mod download: no Dir in %s (%v)", out, err)
	}
	for _, f := range []string{filepath.Join(m.Dir, "config", "crd", "openreports.io_reports.yaml"), filepath.Join(m.Dir, "config", "crd", "openreports.io_clusterreports.yaml"),
		filepath.Join("testdata", "wgpolicyk8s.io_v1alpha2_crds.yaml")} {
		s.kubectlOK("", "apply", "--server-side", "-f", f)
	}
	s.kubectlOK("", "wait", "--for=condition=Established", "--timeout=60s",
		"crd/reports.openreports.io", "crd/clusterreports.openreports.io", "crd/policyreports.wgpolicyk8s.io", "crd/clusterpolicyreports.wgpolicyk8s.io")
}

// openReportsModule holds the OpenReports CRDs (config/crd).
const openReportsModule = "github.com/openreports/reports-api@v0.2.1"

// reportApply: --apply writes OpenReports and wgpolicyk8s.io reports the API server accepts
// (strict field validation against the CRD schemas) holding every listed violation, and a
// second run deletes the reports of namespaces that became clean.
func (s *stack) reportApply(t *testing.T, bin string) {
	gk := s.certs.gatekeeperDir
	for _, f := range []struct{ format, resource string }{{"openreports", "reports.openreports.io"}, {"policyreport", "policyreports.wgpolicyk8s.io"}} {
		out, errOut, code := s.runReport(t, bin, "--kubeconfig="+s.kubeconfig, "--format="+f.format, "--apply", "--complete",
			"--provider-cert="+filepath.Join(gk, pki.CertFile), "--provider-key="+filepath.Join(gk, pki.KeyFile))
		if code != 0 {
			t.Fatalf("--apply %s: exit %d: %s", f.format, code, errOut)
		}
		s.logf("%s", indent(strings.TrimSpace(out)))
		got := s.kubectlOK("", "get", f.resource, "-A", "-l", report.ManagedByLabel+"="+report.ManagedBy, "-o", "json")
		var list struct {
			Items []struct {
				Metadata struct{ Namespace, Name string }
				Summary  map[string]int
				Results  []struct {
					Policy, Result string
					Resources      []struct{ Kind, Namespace, Name string }
				}
			}
		}
		if err := json.Unmarshal([]byte(got), &list); err != nil {
			t.Fatal(err)
		}
		perNS := map[string]int{}
		for _, it := range list.Items {
			perNS[it.Metadata.Namespace] += len(it.Results)
			if it.Summary["warn"]+it.Summary["fail"] != len(it.Results) {
				t.Errorf("%s %s/%s: summary %v does not count its %d results", f.resource, it.Metadata.Namespace, it.Metadata.Name, it.Summary, len(it.Results))
			}
		}
		for _, ns := range reportNamespaces {
			if perNS[ns] != podsPerNS+1+unsignedPerNS+1 {
				t.Errorf("%s in %s: %d results, want %d", f.resource, ns, perNS[ns], podsPerNS+1+unsignedPerNS+1)
			}
		}
		s.logf("scenario %q: --apply %s: %d objects accepted, results per namespace %v", "report", f.format, len(list.Items), perNS)
	}
}
