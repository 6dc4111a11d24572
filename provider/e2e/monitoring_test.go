package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"sigs.k8s.io/yaml"

	"github.com/imagetrust/imagetrust/provider/internal/pki"
	"github.com/imagetrust/imagetrust/provider/internal/registry/registrytest"
	"github.com/imagetrust/imagetrust/provider/internal/signing"
)

// targetLabels are added by Prometheus (or the Prometheus operator) at scrape time; the
// provider does not expose them.
var targetLabels = map[string]bool{"job": true, "instance": true, "namespace": true, "pod": true, "service": true, "container": true}

// scrapeMade are series Prometheus makes itself for every target.
var scrapeMade = map[string]bool{"up": true}

// promQuery is one PromQL expression of the dashboard or the rules, with where it came from.
type promQuery struct {
	where, expr, legend string
}

// monitoringQueries collects every expression of manifests/monitoring: dashboard panel targets
// and template variables, and alert rules.
func monitoringQueries(t *testing.T) []promQuery {
	t.Helper()
	dir := filepath.Join(repoRoot, "manifests", "monitoring")
	b, err := os.ReadFile(filepath.Join(dir, "imagetrust-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr         string `json:"expr"`
				LegendFormat string `json:"legendFormat"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Name  string `json:"name"`
				Query any    `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("imagetrust-dashboard.json: %v", err)
	}
	var qs []promQuery
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			qs = append(qs, promQuery{where: "dashboard panel " + p.Title, expr: tg.Expr, legend: tg.LegendFormat})
		}
	}
	labelValues := regexp.MustCompile(`^label_values\((.*),\s*(\w+)\)$`)
	for _, v := range dash.Templating.List {
		q, ok := v.Query.(map[string]any)
		if !ok {
			continue
		}
		s, _ := q["query"].(string)
		m := labelValues.FindStringSubmatch(s)
		if m == nil {
			t.Errorf("dashboard variable %s: query %q is not label_values(<selector>, <label>)", v.Name, s)
			continue
		}
		qs = append(qs, promQuery{where: "dashboard variable " + v.Name, expr: m[1], legend: "{{" + m[2] + "}}"})
	}
	b, err = os.ReadFile(filepath.Join(dir, "imagetrust.rules.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert string `json:"alert"`
				Expr  string `json:"expr"`
			} `json:"rules"`
		} `json:"groups"`
	}
	if err := yaml.Unmarshal(b, &rules); err != nil { // promtool check rules is the strict check
		t.Fatalf("imagetrust.rules.yaml: %v", err)
	}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			qs = append(qs, promQuery{where: "alert " + r.Alert, expr: r.Expr})
		}
	}
	if len(qs) < 20 {
		t.Fatalf("found only %d expressions in manifests/monitoring", len(qs))
	}
	return qs
}

var (
	selectorRE = regexp.MustCompile(`\b((?:imagetrust|process|go)_[a-zA-Z0-9_]+|up)\b\s*(\{[^}]*\})?`)
	matcherRE  = regexp.MustCompile(`(\w+)\s*(=~|!~|!=|=)\s*"([^"]*)"`)
	groupingRE = regexp.MustCompile(`\b(?:by|without)\s*\(([^)]*)\)`)
	legendRE   = regexp.MustCompile(`\{\{\s*(\w+)\s*\}\}`)
	plainRE    = regexp.MustCompile(`^[A-Za-z0-9_./: -]+$`)
)

// exposed is what the provider's /metrics shows: label names and values per series name
// (histograms expanded into _bucket, _sum and _count).
type exposed map[string]map[string]map[string]bool

func exposition(t *testing.T, families map[string]*dto.MetricFamily) exposed {
	t.Helper()
	e := exposed{}
	add := func(series string, m *dto.Metric, extra ...string) {
		if e[series] == nil {
			e[series] = map[string]map[string]bool{}
		}
		for _, lp := range m.GetLabel() {
			if e[series][lp.GetName()] == nil {
				e[series][lp.GetName()] = map[string]bool{}
			}
			e[series][lp.GetName()][lp.GetValue()] = true
		}
		for _, l := range extra {
			if e[series][l] == nil {
				e[series][l] = map[string]bool{}
			}
		}
	}
	for name, f := range families {
		for _, m := range f.GetMetric() {
			switch f.GetType() {
			case dto.MetricType_HISTOGRAM:
				add(name+"_bucket", m, "le")
				add(name+"_sum", m)
				add(name+"_count", m)
			case dto.MetricType_SUMMARY:
				add(name, m, "quantile")
				add(name+"_sum", m)
				add(name+"_count", m)
			default:
				add(name, m)
			}
		}
	}
	return e
}

