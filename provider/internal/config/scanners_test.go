package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"github.com/sigstore/sigstore/pkg/cryptoutils"
)

func TestValidateScan(t *testing.T) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pemKey, err := cryptoutils.MarshalPublicKeyToPEM(k.Public())
	if err != nil {
		t.Fatal(err)
	}
	keyFile := writeFile(t, "scanner.pub", pemKey)
	f := false
	key := &Key{File: keyFile}
	tests := []struct {
		name string
		edit func(s *Scan)
		want string // "" = valid
	}{
		{"defaults", func(*Scan) {}, ""},
		{"key and kms", func(s *Scan) {
			s.Scanners = []Authority{{Name: "ci-trivy", Key: key}}
			s.VEXAuthorities = []Authority{{Name: "vendor", Key: &Key{KMS: "awskms:///alias/vex"}}}
		}, ""},
		{"scanner key missing", func(s *Scan) { s.Scanners = []Authority{{Name: "ci", Key: &Key{File: "/nonexistent.pub"}}} }, "scan.scanners[0].key.file: open /nonexistent.pub"},
		{"vex neither", func(s *Scan) {
			s.VEXAuthorities = []Authority{{Name: "v", Key: key}, {Name: "w"}}
		}, "scan.vexAuthorities[1]: exactly one of key and keyless is required, got neither"},
		{"duplicate across lists", func(s *Scan) {
			s.Scanners = []Authority{{Name: "acme", Key: key}}
			s.VEXAuthorities = []Authority{{Name: "acme", Key: key}}
		}, `scan.vexAuthorities[0].name: duplicate authority name "acme" (also scan.scanners[0])`},
		{"operator name", func(s *Scan) { s.Scanners = []Authority{{Name: "trivy-operator", Key: key}} }, `scan.scanners[0].name: "trivy-operator" is the authority of Trivy Operator reports`},
		{"no attestations", func(s *Scan) { s.Scanners = []Authority{{Name: "ci", Key: key, Attestations: &f}} }, "scan.scanners[0].attestations:"},
		{"verify platforms", func(s *Scan) { s.Scanners = []Authority{{Name: "ci", Key: key, VerifyPlatforms: true}} }, "scan.scanners[0].verifyPlatforms:"},
		{"skew", func(s *Scan) { s.ClockSkew = Duration(2 * time.Hour) }, "scan.clockSkew: must be between 0 and 1h, got 2h0m0s"},
		{"findings", func(s *Scan) { s.MaxFindings = 5000 }, "scan.maxFindings: must be between 1 and 1000, got 5000"},
		{"report bytes", func(s *Scan) { s.MaxReportBytes = 10 }, "scan.maxReportBytes: must be between 1 KiB and 64 MiB, got 10"},
		{"deadline", func(s *Scan) { s.Deadline = Duration(-time.Second) }, "scan.deadline: -1s must be positive"},
		{"namespace", func(s *Scan) { s.TrivyOperator.Namespaces = []string{"Kube System"} }, `scan.trivyOperator.namespaces[0]: "Kube System" is not a namespace name`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := &Config{}
			c.ApplyDefaults()
			tc.edit(&c.Scan)
			err := c.validateScan()
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("validateScan() = %v, want nil", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("validateScan() = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestScanDefaultsAndDecode(t *testing.T) {
	c, err := Decode([]byte(`
registries: [{host: ghcr.io}]
scan:
  scanners:
  - name: ci-trivy
    key: {kms: "hashivault://trivy"}
  clockSkew: 30s
  trivyOperator: {enabled: true, namespaces: [apps]}
`))
	if err != nil {
		t.Fatal(err)
	}
	c.ApplyDefaults()
	s := c.Scan
	if len(s.Scanners) != 1 || s.Scanners[0].Name != "ci-trivy" || s.ClockSkew.D() != 30*time.Second || s.MaxFindings != DefaultScanMaxFindings ||
		s.Deadline.D() != DefaultScanDeadline || !s.UsesSARIF() || !s.TrivyOperator.Enabled || s.TrivyOperator.Resync.D() != DefaultTrivyOperatorResync {
		t.Errorf("scan section = %+v", s)
	}
	if _, err := Decode([]byte("scan: {scanner: []}")); err == nil || !strings.Contains(err.Error(), "scan.scanner") {
		t.Errorf("unknown field: err = %v, want one naming scan.scanner", err)
	}
}
