package suite

import (
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"

	"github.com/open-policy-agent/frameworks/constraint/pkg/apis/externaldata/unversioned"
	"github.com/open-policy-agent/frameworks/constraint/pkg/externaldata"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/imagetrust/imagetrust/provider/internal/lookup"
	"github.com/imagetrust/imagetrust/provider/internal/scan"
)

// MissingKey is a key the template asked a provider for that no fixture answers.
type MissingKey struct {
	Provider string
	Key      string
}

// MissingFixtureError fails a test case whose review asked for keys the fixtures do not
// answer: a case must never pass or fail because of an answer nobody wrote down.
type MissingFixtureError struct {
	Missing []MissingKey
	Files   []string
}

func (e *MissingFixtureError) Error() string {
	parts := make([]string, 0, len(e.Missing))
	for _, m := range e.Missing {
		parts = append(parts, fmt.Sprintf("provider %q key %q", m.Provider, m.Key))
	}
	files := "no fixture files"
	if len(e.Files) > 0 {
		files = strings.Join(e.Files, ", ")
	}
	return fmt.Sprintf("provider fixtures have no answer for %s (fixture files: %s)", strings.Join(parts, "; "), files)
}

// fixtureServer answers Gatekeeper external-data requests from the fixtures of the suite
// being run, over real HTTPS (the frameworks client requires https, a caBundle and TLS 1.3).
type fixtureServer struct {
	srv      *httptest.Server
	caBundle string

	mu       sync.Mutex
	set      *providerSet
	missing  []MissingKey
	requests int
}

// maxRequestBytes bounds a request body; Gatekeeper batches are far smaller.
const maxRequestBytes = 8 << 20

func newFixtureServer() *fixtureServer {
	fs := &fixtureServer{}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /providers/{name}", fs.serveProvider)
	fs.srv = httptest.NewUnstartedServer(mux)
	fs.srv.EnableHTTP2 = false
	fs.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	fs.srv.StartTLS()
	pemCert := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: fs.srv.Certificate().Raw})
	fs.caBundle = base64.StdEncoding.EncodeToString(pemCert)
	return fs
}

func (fs *fixtureServer) Close() { fs.srv.Close() }

// use switches the server to the fixtures of another suite.
func (fs *fixtureServer) use(set *providerSet) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.set = set
	fs.missing = nil
}

// beginReview starts recording keys without an answer.
func (fs *fixtureServer) beginReview() {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.missing = nil
}

// endReview returns the keys asked for since beginReview that had no answer.
func (fs *fixtureServer) endReview() *MissingFixtureError {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if len(fs.missing) == 0 {
		return nil
	}
	var files []string
	if fs.set != nil {
		files = append(files, fs.set.files...)
	}
	err := &MissingFixtureError{Missing: fs.missing, Files: files}
	fs.missing = nil
	return err
}

// provider returns the Provider object that points at this server for name.
func (fs *fixtureServer) provider(name string) *unversioned.Provider {
	return &unversioned.Provider{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: unversioned.ProviderSpec{
			URL:      fs.srv.URL + "/providers/" + name,
			Timeout:  10,
			CABundle: fs.caBundle,
		},
	}
}

func (fs *fixtureServer) serveProvider(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	r.Body = http.MaxBytesReader(w, r.Body, maxRequestBytes)
	var req externaldata.ProviderRequest
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeResponse(w, http.StatusBadRequest, externaldata.Response{SystemError: "imagetrust verify: decoding request: " + err.Error()})
		return
	}

	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.requests++
	var pa *providerAnswers
	if fs.set != nil {
		pa = fs.set.providers[name]
	}
	if pa == nil {
		// The provider cache only holds providers named in the fixtures, so this is only
		// reachable if the sets changed under a running review.
		writeResponse(w, http.StatusNotFound, externaldata.Response{SystemError: fmt.Sprintf("imagetrust verify: no fixtures for provider %q", name)})
		return
	}
	status := pa.statusCode
	if status == 0 {
		status = http.StatusOK
	}
	if pa.systemError != "" {
		writeResponse(w, status, externaldata.Response{SystemError: pa.systemError})
		return
	}
	resp := externaldata.Response{Idempotent: true}
	keys := append([]string(nil), req.Request.Keys...)
	sort.Strings(keys)
	for _, k := range keys {
		a, ok := pa.keys[k]
		if !ok {
			var err error
			if a, ok, err = queried(name, pa, k); err != nil {
				resp.Items = append(resp.Items, externaldata.Item{Key: k, Error: err.Error()})
				continue
			}
		}
		switch {
		case !ok:
			fs.missing = append(fs.missing, MissingKey{Provider: name, Key: k})
			resp.Items = append(resp.Items, externaldata.Item{Key: k, Error: fmt.Sprintf("imagetrust verify: no fixture for key %q of provider %q", k, name)})
		case a.Omit:
			// Deliberately unanswered.
		case a.Error != "":
			resp.Items = append(resp.Items, externaldata.Item{Key: k, Error: a.Error})
		default:
			resp.Items = append(resp.Items, externaldata.Item{Key: k, Value: a.Value})
		}
	}
	writeResponse(w, status, resp)
}

// queryAnswers are the providers whose keys may carry a query ("<image>#<query>"): a key
// with a query and no fixture of its own is answered from its image's fixture, as the provider
// answers it (its own code shapes the value). The scan template asks for the findings it can
// deny.
var queryAnswers = map[string]func(query string, value json.RawMessage) (json.RawMessage, error){
	"imagetrust-scan": scan.FilterAnswer,
}

// queried is the answer to key of provider name from the fixture of its image, when key has a
// query and the provider takes queries; ok is false when there is none. A query the provider
// would refuse is an error of the provider's class.
func queried(name string, pa *providerAnswers, key string) (answer, bool, error) {
	shape := queryAnswers[name]
	image, query, cut := strings.Cut(key, "#")
	if shape == nil || !cut {
		return answer{}, false, nil
	}
	a, ok := pa.keys[image]
	if !ok || a.Value == nil {
		return a, ok, nil
	}
	v, err := shape(query, a.Value)
	if err != nil {
		return answer{}, false, &lookup.QueryError{Key: key, Err: err}
	}
	a.Value = v
	return a, true, nil
}

func writeResponse(w http.ResponseWriter, status int, r externaldata.Response) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(externaldata.ProviderResponse{
		APIVersion: "externaldata.gatekeeper.sh/v1beta1",
		Kind:       externaldata.ProviderResponseKind,
		Response:   r,
	})
}