// TestMonitoringMetricsExist starts the provider binary on loopback against an in-memory
// registry, drives each endpoint and each lookup outcome the dashboard and alerts look at (a
// signed and an unsigned image, a missing tag, a registry outside the allow-list, a registry that
// is down, a malformed request, a certificate reload that succeeds and one that fails), then
// checks every series, label and label value that manifests/monitoring uses against /metrics.
func TestMonitoringMetricsExist(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the provider binary")
	}
	queries := monitoringQueries(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "imagetrust-provider")
	build := exec.Command("go", "build", "-o", bin, "./provider/cmd/imagetrust-provider")
	build.Dir = repoRoot
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./provider/cmd/imagetrust-provider: %v\n%s", err, out)
	}

	// Registry with a signed and an unsigned image.
	reg := registrytest.New()
	t.Cleanup(reg.Close)
	push := func(repoTag string) name.Digest {
		img, err := random.Image(512, 1)
		if err != nil {
			t.Fatal(err)
		}
		ref, err := name.ParseReference(reg.Host + "/" + repoTag)
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Write(ref, img); err != nil {
			t.Fatal(err)
		}
		h, err := img.Digest()
		if err != nil {
			t.Fatal(err)
		}
		return ref.Context().Digest(h.String())
	}
	signed, unsigned := push("mon/signed:1.0.0"), push("mon/unsigned:1.0.0")
	keyFile := filepath.Join(dir, "key.pub")
	sv := newSigner(t, keyFile)
	if err := signing.Sign(signed, sv); err != nil {
		t.Fatal(err)
	}

	// PKI: the provider's serving certificate, and Gatekeeper's CA and client certificate.
	provCA, err := pki.NewCA("imagetrust test provider CA")
	if err != nil {
		t.Fatal(err)
	}
	serving, err := provCA.ServerCert("imagetrust-provider")
	if err != nil {
		t.Fatal(err)
	}
	gkCA, err := pki.NewCA("gatekeeper test CA")
	if err != nil {
		t.Fatal(err)
	}
	client, err := gkCA.ClientCert("gatekeeper")
	if err != nil {
		t.Fatal(err)
	}
	tlsDir := filepath.Join(dir, "tls")
	files, err := pki.WriteDir(tlsDir, provCA, serving)
	if err != nil {
		t.Fatal(err)
	}
	gkCAFile := filepath.Join(dir, "gatekeeper-ca.crt")
	if err := gkCA.WriteCA(gkCAFile); err != nil {
		t.Fatal(err)
	}

	apiPort, opsPort, downPort := freeLoopbackPort(t), freeLoopbackPort(t), freeLoopbackPort(t)
	cfg := fmt.Sprintf(`server:
  address: "127.0.0.1:%d"
  metricsAddress: "127.0.0.1:%d"
  tls: {certFile: %q, keyFile: %q, clientCAFile: %q}
lookup:
  registryTimeout: 1s
registries:
- host: %q
  insecure: true
- host: "127.0.0.1:%d"
  insecure: true
authorities:
- name: monitoring-test
  key:
    file: %q
`, apiPort, opsPort, files.Cert, files.Key, gkCAFile, reg.Host, downPort, keyFile)
	cfgFile := filepath.Join(dir, "provider.yaml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	logFile, err := os.Create(filepath.Join(dir, "provider.log"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "--config="+cfgFile)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		_ = logFile.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logFile.Name())
			t.Logf("provider log:\n%s", b)
		}
	})
	ops := &http.Client{Timeout: 5 * time.Second}
	opsURL := fmt.Sprintf("http://127.0.0.1:%d", opsPort)
	waitUntil(t, 30*time.Second, "provider /readyz", func() error { return getOK(ops, opsURL+"/readyz") })

	tc, err := pki.ClientTLSConfig(provCA, client)
	if err != nil {
		t.Fatal(err)
	}
	api := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: tc}}
	apiURL := fmt.Sprintf("https://127.0.0.1:%d", apiPort)
	keys := []string{
		reg.Host + "/mon/signed:1.0.0",                      // value
		signed.String(),                                     // value, by digest
		unsigned.String(),                                   // verify: unsigned
		reg.Host + "/mon/signed:9.9.9",                      // not found
		"other.example/mon/app:1.0.0",                       // registry not allowed
		fmt.Sprintf("127.0.0.1:%d/mon/app:1.0.0", downPort), // registry down: unavailable
	}
	for _, ep := range []string{"resolve", "mutate", "verify", "verify/signatures"} {
		body, _ := json.Marshal(map[string]any{
			"apiVersion": "externaldata.gatekeeper.sh/v1beta1", "kind": "ProviderRequest",
			"request": map[string]any{"keys": keys},
		})
		post(t, api, apiURL+"/v1/"+ep, body, http.StatusOK)
		post(t, api, apiURL+"/v1/"+ep, []byte("{not json"), http.StatusBadRequest)
	}

	// A certificate reload that works, then one that does not (a key that matches nothing).
	renewed, err := provCA.ServerCert("imagetrust-provider")
	if err != nil {
		t.Fatal(err)
	}
	if err := renewed.WriteFiles(files.Cert, files.Key); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 30*time.Second, `imagetrust_tls_reloads_total{result="ok"}`, func() error {
		return seriesPresent(ops, opsURL, `imagetrust_tls_reloads_total{result="ok"}`)
	})
	if err := pki.WriteFileAtomic(files.Cert, []byte("not a certificate\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 30*time.Second, `imagetrust_tls_reloads_total{result="error"}`, func() error {
		return seriesPresent(ops, opsURL, `imagetrust_tls_reloads_total{result="error"}`)
	})

	resp, err := ops.Get(opsURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parsing /metrics: %v", err)
	}
	have := exposition(t, families)

	used := map[string]bool{}
	for _, q := range queries {
		checkQuery(t, q, have, used)
	}
	var names []string
	for n := range used {
		names = append(names, n)
	}
	sort.Strings(names)
	if !t.Failed() {
		t.Logf("%d expressions use %d series, all on /metrics: %s", len(queries), len(names), strings.Join(names, ", "))
	}
}

