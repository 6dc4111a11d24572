// Package scantest holds the scan report make bench and the scan package's benchmarks share.
package scantest

import (
	"encoding/json"
	"fmt"
	"strconv"
)

// Report is a Trivy JSON report of about 20 KB: 34 findings over 17 OS packages, every
// severity, each fixed, as `trivy image --format json` writes them.
func Report() []byte {
	sev := []string{"LOW", "MEDIUM", "HIGH", "CRITICAL", "UNKNOWN"}
	vulns := make([]map[string]any, 0, 34)
	for i := range 34 {
		pkg := "pkg" + strconv.Itoa(i%17)
		vulns = append(vulns, map[string]any{
			"VulnerabilityID": fmt.Sprintf("CVE-2024-%05d", 1000+i), "VendorIDs": []string{fmt.Sprintf("ALPINE-%d", 5000+i)},
			"PkgName": pkg, "PkgIdentifier": map[string]any{"PURL": "pkg:apk/alpine/" + pkg + "@1." + strconv.Itoa(i) + ".0-r0?arch=x86_64&distro=3.20.3"},
			"InstalledVersion": "1." + strconv.Itoa(i) + ".0-r0", "FixedVersion": "1." + strconv.Itoa(i) + ".1-r0", "Status": "fixed",
			"Severity": sev[i%len(sev)], "SeveritySource": "nvd",
			"PrimaryURL":  "https://avd.aquasec.com/nvd/cve-2024-" + strconv.Itoa(1000+i),
			"Title":       "a flaw in " + pkg + " allows a remote attacker to cause a denial of service",
			"Description": "A flaw was found in " + pkg + ". A crafted input can cause an out-of-bounds read, leading to a crash or information disclosure in applications that parse untrusted data with it.",
		})
	}
	b, err := json.Marshal(map[string]any{"SchemaVersion": 2, "ArtifactName": "bench/app", "ArtifactType": "container_image",
		"Results": []any{map[string]any{"Target": "bench/app (alpine 3.20.3)", "Class": "os-pkgs", "Type": "alpine", "Vulnerabilities": vulns}}})
	if err != nil {
		panic(err) // maps of strings and numbers always encode
	}
	return b
}

// BankQuery is the query of the scan keys the seed constraint constraints/security/bank.yaml
// sends: the findings it can deny, those above MEDIUM and its blockedIds. make bench sends it
// by default; the suite package's TestRegoCostWorkload answers only keys with it, so it fails
// when the constraint or the template asks otherwise.
const BankQuery = "above=MEDIUM;ids=CVE-2021-44228,CVE-2021-45046"
