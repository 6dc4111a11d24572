//go:build e2e

package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/open-policy-agent/frameworks/constraint/pkg/externaldata"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/imagetrust/imagetrust/provider/internal/pki"
	"github.com/imagetrust/imagetrust/provider/internal/scan"
	"github.com/imagetrust/imagetrust/provider/internal/signing"
)

// The scan scenario's images, each with a Trivy report signed as a cosign vuln attestation
// by the scanner authority e2e-trivy.
const (
	scanVulnerable = "demo/scan-vulnerable:1.0.0" // openssl CVE-2023-5363 (HIGH, fixable)
	scanClean      = "demo/scan-clean:1.0.0"      // no findings
	scanIgnored    = "demo/scan-ignored:1.0.0"    // zlib CVE-2023-45853 (CRITICAL), ignored with a reason
)

const predicateCosignVuln = "https://cosign.sigstore.dev/attestation/vuln/v1"

// trivyReport is a Trivy JSON report with the given vulnerabilities (Trivy's field names).
func trivyReport(vulns ...map[string]any) []byte {
	res := map[string]any{"Target": "app (alpine 3.20.3)", "Class": "os-pkgs", "Type": "alpine"}
	if len(vulns) > 0 {
		res["Vulnerabilities"] = vulns
	}
	b, _ := json.Marshal(map[string]any{"SchemaVersion": 2, "ArtifactName": "app", "ArtifactType": "container_image",
		"Results": []any{res}})
	return b
}

func trivyVuln(id, pkg, installed, fixed, severity string) map[string]any {
	return map[string]any{"VulnerabilityID": id, "PkgName": pkg,
		"PkgIdentifier":    map[string]any{"PURL": "pkg:apk/alpine/" + pkg + "@" + installed + "?arch=x86_64&distro=3.20.3"},
		"InstalledVersion": installed, "FixedVersion": fixed, "Status": "fixed", "Severity": severity}
}