// checkQuery checks one expression's series, matchers, grouping labels and legend labels.
func checkQuery(t *testing.T, q promQuery, have exposed, used map[string]bool) {
	t.Helper()
	sels := selectorRE.FindAllStringSubmatch(q.expr, -1)
	if len(sels) == 0 {
		t.Errorf("%s: %q uses no provider series", q.where, q.expr)
		return
	}
	labels := map[string]bool{} // every label of the series used, for grouping and legends
	for _, s := range sels {
		series, matchers := s[1], s[2]
		if scrapeMade[series] {
			continue
		}
		used[series] = true
		got, ok := have[series]
		if !ok {
			t.Errorf("%s: series %s is not on the provider's /metrics", q.where, series)
			continue
		}
		for l := range got {
			labels[l] = true
		}
		for _, m := range matcherRE.FindAllStringSubmatch(matchers, -1) {
			label, op, value := m[1], m[2], m[3]
			if targetLabels[label] {
				continue
			}
			values, ok := got[label]
			if !ok {
				t.Errorf("%s: %s has no label %q", q.where, series, label)
				continue
			}
			if op != "=" && op != "=~" {
				continue
			}
			for _, v := range strings.Split(value, "|") {
				if plainRE.MatchString(v) && !values[v] {
					t.Errorf("%s: %s{%s=%q} never appears on /metrics (seen: %v)", q.where, series, label, v, keysOf(values))
				}
			}
		}
	}
	check := func(what, l string) {
		if l != "" && l != "le" && !labels[l] && !targetLabels[l] {
			t.Errorf("%s: %s label %q is on none of the series of %q", q.where, what, l, q.expr)
		}
	}
	for _, g := range groupingRE.FindAllStringSubmatch(q.expr, -1) {
		for _, l := range strings.Split(g[1], ",") {
			check("grouping", strings.TrimSpace(l))
		}
	}
	for _, l := range legendRE.FindAllStringSubmatch(q.legend, -1) {
		check("legend", l[1])
	}
}

func keysOf(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func freeLoopbackPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func getOK(hc *http.Client, url string) error {
	resp, err := hc.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}

// seriesPresent reports whether /metrics has a line starting with series (name{labels}).
func seriesPresent(hc *http.Client, base, series string) error {
	resp, err := hc.Get(base + "/metrics")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, series+" ") {
			return nil
		}
	}
	return fmt.Errorf("%s not on /metrics yet", series)
}

func post(t *testing.T, hc *http.Client, url string, body []byte, want int) {
	t.Helper()
	resp, err := hc.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("POST %s = %s, want %d\n%s", url, resp.Status, want, b)
	}
}
