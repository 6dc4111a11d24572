package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/open-policy-agent/frameworks/constraint/pkg/externaldata"

	"github.com/imagetrust/imagetrust/provider/internal/wire"
)

// TestRequestErrors: every malformed request gets a clear systemError and no items.
func TestRequestErrors(t *testing.T) {
	var calls int
	var mu sync.Mutex
	lk := func(ctx context.Context, keys []string) []wire.Item {
		mu.Lock()
		calls++
		mu.Unlock()
		return normalise(ctx, keys)
	}
	d := defaultDeps(lk)
	d.MaxKeys = 3
	d.MaxRequestBytes = 512
	h := NewServer(d)
	for _, tc := range []struct {
		name       string
		path       string
		body       string
		wantStatus int
		wantErr    string
	}{
		{"empty body", "/v1/resolve", "", 400, "empty request body"},
		{"malformed JSON", "/v1/resolve", `{"apiVersion":`, 400, "malformed ProviderRequest: "},
		{"not an object", "/v1/resolve", `["nginx"]`, 400, "malformed ProviderRequest: field (top level) must be an object"},
		{"keys not strings", "/v1/resolve", `{"apiVersion":"externaldata.gatekeeper.sh/v1beta1","kind":"ProviderRequest","request":{"keys":[1]}}`, 400, "field request.keys"},
		{"trailing data", "/v1/resolve", string(requestBody(t, "nginx")) + `{}`, 400, "malformed ProviderRequest"},
		{"wrong kind", "/v1/mutate", `{"apiVersion":"externaldata.gatekeeper.sh/v1beta1","kind":"ProviderResponse","request":{"keys":["a"]}}`, 400, `wrong kind "ProviderResponse"; expected "ProviderRequest"`},
		{"missing kind", "/v1/resolve", `{"apiVersion":"externaldata.gatekeeper.sh/v1beta1","request":{"keys":["a"]}}`, 400, `wrong kind ""`},
		{"wrong apiVersion", "/v1/resolve", `{"apiVersion":"v1","kind":"ProviderRequest","request":{"keys":["a"]}}`, 400, `unsupported apiVersion "v1"`},
		{"too many keys", "/v1/resolve", string(requestBody(t, "a", "b", "c", "d")), 413, "request has 4 keys; the limit is 3"},
		{"oversized body", "/v1/resolve", string(requestBody(t, strings.Repeat("a", 600))), 413, "request body exceeds 512 bytes"},
		{"unknown path", "/v1/sbom", string(requestBody(t, "a")), 404, "no endpoint POST /v1/sbom"},
		{"scan not wired", "/v1/scan", string(requestBody(t, "a")), 404, "endpoint /v1/scan is not enabled"},
		{"verify not wired", "/v1/verify", string(requestBody(t, "a")), 404, "endpoint /v1/verify is not enabled"},
		{"verify signatures not wired", "/v1/verify/signatures", string(requestBody(t, "a")), 404, "endpoint /v1/verify/signatures is not enabled"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, tc.path, strings.NewReader(tc.body)))
			if rec.Code != tc.wantStatus {
				t.Errorf("status = %d, want %d", rec.Code, tc.wantStatus)
			}
			var pr externaldata.ProviderResponse
			if err := json.Unmarshal(rec.Body.Bytes(), &pr); err != nil {
				t.Fatalf("body %q is not a ProviderResponse: %v", rec.Body, err)
			}
			if !strings.Contains(pr.Response.SystemError, tc.wantErr) {
				t.Errorf("systemError = %q, want it to contain %q", pr.Response.SystemError, tc.wantErr)
			}
			if len(pr.Response.Items) != 0 {
				t.Errorf("items = %v, want none", pr.Response.Items)
			}
			if pr.Kind != externaldata.ProviderResponseKind || pr.APIVersion != ResponseAPIVersion {
				t.Errorf("kind/apiVersion = %q/%q, want ProviderResponse/%s", pr.Kind, pr.APIVersion, ResponseAPIVersion)
			}
		})
	}
	if calls != 0 {
		t.Errorf("lookup called %d times for bad requests, want 0", calls)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/resolve", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("GET /v1/resolve = %d, want 405", rec.Code)
	}
}