// setupScan pushes the scan scenario's images with their signed Trivy attestations (scanned a
// minute ago) and returns the provider configuration's scan section naming the scanner key.
func (s *stack) setupScan() string {
	t := s.t
	path := filepath.Join(s.dir, "e2e-trivy.pub")
	sv := newSigner(t, path)
	reports := map[string][]byte{
		scanVulnerable: trivyReport(trivyVuln("CVE-2023-5363", "openssl", "3.1.3-r0", "3.1.4-r0", "HIGH")),
		scanClean:      trivyReport(),
		scanIgnored:    trivyReport(trivyVuln("CVE-2023-45853", "zlib", "1.3-r0", "", "CRITICAL")),
	}
	finished := time.Now().Add(-time.Minute).UTC()
	for _, ref := range []string{scanVulnerable, scanClean, scanIgnored} {
		s.pushRandom(ref, 1)
		pred, err := json.Marshal(map[string]any{
			"invocation": map[string]any{"parameters": nil, "uri": "", "event_id": "", "builder.id": ""},
			"scanner": map[string]any{"uri": "pkg:github/aquasecurity/trivy@v0.58.1", "version": "0.58.1",
				"db": map[string]any{"uri": "", "version": ""}, "result": json.RawMessage(reports[ref])},
			"metadata": map[string]any{"scanStartedOn": finished.Add(-30 * time.Second).Format(time.RFC3339),
				"scanFinishedOn": finished.Format(time.RFC3339)},
		})
		if err != nil {
			t.Fatal(err)
		}
		dr, err := name.NewDigest(s.pinnedNoTag(ref), name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		if err := signing.Attest(dr, sv, predicateCosignVuln, pred); err != nil {
			t.Fatalf("attesting %s: %v", ref, err)
		}
	}
	return fmt.Sprintf("scan:\n  scanners:\n  - name: e2e-trivy\n    key:\n      file: %s\n", path)
}

// scanScenario uses the imagetrust-scan Provider of the static overlay (applied with the other
// Providers), a deny K8sImageVulnerabilities constraint with an ignore entry and a warn one
// without, in namespace vulns, and checks: the vulnerable image is denied naming its CVE, the
// clean one is admitted, the ignored one is admitted, and the ignored CVE stays visible (the
// warn constraint's admission warning and audit entry name it; the deny constraint holds the
// reason and expiry).
func (s *stack) scanScenario(t *testing.T, static []*unstructured.Unstructured) {
	start := time.Now()
	found := false
	for _, o := range static {
		if o.GetKind() == "Provider" && o.GetName() == "imagetrust-scan" {
			u, _, _ := unstructured.NestedString(o.Object, "spec", "url")
			found = strings.HasSuffix(u, "/v1/scan")
		}
	}
	if !found {
		t.Fatal("static-tls overlay has no imagetrust-scan Provider for /v1/scan")
	}
	s.kubectlOK("apiVersion: v1\nkind: Namespace\nmetadata: {name: vulns}\n", "apply", "-f", "-")
	const reason = "zlib minizip is not shipped in this image (e2e)"
	s.kubectlOK(fmt.Sprintf(`apiVersion: constraints.gatekeeper.sh/v1beta1
kind: K8sImageVulnerabilities
metadata: {name: e2e-no-high-critical}
spec:
  enforcementAction: deny
  match:
    namespaces: [vulns]
    kinds: [{apiGroups: [""], kinds: [Pod]}]
  parameters:
    scannerAuthorities: [e2e-trivy]
    maxSeverity: MEDIUM
    maxScanAge: 168h
    ignore:
    - id: CVE-2023-45853
      reason: %q
      expires: "2099-12-31"
      images: [%q]
---
apiVersion: constraints.gatekeeper.sh/v1beta1
kind: K8sImageVulnerabilities
metadata: {name: e2e-vulns-report}
spec:
  enforcementAction: warn
  match:
    namespaces: [vulns]
    kinds: [{apiGroups: [""], kinds: [Pod]}]
  parameters:
    scannerAuthorities: [e2e-trivy]
    maxSeverity: MEDIUM
`, reason, s.regHost+"/demo/scan-ignored*"), "apply", "-f", "-")

	vulnerable := pod("vulns", "vulnerable", s.pinned(scanVulnerable))
	waitFor(t, 60*time.Second, "K8sImageVulnerabilities enforced", func() error {
		out, err := s.kubectlCmd(vulnerable, "create", "--dry-run=server", "-f", "-")
		if err == nil || !strings.Contains(out, "denied the request") {
			return fmt.Errorf("vulnerable image not denied yet: %s", out)
		}
		return nil
	}, s.gatekeeper)
	s.expectDenied(t, "scan: vulnerable image denied with its CVE", vulnerable,
		`\[e2e-no-high-critical\]`, `CVE-2023-5363`, `HIGH`, `openssl`, `fixed in <3\.1\.4-r0>`)
	if warn, _ := s.expectAdmitted(t, "scan: clean image admitted", pod("vulns", "clean", s.pinned(scanClean)), false); warn != "" {
		t.Errorf("scan: clean image admitted with warnings:\n%s", warn)
	}
	warn, _ := s.expectAdmitted(t, "scan: ignored CVE admitted, warned", pod("vulns", "ignored", s.pinned(scanIgnored)), false)
	if !strings.Contains(warn, "[e2e-vulns-report]") || !strings.Contains(warn, "CVE-2023-45853") {
		t.Errorf("scan: ignored CVE admitted without the report constraint's warning naming it:\n%s", warn)
	}
	out, err := s.run("scan: the ignore entry an auditor reads", "", "get", "k8simagevulnerabilities", "e2e-no-high-critical",
		"-o", "jsonpath={.spec.parameters.ignore}")
	if err != nil || !strings.Contains(out, reason) || !strings.Contains(out, "2099-12-31") {
		t.Errorf("scan: constraint ignore entry without its reason and expiry: %v\n%s", err, out)
	}
	s.mark("scan scenario", start)
}

// The Trivy Operator scenario's images: reports are created for them in the cluster, no scan
// is attached to them in the registry.
const (
	opListed   = "demo/operator-listed:1.0.0"   // VulnerabilityReport created before the provider starts
	opCluster  = "demo/operator-cluster:1.0.0"  // ClusterVulnerabilityReport created before the provider starts
	opWatched  = "demo/operator-watched:1.0.0"  // VulnerabilityReport created while it runs
	opNoDigest = "demo/operator-nodigest:1.0.0" // its report names only a tag: ignored
)

// operatorReportJSON is a Trivy Operator report object (aquasecurity.github.io/v1alpha1) for
// server/repo, with the digest when it is not empty, listing one vulnerability.
func operatorReportJSON(kind, namespace, name, server, repo, tag, digest, cve, severity string) string {
	meta := map[string]any{"name": name, "labels": map[string]string{"app.kubernetes.io/managed-by": "trivy-operator"}}
	if namespace != "" {
		meta["namespace"] = namespace
	}
	artifact := map[string]any{"repository": repo, "tag": tag}
	if digest != "" {
		artifact["digest"] = digest
	}
	b, _ := json.Marshal(map[string]any{
		"apiVersion": "aquasecurity.github.io/v1alpha1", "kind": kind, "metadata": meta,
		"report": map[string]any{
			"artifact": artifact, "registry": map[string]any{"server": server},
			"scanner":         map[string]any{"name": "Trivy", "vendor": "Aqua Security", "version": "0.58.1"},
			"updateTimestamp": time.Now().Add(-time.Minute).UTC().Format(time.RFC3339),
			"summary":         map[string]any{"criticalCount": 0, "highCount": 1, "mediumCount": 0, "lowCount": 0, "unknownCount": 0},
			"vulnerabilities": []any{map[string]any{
				"vulnerabilityID": cve, "resource": "openssl", "installedVersion": "3.1.3-r0", "fixedVersion": "3.1.4-r0",
				"severity": severity, "score": 7.5, "primaryLink": "https://avd.aquasec.com/nvd/" + strings.ToLower(cve),
			}},
		},
	})
	return string(b)
}

// serviceAccountKubeconfig writes a kubeconfig whose client certificate the API server reads as
// ServiceAccount namespace/name (CN system:serviceaccount:<ns>:<name>, O system:serviceaccounts):
// RBAC treats it as that ServiceAccount, so the provider runs with exactly the permissions the
// manifests grant it.
func (s *stack) serviceAccountKubeconfig(namespace, name string) string {
	t := s.t
	ca := s.certs.cluster
	kp := groupCert(t, ca, "system:serviceaccount:"+namespace+":"+name, "system:serviceaccounts", "system:serviceaccounts:"+namespace)
	kc := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: e2e
  cluster: {server: %q, certificate-authority-data: %q}
users:
- name: %s
  user: {client-certificate-data: %q, client-key-data: %q}
contexts:
- name: e2e
  context: {cluster: e2e, user: %s}
current-context: e2e
`, s.apiURL, b64(ca.CertPEM), name, b64(kp.CertPEM), b64(kp.KeyPEM), name)
	path := filepath.Join(s.dir, "kubeconfig-"+name)
	if err := os.WriteFile(path, []byte(kc), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// scanAnswer is the part of a /v1/scan value the operator scenario checks.
type scanAnswer struct {
	Scanned   bool   `json:"scanned"`
	Reason    string `json:"reason"`
	Source    string `json:"source"`
	Format    string `json:"format"`
	Authority string `json:"authority"`
	Signed    bool   `json:"signed"`
	// Findings are rows (answer form 2), read by scan.Finding.
	Findings []scan.Finding `json:"findings"`
}

// postScan asks a provider's /v1/scan about keys over mTLS with a client certificate of
// Gatekeeper's CA and returns the answers by key (an error answer as an error).
func postScan(hc *http.Client, port int, keys ...string) (map[string]scanAnswer, error) {
	body, err := json.Marshal(externaldata.NewProviderRequest(keys))
	if err != nil {
		return nil, err
	}
	resp, err := hc.Post(fmt.Sprintf("https://127.0.0.1:%d/v1/scan", port), "application/json", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("POST /v1/scan = %d", resp.StatusCode)
	}
	var pr struct {
		Response struct {
			SystemError string `json:"systemError"`
			Items       []struct {
				Key   string          `json:"key"`
				Value json.RawMessage `json:"value"`
				Error string          `json:"error"`
			} `json:"items"`
		} `json:"response"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&pr); err != nil {
		return nil, fmt.Errorf("POST /v1/scan: decoding the response: %w", err)
	}
	if pr.Response.SystemError != "" || len(pr.Response.Items) != len(keys) {
		return nil, fmt.Errorf("POST /v1/scan: system error %q, %d items for %d keys", pr.Response.SystemError, len(pr.Response.Items), len(keys))
	}
	out := map[string]scanAnswer{}
	for _, it := range pr.Response.Items {
		if it.Error != "" {
			return nil, fmt.Errorf("POST /v1/scan: %s: %s", it.Key, it.Error)
		}
		var a scanAnswer
		if err := json.Unmarshal(it.Value, &a); err != nil {
			return nil, fmt.Errorf("POST /v1/scan: %s: %w", it.Key, err)
		}
		out[it.Key] = a
	}
	return out, nil
}

