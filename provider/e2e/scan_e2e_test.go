//go:build e2e

package e2e

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/sigstore/sigstore/pkg/signature"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

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
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sv, err := signature.LoadECDSASignerVerifier(priv, crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
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
	pub, err := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(s.dir, "e2e-trivy.pub")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o644); err != nil {
		t.Fatal(err)
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