// TestDedupeAndOrder: the Lookup sees each key once; the answer has one item per unique key.
func TestDedupeAndOrder(t *testing.T) {
	var got [][]string
	var mu sync.Mutex
	lk := func(ctx context.Context, keys []string) []wire.Item {
		mu.Lock()
		got = append(got, slices.Clone(keys))
		mu.Unlock()
		return normalise(ctx, keys)
	}
	s := startStack(t, defaultDeps(lk))
	code, pr := post(t, s.client, s.apiURL+"/v1/resolve", requestBody(t, "nginx", "Bad:Ref", "nginx", "ghcr.io/a/b:1", "Bad:Ref", "nginx"))
	if code != http.StatusOK {
		t.Fatalf("status = %d, want 200", code)
	}
	want := []string{"nginx", "Bad:Ref", "ghcr.io/a/b:1"}
	if len(got) != 1 || !slices.Equal(got[0], want) {
		t.Errorf("Lookup keys = %v, want one call with %v", got, want)
	}
	var keys []string
	for _, it := range pr.Response.Items {
		keys = append(keys, it.Key)
	}
	if !slices.Equal(keys, want) {
		t.Errorf("item keys = %v, want %v", keys, want)
	}
	if e := pr.Response.Items[1].Error; !strings.HasPrefix(e, "invalid reference: ") {
		t.Errorf("item[Bad:Ref].error = %q, want invalid reference: …", e)
	}
	if v := pr.Response.Items[2].Value; v != "ghcr.io/a/b:1" {
		t.Errorf("item[ghcr.io/a/b:1].value = %v, want ghcr.io/a/b:1", v)
	}
	if pr.Response.Idempotent {
		t.Errorf("resolve idempotent = true, want false")
	}
	_, pr = post(t, s.client, s.apiURL+"/v1/mutate", requestBody(t, "nginx"))
	if !pr.Response.Idempotent {
		t.Errorf("mutate idempotent = false, want true")
	}
	_, pr = post(t, s.client, s.apiURL+"/v1/resolve", requestBody(t))
	if pr.Response.SystemError != "" || len(pr.Response.Items) != 0 {
		t.Errorf("no keys: response = %+v, want empty items and no systemError", pr.Response)
	}
}