// checkOperatorAnswer wants a scan from a Trivy Operator report naming cve.
func checkOperatorAnswer(a scanAnswer, cve string) error {
	if !a.Scanned || a.Source != "trivy-operator" || a.Authority != "trivy-operator" || a.Signed || a.Format != "trivy-operator" {
		return fmt.Errorf("answer %+v, want scanned from a Trivy Operator report (source and authority trivy-operator, signed false)", a)
	}
	for _, f := range a.Findings {
		if f.ID == cve && f.Severity == scan.High && f.Package == "openssl" {
			return nil
		}
	}
	return fmt.Errorf("answer %+v lacks %s (HIGH, openssl)", a, cve)
}

// operatorScenario runs a second provider with scan.trivyOperator.enabled against the real
// API server: our minimal CRDs for VulnerabilityReport and ClusterVulnerabilityReport, the RBAC
// of manifests/components/trivy-operator, and the provider authenticated as its ServiceAccount
// (so it has exactly those permissions). Reports created before it starts are listed, one
// created while it runs arrives by the watch, a report naming only a tag is ignored, and a
// deleted report leaves the index. /v1/scan answers from the reports: signed false, authority
// trivy-operator.
func (s *stack) operatorScenario(t *testing.T) {
	start := time.Now()
	s.kubectlOK("", "apply", "-f", filepath.Join("testdata", "trivy-operator-crds.yaml"))
	s.kubectlOK("", "wait", "--for=condition=Established", "--timeout=60s",
		"crd/vulnerabilityreports.aquasecurity.github.io", "crd/clustervulnerabilityreports.aquasecurity.github.io")
	s.kubectlOK("", "apply", "-f", filepath.Join(repoRoot, "manifests", "components", "trivy-operator", "rbac.yaml"))
	const sa = "system:serviceaccount:gatekeeper-system:imagetrust-provider"
	for _, c := range []struct{ verb, resource, want string }{
		{"list", "vulnerabilityreports.aquasecurity.github.io", "yes"},
		{"watch", "clustervulnerabilityreports.aquasecurity.github.io", "yes"},
		{"create", "vulnerabilityreports.aquasecurity.github.io", "no"},
		{"list", "secrets", "no"},
	} {
		out, _ := s.kubectlCmd("", "auth", "can-i", c.verb, c.resource, "--all-namespaces", "--as="+sa)
		if strings.TrimSpace(out) != c.want {
			t.Errorf("operator: kubectl auth can-i %s %s as the provider = %q, want %s", c.verb, c.resource, strings.TrimSpace(out), c.want)
		}
	}
	s.kubectlOK("apiVersion: v1\nkind: Namespace\nmetadata: {name: trivy-reports}\n", "apply", "-f", "-")

	for _, ref := range []string{opListed, opCluster, opWatched, opNoDigest} {
		s.pushRandom(ref, 1)
	}
	report := func(kind, ns, name, ref, digest, cve string) string {
		repo, tag, _ := strings.Cut(ref, ":")
		return operatorReportJSON(kind, ns, name, s.regHost, repo, tag, digest, cve, "HIGH")
	}
	s.kubectlOK(report("VulnerabilityReport", "trivy-reports", "replicaset-listed-app", opListed, s.digests[opListed].String(), "CVE-2023-5363"), "apply", "-f", "-")
	s.kubectlOK(report("ClusterVulnerabilityReport", "", "node-agent", opCluster, s.digests[opCluster].String(), "CVE-2023-5678"), "apply", "-f", "-")
	s.kubectlOK(report("VulnerabilityReport", "trivy-reports", "replicaset-nodigest-app", opNoDigest, "", "CVE-2023-5363"), "apply", "-f", "-")

	port, metrics := freePort(t), freePort(t)
	c := s.certs
	cfg := filepath.Join(s.dir, "provider-operator.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`server:
  address: "127.0.0.1:%d"
  metricsAddress: "127.0.0.1:%d"
  tls:
    certFile: %s
    keyFile: %s
    clientCAFile: %s
registries:
- host: %q
  insecure: true
cache:
  ttl: 2s
  notFoundTTL: 1s
scan:
  trivyOperator:
    enabled: true
    resync: 1m
`, port, metrics, filepath.Join(c.providerDir, pki.CertFile), filepath.Join(c.providerDir, pki.KeyFile),
		filepath.Join(c.gatekeeperDir, pki.CAFile), s.regHost)), 0o644); err != nil {
		t.Fatal(err)
	}
	p := startProc(t, s.dir, "imagetrust-provider-operator", s.providerBin, []string{"--config=" + cfg},
		[]string{"KUBECONFIG=" + s.serviceAccountKubeconfig("gatekeeper-system", "imagetrust-provider")})
	hc0 := &http.Client{Timeout: 2 * time.Second}
	waitFor(t, 90*time.Second, "operator provider /readyz (reports listed)", func() error {
		return httpOK(hc0, fmt.Sprintf("http://127.0.0.1:%d/readyz", metrics))
	}, p)

	kp, err := c.gatekeeper.ClientCert("e2e-operator")
	if err != nil {
		t.Fatal(err)
	}
	tlsCfg, err := pki.ClientTLSConfig(c.provider, kp)
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsCfg}}
	defer hc.CloseIdleConnections()
	listed, cluster, noDigest, watched := s.pinnedNoTag(opListed), s.pinnedNoTag(opCluster), s.pinnedNoTag(opNoDigest), s.pinnedNoTag(opWatched)

	ans, err := postScan(hc, port, listed, cluster, noDigest)
	if err != nil {
		t.Fatalf("operator: %v", err)
	}
	if err := checkOperatorAnswer(ans[listed], "CVE-2023-5363"); err != nil {
		t.Errorf("operator: listed VulnerabilityReport: %v", err)
	}
	if err := checkOperatorAnswer(ans[cluster], "CVE-2023-5678"); err != nil {
		t.Errorf("operator: listed ClusterVulnerabilityReport: %v", err)
	}
	if a := ans[noDigest]; a.Scanned || a.Reason != "no-scan" {
		t.Errorf("operator: report without a digest: answer %+v, want scanned false, reason no-scan", a)
	}
	s.logf("operator: listed reports answered: %s scanned=%v source=%s authority=%s signed=%v; without a digest: scanned=%v reason=%s",
		opListed, ans[listed].Scanned, ans[listed].Source, ans[listed].Authority, ans[listed].Signed, ans[noDigest].Scanned, ans[noDigest].Reason)

	// A report created while the provider runs arrives through the watch.
	s.kubectlOK(report("VulnerabilityReport", "trivy-reports", "replicaset-watched-app", opWatched, s.digests[opWatched].String(), "CVE-2024-0727"), "apply", "-f", "-")
	waitFor(t, 60*time.Second, "operator: a report created while the provider runs answers /v1/scan", func() error {
		ans, err := postScan(hc, port, watched)
		if err != nil {
			return err
		}
		return checkOperatorAnswer(ans[watched], "CVE-2024-0727")
	}, p)

	// A deleted report leaves the index (the answer is looked up again once its cache entry
	// expires: cache.ttl 2s here).
	s.kubectlOK("", "delete", "vulnerabilityreport", "-n", "trivy-reports", "replicaset-listed-app")
	waitFor(t, 60*time.Second, "operator: a deleted report no longer answers", func() error {
		ans, err := postScan(hc, port, listed)
		if err != nil {
			return err
		}
		if a := ans[listed]; a.Scanned || a.Reason != "no-scan" {
			return fmt.Errorf("answer %+v, want scanned false (no-scan)", a)
		}
		return nil
	}, p)
	p.stop()
	s.mark("Trivy Operator scenario", start)
}
