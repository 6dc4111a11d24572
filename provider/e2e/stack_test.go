//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/sigstore/sigstore/pkg/signature"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"

	"github.com/imagetrust/imagetrust/provider/internal/pki"
)

// Pinned tool versions; tools/build.sh builds them (make e2e-tools).
const (
	etcdVersion       = "v3.6.15"
	kubeVersion       = "v1.36.3"
	gatekeeperVersion = "v3.23.1"
	gatekeeperModule  = "github.com/open-policy-agent/gatekeeper/v3"
)

// toolPath returns the cached binary for a pinned tool, failing the test with the command that
// builds it when it is missing.
func toolPath(t *testing.T, name, version string) string {
	t.Helper()
	dir := os.Getenv("TOOLS")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			t.Fatal(err)
		}
		dir = filepath.Join(home, ".cache", "imagetrust", "tools")
	}
	p := filepath.Join(dir, name+"-"+version, name)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("%s %s not built (%v): run `make e2e-tools` (provider/e2e/tools/build.sh %s)", name, version, err, name)
	}
	return p
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// proc is a child process in its own process group, stopped (group-wide) at test cleanup.
type proc struct {
	name string
	log  string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// startProc starts bin in a new process group with output to dir/name.log. The group is sent
// SIGTERM, then SIGKILL after 10 s, when the test ends; Pdeathsig kills the child if the test
// binary dies first.
func startProc(t *testing.T, dir, name, bin string, args, env []string) *proc {
	t.Helper()
	logPath := filepath.Join(dir, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		_ = f.Close() // nothing was written
		t.Fatalf("starting %s: %v", name, err)
	}
	p := &proc{name: name, log: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		_ = f.Close() // the log is diagnostics only; a failed write shows in the log itself
		close(p.done)
	}()
	t.Cleanup(func() {
		p.stop()
		// No member of the group may survive its leader.
		if err := syscall.Kill(-cmd.Process.Pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("%s: process group %d still has processes after stop (kill -0: %v)", name, cmd.Process.Pid, err)
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		}
	})
	return p
}

// stop terminates the process group and waits for the leader.
func (p *proc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	pgid := p.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-p.done
	}
	// Members that ignored SIGTERM after the leader left.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// tail returns the last n lines of the process log.
func (p *proc) tail(n int) string {
	b, _ := os.ReadFile(p.log)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// waitFor polls cond until it returns nil or the timeout passes; it fails the test with the last
// error and the tails of the given processes' logs.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() error, procs ...*proc) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for {
		if err = cond(); err == nil {
			return
		}
		for _, p := range procs {
			if p.exited() {
				t.Fatalf("%s: %s exited (%v) while waiting; log tail:\n%s", what, p.name, p.err, p.tail(40))
			}
		}
		if time.Now().After(deadline) {
			var b strings.Builder
			for _, p := range procs {
				fmt.Fprintf(&b, "\n--- %s log tail:\n%s", p.name, p.tail(30))
			}
			t.Fatalf("%s: not ready after %v: %v%s", what, timeout, err, b.String())
		}
		time.Sleep(150 * time.Millisecond)
	}
}

// certs is the generated PKI: three independent CAs, as in a real cluster.
type certs struct {
	cluster    *pki.CA // API server serving cert, admin client cert, service-account keys
	gatekeeper *pki.CA // Gatekeeper's webhook cert, which is also its client cert to providers
	provider   *pki.CA // the provider's serving cert (the Providers' caBundle)

	clusterDir, gatekeeperDir, providerDir string
	saKey, saPub                           string
	admin                                  *pki.KeyPair
}