func TestDedupe(t *testing.T) {
	for _, tc := range []struct{ in, want []string }{
		{nil, nil},
		{[]string{"a"}, []string{"a"}},
		{[]string{"a", "b"}, []string{"a", "b"}},
		{[]string{"a", "a"}, []string{"a"}},
		{[]string{"a", "b", "a", "c", "b", "d"}, []string{"a", "b", "c", "d"}},
		{[]string{"", "", "x"}, []string{"", "x"}},
	} {
		in := slices.Clone(tc.in)
		if got := Dedupe(in); !slices.Equal(got, tc.want) {
			t.Errorf("Dedupe(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if !slices.Equal(in, tc.in) {
			t.Errorf("Dedupe(%q) modified its input to %q", tc.in, in)
		}
	}
}

// TestDeadlinePartialResults: keys a slow lookup finishes before the deadline are answered, the
// rest get "timed out"; a Lookup that ignores its deadline entirely is abandoned.
func TestDeadlinePartialResults(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	// cooperative: answers "fast/" keys at once, blocks on "slow/" keys until the deadline.
	cooperative := func(ctx context.Context, keys []string) []wire.Item {
		items := normalise(ctx, keys)
		for i, k := range keys {
			if strings.HasPrefix(k, "slow/") {
				<-ctx.Done()
				items[i] = wire.Item{Key: k, Error: "timed out: " + ctx.Err().Error()}
			}
		}
		return items
	}
	// stuck: never returns before the test ends.
	stuck := func(_ context.Context, keys []string) []wire.Item {
		<-release
		return normalise(context.Background(), keys)
	}
	d := defaultDeps(cooperative)
	d.Resolve.Deadline = 200 * time.Millisecond
	d.Mutate = Endpoint{Lookup: classified(stuck), Deadline: 200 * time.Millisecond, Idempotent: true}
	// The cooperative lookup answers just after its deadline; a generous grace lets that answer
	// be used however loaded the machine is (the default, 20ms here, could be stalled across).
	// The stuck lookup is still abandoned, after the deadline and the grace.
	d.LateGrace = 2 * time.Second
	s := startStack(t, d)

	code, pr := post(t, s.client, s.apiURL+"/v1/resolve", requestBody(t, "fast/a:1", "slow/b:1", "fast/c:1"))
	if code != 200 {
		t.Fatalf("status = %d, want 200", code)
	}
	want := map[string]string{"fast/a:1": "value", "slow/b:1": "timed out", "fast/c:1": "value"}
	for _, it := range pr.Response.Items {
		switch w := want[it.Key]; {
		case w == "value" && (it.Error != "" || it.Value == nil):
			t.Errorf("item %s = %+v, want a value", it.Key, it)
		case w == "timed out" && !strings.HasPrefix(it.Error, "timed out"):
			t.Errorf("item %s = %+v, want a timed out error", it.Key, it)
		}
	}

	code, pr = post(t, s.client, s.apiURL+"/v1/mutate", requestBody(t, "a", "b"))
	if code != 200 || len(pr.Response.Items) != 2 {
		t.Fatalf("stuck lookup: %d %+v, want 200 with 2 items", code, pr.Response)
	}
	for _, it := range pr.Response.Items {
		if !strings.HasPrefix(it.Error, "timed out: no answer within the 200ms deadline of /v1/mutate") {
			t.Errorf("stuck lookup item %s error = %q, want timed out", it.Key, it.Error)
		}
	}
	if !pr.Response.Idempotent {
		t.Errorf("mutate idempotent = false, want true")
	}
	if got := metricValue(t, s, `imagetrust_keys_total{endpoint="mutate",result="timeout"}`); got != 2 {
		t.Errorf(`imagetrust_keys_total{endpoint="mutate",result="timeout"} = %v, want 2`, got)
	}
}

// TestLookupContractViolations: missing, foreign, null and panicking answers never leave a key
// without an item, and never become a silent allow.
func TestLookupContractViolations(t *testing.T) {
	for _, tc := range []struct {
		name string
		lk   plainLookup
		want map[string]string // key → "value:<v>" or "error:<prefix>"
	}{
		{"missing and foreign items", func(_ context.Context, keys []string) []wire.Item {
			return []wire.Item{{Key: "other", Value: "x"}, {Key: keys[1], Value: "b"}}
		}, map[string]string{"a": "error:unavailable: internal error", "b": "value:b"}},
		{"null value", func(_ context.Context, keys []string) []wire.Item {
			return []wire.Item{{Key: keys[0]}, {Key: keys[1], Value: "b"}}
		}, map[string]string{"a": "error:unavailable: internal error", "b": "value:b"}},
		{"panic", func(context.Context, []string) []wire.Item { panic("boom") },
			map[string]string{"a": "error:unavailable: internal error", "b": "error:unavailable: internal error"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := NewServer(defaultDeps(tc.lk))
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/resolve", bytes.NewReader(requestBody(t, "a", "b"))))
			var pr externaldata.ProviderResponse
			if err := json.Unmarshal(rec.Body.Bytes(), &pr); err != nil || rec.Code != 200 {
				t.Fatalf("response %d %q: %v", rec.Code, rec.Body, err)
			}
			if len(pr.Response.Items) != 2 {
				t.Fatalf("items = %+v, want 2", pr.Response.Items)
			}
			for _, it := range pr.Response.Items {
				w := tc.want[it.Key]
				if v, ok := strings.CutPrefix(w, "value:"); ok && it.Value != v {
					t.Errorf("item %s = %+v, want value %s", it.Key, it, v)
				}
				if e, ok := strings.CutPrefix(w, "error:"); ok && !strings.HasPrefix(it.Error, e) {
					t.Errorf("item %s = %+v, want error %s…", it.Key, it, e)
				}
			}
		})
	}
}

// TestBatchLog: one JSON line per batch with endpoint, keys, duration and errors.
func TestBatchLog(t *testing.T) {
	var buf syncBuffer
	d := defaultDeps(normalise)
	d.Logger = slog.New(slog.NewJSONHandler(&buf, nil))
	h := NewServer(d)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/resolve", bytes.NewReader(requestBody(t, "nginx", "nginx", "UPPER"))))
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 1 {
		t.Fatalf("log lines = %d (%q), want 1", len(lines), buf.String())
	}
	var rec1 map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &rec1); err != nil {
		t.Fatalf("log line %q is not JSON: %v", lines[0], err)
	}
	for k, want := range map[string]any{"msg": "batch", "endpoint": "resolve", "keys": 3.0, "unique": 2.0, "errors": 1.0, "timed_out": 0.0} {
		if rec1[k] != want {
			t.Errorf("log %s = %v, want %v", k, rec1[k], want)
		}
	}
	if _, ok := rec1["duration_ms"].(float64); !ok {
		t.Errorf("log duration_ms = %v, want a number", rec1["duration_ms"])
	}
	if e, _ := rec1["first_error"].(string); !strings.HasPrefix(e, "invalid reference") {
		t.Errorf("log first_error = %q, want invalid reference…", e)
	}
}

