//go:build e2e

package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/open-policy-agent/frameworks/constraint/pkg/externaldata"

	"github.com/imagetrust/imagetrust/provider/internal/pki"
)

// warmProvider asks the provider itself (over mTLS, with a client certificate of Gatekeeper's
// CA) to resolve and verify the sample images the scenarios expect pinned or verified, until
// every key has an answer that is neither "timed out" nor "unavailable". A cold lookup on a
// loaded machine can take longer than the mutate deadline (800 ms) below Gatekeeper's 1 s
// webhook timeout; once the provider has the answers cached, as in a cluster that has been
// running, the scenarios check what the policies decide, not how fast the first lookup was.
// The scenarios still go through Gatekeeper's webhooks and the provider for every object.
func (s *stack) warmProvider(refs ...string) {
	t := s.t
	kp, err := s.certs.gatekeeper.ClientCert("e2e-warm-up")
	if err != nil {
		t.Fatal(err)
	}
	tlsCfg, err := pki.ClientTLSConfig(s.certs.provider, kp)
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsCfg}}
	defer hc.CloseIdleConnections()
	var keys []string
	for _, ref := range refs {
		keys = append(keys, s.regHost+"/"+ref, s.pinned(ref))
	}
	body, err := json.Marshal(externaldata.NewProviderRequest(keys))
	if err != nil {
		t.Fatal(err)
	}
	for _, ep := range []string{"resolve", "verify"} {
		url := fmt.Sprintf("https://127.0.0.1:%d/v1/%s", s.providerPort, ep)
		waitFor(t, 90*time.Second, "provider answers /v1/"+ep+" for the scenario images", func() error {
			resp, err := hc.Post(url, "application/json", bytes.NewReader(body))
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("POST /v1/%s = %d, want %d", ep, resp.StatusCode, http.StatusOK)
			}
			var pr externaldata.ProviderResponse
			if err := json.NewDecoder(resp.Body).Decode(&pr); err != nil {
				return fmt.Errorf("POST /v1/%s: decoding the response: %w", ep, err)
			}
			if pr.Response.SystemError != "" || len(pr.Response.Items) != len(keys) {
				return fmt.Errorf("POST /v1/%s: system error %q, %d items for %d keys", ep, pr.Response.SystemError, len(pr.Response.Items), len(keys))
			}
			for _, it := range pr.Response.Items {
				if strings.HasPrefix(it.Error, "timed out") || strings.HasPrefix(it.Error, "unavailable") {
					return fmt.Errorf("POST /v1/%s: %s: %s", ep, it.Key, it.Error)
				}
			}
			return nil
		}, s.provider)
	}
}