func newCerts(t *testing.T, dir string) *certs {
	t.Helper()
	c := &certs{
		clusterDir:    filepath.Join(dir, "pki", "cluster"),
		gatekeeperDir: filepath.Join(dir, "pki", "gatekeeper"),
		providerDir:   filepath.Join(dir, "pki", "provider"),
	}
	var err error
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	c.cluster, err = pki.NewCA("imagetrust-e2e-cluster-ca")
	must(err)
	c.gatekeeper, err = pki.NewCA("imagetrust-e2e-gatekeeper-ca")
	must(err)
	c.provider, err = pki.NewCA("imagetrust-e2e-provider-ca")
	must(err)

	apiserver, err := c.cluster.ServerCert("kube-apiserver", "kubernetes", "kubernetes.default",
		"kubernetes.default.svc", "kubernetes.default.svc.cluster.local", "10.0.0.1")
	must(err)
	_, err = pki.WriteDir(c.clusterDir, c.cluster, apiserver)
	must(err)
	c.admin = adminCert(t, c.cluster)

	// Gatekeeper presents its webhook certificate as client certificate to providers, so it
	// needs EKU clientAuth as well as serverAuth (pki server certs have both).
	gk, err := c.gatekeeper.ServerCert("gatekeeper-webhook-service.gatekeeper-system.svc")
	must(err)
	_, err = pki.WriteDir(c.gatekeeperDir, c.gatekeeper, gk)
	must(err)

	prov, err := c.provider.ServerCert("imagetrust-provider", "imagetrust-provider.gatekeeper-system.svc")
	must(err)
	_, err = pki.WriteDir(c.providerDir, c.provider, prov)
	must(err)

	// Service-account signing key: the API server refuses to start without one.
	saKP, err := c.cluster.ClientCert("service-accounts")
	must(err)
	pub, err := x509.MarshalPKIXPublicKey(&saKP.Key.PublicKey)
	must(err)
	c.saKey = filepath.Join(c.clusterDir, "sa.key")
	c.saPub = filepath.Join(c.clusterDir, "sa.pub")
	must(pki.WriteFileAtomic(c.saKey, saKP.KeyPEM, 0o600))
	must(pki.WriteFileAtomic(c.saPub, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o644))
	return c
}

// adminCert issues the kubeconfig's client certificate: CN=admin, O=system:masters.
func adminCert(t *testing.T, ca *pki.CA) *pki.KeyPair {
	t.Helper()
	return groupCert(t, ca, "admin", "system:masters")
}

// groupCert issues a client certificate for user cn in the groups orgs (the API server reads
// O as groups). pki's ClientCert sets no organisation, so this one is issued here with the
// CA's key, for a fresh key pair from ClientCert.
func groupCert(t *testing.T, ca *pki.CA, cn string, orgs ...string) *pki.KeyPair {
	t.Helper()
	kp, err := ca.ClientCert(cn) // a fresh key pair to reuse
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn, Organization: orgs},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &kp.Key.PublicKey, ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	kp.Cert, _ = x509.ParseCertificate(der)
	kp.CertPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	return kp
}

type timing struct {
	What string
	D    time.Duration
}

// stack is etcd + kube-apiserver + Gatekeeper + the provider + an in-memory registry.
type stack struct {
	t       *testing.T
	dir     string
	certs   *certs
	kubectl string

	etcd, apiserver, gatekeeper, provider *proc

	apiURL     string
	kubeconfig string
	client     kubernetes.Interface

	gkPort, gkHealthPort int

	providerBin                       string
	signingKey                        string // public key of authority e2e-key
	providerPort, providerMetricsPort int
	providerConfig                    string
	providerExtra                     string           // appended to the provider config (scan_e2e_test.go)
	signer                            signature.Signer // private key of authority e2e-key

	registry *httptest.Server
	regHost  string             // 127.0.0.1:port
	digests  map[string]v1.Hash // "repo:tag" (without host) -> digest
	timings  []timing
	report   *os.File
}

func (s *stack) mark(what string, since time.Time) {
	d := time.Since(since)
	s.timings = append(s.timings, timing{what, d})
	s.logf("timing: %s: %v", what, d.Round(time.Millisecond))
}

// logf logs to the test and to the report file ($E2E_REPORT), which collects what kubectl printed.
func (s *stack) logf(format string, args ...any) {
	s.t.Helper()
	msg := fmt.Sprintf(format, args...)
	s.t.Log(msg)
	if s.report != nil {
		fmt.Fprintln(s.report, msg)
	}
}