func TestHealthReadyMetrics(t *testing.T) {
	s := startStack(t, defaultDeps(normalise))
	post(t, s.client, s.apiURL+"/v1/resolve", requestBody(t, "nginx", "a:b:c"))
	post(t, s.client, s.apiURL+"/v1/resolve", []byte(`{`))
	if code, body := get(t, s.opsURL+"/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("GET /healthz = %d %q, want 200 ok", code, body)
	}
	if code, _ := get(t, s.opsURL+"/readyz"); code != 200 {
		t.Errorf("GET /readyz = %d, want 200", code)
	}
	for metric, want := range map[string]float64{
		`imagetrust_requests_total{code="200",endpoint="resolve"}`:      1,
		`imagetrust_requests_total{code="400",endpoint="resolve"}`:      1,
		`imagetrust_keys_total{endpoint="resolve",result="value"}`:      1,
		`imagetrust_keys_total{endpoint="resolve",result="error"}`:      1,
		`imagetrust_request_duration_seconds_count{endpoint="resolve"}`: 2,
		`imagetrust_requests_in_flight{endpoint="mutate"}`:              0,
	} {
		if got := metricValue(t, s, metric); got != want {
			t.Errorf("%s = %v, want %v", metric, got, want)
		}
	}
	if code, _ := get(t, s.opsURL+"/v1/resolve"); code != http.StatusNotFound {
		t.Errorf("GET ops /v1/resolve = %d, want 404 (API only on the TLS port)", code)
	}
}

// metricValue scrapes /metrics over HTTP and returns the sample named exactly by series.
func metricValue(t *testing.T, s *stack, series string) float64 {
	t.Helper()
	code, body := get(t, s.opsURL+"/metrics")
	if code != 200 {
		t.Fatalf("GET /metrics = %d", code)
	}
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			var f float64
			if _, err := fmt.Sscan(v, &f); err != nil {
				t.Fatalf("metric %s value %q: %v", series, v, err)
			}
			return f
		}
	}
	t.Fatalf("metric %s not exposed in:\n%s", series, body)
	return 0
}

// TestGracefulShutdown: on cancel, readiness fails, the request in flight is answered, then Run
// returns nil and the port is closed.
func TestGracefulShutdown(t *testing.T) {
	entered := make(chan struct{})
	release := make(chan struct{})
	lk := func(ctx context.Context, keys []string) []wire.Item {
		close(entered)
		<-release
		return normalise(ctx, keys)
	}
	d := defaultDeps(lk)
	d.Resolve.Deadline = 30 * time.Second
	s := startStack(t, d)

	type result struct {
		code int
		pr   externaldata.ProviderResponse
		err  error
	}
	res := make(chan result, 1)
	body := requestBody(t, "nginx")
	go func() {
		var r result
		resp, err := s.client.Post(s.apiURL+"/v1/resolve", "application/json", bytes.NewReader(body))
		if err != nil {
			res <- result{err: err}
			return
		}
		defer resp.Body.Close()
		r.code = resp.StatusCode
		r.err = json.NewDecoder(resp.Body).Decode(&r.pr)
		res <- r
	}()
	<-entered
	s.cancel()
	waitFor(t, "readyz to fail", func() bool {
		code, _ := get(t, s.opsURL+"/readyz")
		return code == http.StatusServiceUnavailable
	})
	close(release)
	r := <-res
	if r.err != nil {
		t.Fatalf("in-flight request: %v", r.err)
	}
	if r.code != 200 || len(r.pr.Response.Items) != 1 || r.pr.Response.Items[0].Value != "docker.io/library/nginx:latest" {
		t.Errorf("in-flight request = %d %+v, want 200 with a value", r.code, r.pr.Response)
	}
	if err := <-s.done; err != nil {
		t.Errorf("Run() = %v, want nil", err)
	}
	s.done <- nil // for the cleanup
	if _, err := s.client.Post(s.apiURL+"/v1/resolve", "application/json", bytes.NewReader(requestBody(t, "nginx"))); err == nil {
		t.Errorf("POST after shutdown succeeded, want connection refused")
	}
}