func (s *stack) startEtcd() {
	t := s.t
	client, peer := freePort(t), freePort(t)
	cu := fmt.Sprintf("http://127.0.0.1:%d", client)
	pu := fmt.Sprintf("http://127.0.0.1:%d", peer)
	s.etcd = startProc(t, s.dir, "etcd", toolPath(t, "etcd", etcdVersion), []string{
		"--name=e2e", "--data-dir=" + filepath.Join(s.dir, "etcd-data"),
		"--listen-client-urls=" + cu, "--advertise-client-urls=" + cu,
		"--listen-peer-urls=" + pu, "--initial-advertise-peer-urls=" + pu,
		"--initial-cluster=e2e=" + pu, "--listen-metrics-urls=",
		"--log-level=warn", "--unsafe-no-fsync",
	}, nil)
	s.apiURL = cu // temporarily: etcd URL, consumed by startAPIServer
}

func (s *stack) startAPIServer() {
	t := s.t
	etcdURL := s.apiURL
	port := freePort(t)
	c := s.certs
	s.apiserver = startProc(t, s.dir, "kube-apiserver", toolPath(t, "kube-apiserver", kubeVersion), []string{
		"--etcd-servers=" + etcdURL,
		"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(port),
		"--tls-cert-file=" + filepath.Join(c.clusterDir, pki.CertFile),
		"--tls-private-key-file=" + filepath.Join(c.clusterDir, pki.KeyFile),
		"--client-ca-file=" + filepath.Join(c.clusterDir, pki.CAFile),
		"--authorization-mode=RBAC",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + c.saPub,
		"--service-account-signing-key-file=" + c.saKey,
		"--service-cluster-ip-range=10.0.0.0/24",
		// No controller-manager creates the default ServiceAccount.
		"--disable-admission-plugins=ServiceAccount",
		"--cert-dir=" + filepath.Join(s.dir, "apiserver-certs"),
		"--profiling=false", "--v=0",
	}, nil)
	s.apiURL = fmt.Sprintf("https://127.0.0.1:%d", port)

	s.kubeconfig = filepath.Join(s.dir, "kubeconfig")
	kc := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: e2e
  cluster: {server: %q, certificate-authority-data: %q}
users:
- name: admin
  user: {client-certificate-data: %q, client-key-data: %q}
contexts:
- name: e2e
  context: {cluster: e2e, user: admin}
current-context: e2e
`, s.apiURL, b64(c.cluster.CertPEM), b64(c.admin.CertPEM), b64(c.admin.KeyPEM))
	if err := os.WriteFile(s.kubeconfig, []byte(kc), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", s.kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cfg.QPS, cfg.Burst = 500, 1000
	cfg.WarningHandler = rest.NoWarnings{} // kubectl shows the warnings where they matter
	s.client, err = kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	tlsCfg, err := pki.ClientTLSConfig(c.cluster, c.admin)
	if err != nil {
		t.Fatal(err)
	}
	tlsCfg.MinVersion = tls.VersionTLS12
	hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsCfg}}
	waitFor(t, 90*time.Second, "kube-apiserver /readyz", func() error {
		return httpOK(hc, s.apiURL+"/readyz")
	}, s.etcd, s.apiserver)
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func httpOK(hc *http.Client, url string) error {
	resp, err := hc.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s", url, resp.Status, body)
	}
	return nil
}

// kubectlCmd runs kubectl against the stack; stdin may be empty. It returns everything kubectl
// printed (stdout then stderr, where warnings and errors go) and the error.
func (s *stack) kubectlCmd(stdin string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, s.kubectl, append([]string{"--kubeconfig=" + s.kubeconfig}, args...)...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return strings.TrimSpace(out.String() + errb.String()), err
}

// kubectlOK runs kubectl and fails the test when it fails.
func (s *stack) kubectlOK(stdin string, args ...string) string {
	s.t.Helper()
	out, err := s.kubectlCmd(stdin, args...)
	if err != nil {
		s.t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// gatekeeperDir returns the gatekeeper module's directory in the module cache (downloaded if
// needed), where deploy/gatekeeper.yaml holds its CRDs.
func gatekeeperDir(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "mod", "download", "-json", gatekeeperModule+"@"+gatekeeperVersion).Output()
	if err != nil {
		t.Fatalf("go mod download %s@%s: %v", gatekeeperModule, gatekeeperVersion, err)
	}
	var m struct{ Dir string }
	if err := json.Unmarshal(out, &m); err != nil || m.Dir == "" {
		t.Fatalf("go mod download: no Dir in %s (%v)", out, err)
	}
	return m.Dir
}

// applyGatekeeperCRDs applies the Namespace and the CRDs of Gatekeeper's own deploy/gatekeeper.yaml.
func (s *stack) applyGatekeeperCRDs() {
	t := s.t
	b, err := os.ReadFile(filepath.Join(gatekeeperDir(t), "deploy", "gatekeeper.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var keep []string
	crds := 0
	for _, doc := range strings.Split(string(b), "\n---") {
		var head struct{ Kind string }
		if err := yaml.Unmarshal([]byte(doc), &head); err != nil {
			t.Fatalf("gatekeeper.yaml: %v", err)
		}
		switch head.Kind {
		case "Namespace":
			keep = append(keep, doc)
		case "CustomResourceDefinition":
			keep = append(keep, doc)
			crds++
		}
	}
	if crds < 10 {
		t.Fatalf("gatekeeper.yaml: found %d CRDs, want the full set", crds)
	}
	s.kubectlOK(strings.Join(keep, "\n---\n"), "apply", "--server-side", "-f", "-")
	s.kubectlOK("", "wait", "--for=condition=Established", "crd", "--all", "--timeout=90s")
}

func (s *stack) startGatekeeper() {
	t := s.t
	s.gkPort, s.gkHealthPort = freePort(t), freePort(t)
	cacheDir := filepath.Join(s.dir, "gatekeeper-api-cache")
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		t.Fatal(err)
	}
	// No --operation flag: every operation (webhook, mutation-webhook, audit, status,
	// mutation-status, generate) runs in this one process.
	s.gatekeeper = startProc(t, s.dir, "gatekeeper", toolPath(t, "gatekeeper", gatekeeperVersion), []string{
		"--port=" + strconv.Itoa(s.gkPort), "--host=127.0.0.1",
		"--cert-dir=" + s.certs.gatekeeperDir, "--disable-cert-rotation",
		"--enable-external-data=true",
		"--health-addr=127.0.0.1:" + strconv.Itoa(s.gkHealthPort), "--metrics-addr=0",
		"--prometheus-port=" + strconv.Itoa(freePort(t)), // default :8888 would clash with other stacks
		"--exempt-namespace=gatekeeper-system",
		"--debug-use-fake-pod",
		"--api-cache-dir=" + cacheDir,
		"--audit-interval=5",
		"--log-level=INFO",
		"--log-denies=false",
		"--default-create-vap-for-templates=false",
		"--default-create-vap-binding-for-constraints=false",
	}, []string{
		"KUBECONFIG=" + s.kubeconfig,
		"POD_NAMESPACE=gatekeeper-system",
		"POD_NAME=gatekeeper-e2e",
	})
	hc := &http.Client{Timeout: 2 * time.Second}
	waitFor(t, 90*time.Second, "gatekeeper /readyz", func() error {
		return httpOK(hc, fmt.Sprintf("http://127.0.0.1:%d/readyz", s.gkHealthPort))
	}, s.gatekeeper, s.apiserver)
}

// registerWebhooks registers Gatekeeper's validating and mutating webhooks as its Helm chart
// does (timeouts 3 s and 1 s, mutation failurePolicy Ignore), but with validation failing closed
// as README recommends, pods/ephemeralcontainers added, and pointed at the out-of-cluster manager.
func (s *stack) registerWebhooks() {
	ca := s.certs.gatekeeper.CABundle()
	url := fmt.Sprintf("https://127.0.0.1:%d", s.gkPort)
	// Both webhooks see the same objects: every namespace but Gatekeeper's and kube-system's
	// (and those labelled to be ignored), every resource, pods/ephemeralcontainers included.
	scope := `  namespaceSelector:
    matchExpressions:
    - {key: admission.gatekeeper.sh/ignore, operator: DoesNotExist}
    - {key: kubernetes.io/metadata.name, operator: NotIn, values: [gatekeeper-system, kube-system]}
  rules:
  - {apiGroups: ["*"], apiVersions: ["*"], operations: [CREATE, UPDATE], resources: ["*", "pods/ephemeralcontainers"]}
`
	y := fmt.Sprintf(`apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata:
  name: gatekeeper-validating-webhook-configuration
  labels: {gatekeeper.sh/system: "yes"}
webhooks:
- name: validation.gatekeeper.sh
  admissionReviewVersions: ["v1", "v1beta1"]
  clientConfig: {url: "%[1]s/v1/admit", caBundle: %[2]q}
  failurePolicy: Fail
  matchPolicy: Exact
%[3]s  sideEffects: None
  timeoutSeconds: 3
---
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingWebhookConfiguration
metadata:
  name: gatekeeper-mutating-webhook-configuration
  labels: {gatekeeper.sh/system: "yes"}
webhooks:
- name: mutation.gatekeeper.sh
  admissionReviewVersions: ["v1", "v1beta1"]
  clientConfig: {url: "%[1]s/v1/mutate", caBundle: %[2]q}
  failurePolicy: Ignore
  matchPolicy: Exact
  reinvocationPolicy: Never
%[3]s  sideEffects: None
  timeoutSeconds: 1 # Helm default: the provider answers /v1/mutate within 800 ms
`, url, ca, scope)
	s.kubectlOK(y, "apply", "-f", "-")
}

// startRegistry starts an in-memory OCI registry on loopback and pushes sample images.
func (s *stack) startRegistry(images ...string) {
	t := s.t
	s.registry = httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(s.registry.Close)
	s.regHost = strings.TrimPrefix(s.registry.URL, "http://")
	s.digests = map[string]v1.Hash{}
	for i, ref := range images {
		s.pushRandom(ref, 1+int64(i%2))
	}
}

// pushRandom pushes a random image of layers layers as ref to the test registry and records its
// digest in s.digests.
func (s *stack) pushRandom(ref string, layers int64) v1.Hash {
	t := s.t
	img, err := random.Image(512, layers)
	if err != nil {
		t.Fatal(err)
	}
	tag, err := name.NewTag(s.regHost+"/"+ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(tag, img); err != nil {
		t.Fatalf("pushing %s: %v", tag, err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	s.digests[ref] = d
	return d
}

// buildProvider builds provider/cmd/imagetrust-provider from this repository. It runs in its own
// goroutine, so it returns an error instead of failing the test.
func (s *stack) buildProvider() error {
	bin := filepath.Join(s.dir, "imagetrust-provider")
	cmd := exec.Command("go", "build", "-o", bin, "./provider/cmd/imagetrust-provider")
	cmd.Dir = repoRoot
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./provider/cmd/imagetrust-provider: %w\n%s", err, out)
	}
	s.providerBin = bin
	return nil
}

// startProvider writes the provider config (loopback registry only) and starts the provider.
func (s *stack) startProvider() {
	t := s.t
	if s.providerPort == 0 {
		s.providerPort, s.providerMetricsPort = freePort(t), freePort(t)
	}
	c := s.certs
	s.providerConfig = filepath.Join(s.dir, "provider.yaml")
	cfg := fmt.Sprintf(`server:
  address: "127.0.0.1:%d"
  metricsAddress: "127.0.0.1:%d"
  tls:
    certFile: %s
    keyFile: %s
    clientCAFile: %s
registries:
- host: %q
  insecure: true
authorities:
- name: e2e-key
  key:
    file: %s
`, s.providerPort, s.providerMetricsPort,
		filepath.Join(c.providerDir, pki.CertFile), filepath.Join(c.providerDir, pki.KeyFile),
		// Gatekeeper's CA: only Gatekeeper's client certificate is accepted.
		filepath.Join(c.gatekeeperDir, pki.CAFile), s.regHost, s.signingKey) + s.providerExtra
	if err := os.WriteFile(s.providerConfig, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	s.provider = startProc(t, s.dir, "imagetrust-provider", s.providerBin, []string{"--config=" + s.providerConfig}, nil)
	hc := &http.Client{Timeout: 2 * time.Second}
	waitFor(t, 60*time.Second, "provider /readyz", func() error {
		return httpOK(hc, fmt.Sprintf("http://127.0.0.1:%d/readyz", s.providerMetricsPort))
	}, s.provider)
}