func TestRecoverPanics(t *testing.T) {
	m, _ := NewMetrics(nil)
	var buf syncBuffer
	h := recoverPanics(slog.New(slog.NewJSONHandler(&buf, nil)), m)(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		panic("boom")
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/resolve", nil))
	var pr externaldata.ProviderResponse
	if err := json.Unmarshal(rec.Body.Bytes(), &pr); err != nil || rec.Code != 500 || !strings.Contains(pr.Response.SystemError, "internal error") {
		t.Errorf("panicking handler = %d %q, want 500 with a systemError", rec.Code, rec.Body)
	}
	if !strings.Contains(buf.String(), "panic in handler") {
		t.Errorf("log = %q, want the panic logged", buf.String())
	}
}

// TestVerifySignaturesRoute: /v1/verify/signatures is its own endpoint over mTLS, calling its
// own lookup (not /v1/verify's), and answers other methods with 405.
func TestVerifySignaturesRoute(t *testing.T) {
	var verifyCalls, sigCalls int
	var mu sync.Mutex
	count := func(n *int) plainLookup {
		return func(ctx context.Context, keys []string) []wire.Item {
			mu.Lock()
			*n++
			mu.Unlock()
			return normalise(ctx, keys)
		}
	}
	d := defaultDeps(count(new(int)))
	d.Verify = Endpoint{Lookup: classified(count(&verifyCalls)), Deadline: 30 * time.Second}
	d.VerifySignatures = Endpoint{Lookup: classified(count(&sigCalls)), Deadline: 30 * time.Second}
	s := startStack(t, d)
	code, pr := post(t, s.client, s.apiURL+"/v1/verify/signatures", requestBody(t, "nginx"))
	if code != http.StatusOK || len(pr.Response.Items) != 1 || pr.Response.Items[0].Key != "nginx" {
		t.Fatalf("POST /v1/verify/signatures = %d %+v, want 200 with one item", code, pr.Response)
	}
	if sigCalls != 1 || verifyCalls != 0 {
		t.Errorf("lookups called: signatures %d, verify %d; want 1 and 0", sigCalls, verifyCalls)
	}
	rec := httptest.NewRecorder()
	NewServer(d).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/verify/signatures", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("GET /v1/verify/signatures = %d, want 405", rec.Code)
	}
}

// TestRequestBuffersReused: one endpoint over mTLS answers a sequence of requests whose bodies
// share reused buffers (long, short, without a Content-Length, oversized, short again) each
// with exactly its own keys: nothing of an earlier body leaks into a later request's keys.
func TestRequestBuffersReused(t *testing.T) {
	d := defaultDeps(normalise)
	d.MaxRequestBytes = 4 << 10
	s := startStack(t, d)
	keysOf := func(n int, tag string) []string {
		ks := make([]string, n)
		for i := range ks {
			ks[i] = fmt.Sprintf("registry.example/team/app-%d:%s", i, tag)
		}
		return ks
	}
	for _, tc := range []struct {
		name    string
		keys    []string
		chunked bool
		status  int
	}{
		{"long", keysOf(60, "long"), false, http.StatusOK},
		{"short", keysOf(2, "s"), false, http.StatusOK},
		{"no Content-Length", keysOf(7, "chunked"), true, http.StatusOK},
		{"oversized", keysOf(200, "big"), false, http.StatusRequestEntityTooLarge},
		{"oversized, no Content-Length", keysOf(200, "big"), true, http.StatusRequestEntityTooLarge},
		{"short again", keysOf(1, "x"), false, http.StatusOK},
	} {
		body := requestBody(t, tc.keys...)
		var r io.Reader = bytes.NewReader(body)
		if tc.chunked {
			r = io.MultiReader(r) // length unknown to the client: sent chunked
		}
		resp, err := s.client.Post(s.apiURL+"/v1/resolve", "application/json", r)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		var pr externaldata.ProviderResponse
		err = json.NewDecoder(resp.Body).Decode(&pr)
		resp.Body.Close()
		if err != nil || resp.StatusCode != tc.status {
			t.Fatalf("%s: status %d, %v; want %d", tc.name, resp.StatusCode, err, tc.status)
		}
		if tc.status != http.StatusOK {
			if !strings.Contains(pr.Response.SystemError, "request body exceeds 4096 bytes") {
				t.Errorf("%s: systemError = %q", tc.name, pr.Response.SystemError)
			}
			continue
		}
		var got []string
		for _, it := range pr.Response.Items {
			got = append(got, it.Key)
		}
		if !slices.Equal(got, tc.keys) {
			t.Errorf("%s: item keys = %v, want %v", tc.name, got, tc.keys)
		}
	}
}
