package report

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/open-policy-agent/frameworks/constraint/pkg/externaldata"
)

// factsBatch is the number of keys per provider request.
const factsBatch = 100

// Facts asks the providers (the cluster's Provider objects, overridden by ed) what they know
// about every image in the image rollup: digest (/v1/resolve), signature (/v1/verify) and scan
// state (/v1/scan), over the same mTLS client Gatekeeper uses.
func Facts(ctx context.Context, r *Report, in *Inputs, ed ExternalData) error {
	if len(r.Rollups.ByImage) == 0 {
		return nil
	}
	_, provs, err := ed.providerObjects(in.Providers)
	if err != nil {
		return err
	}
	cert, err := ed.clientCert()
	if err != nil {
		return err
	}
	byEndpoint := map[string]int{}
	for i, p := range provs {
		for _, ep := range []string{"/v1/resolve", "/v1/verify", "/v1/scan"} {
			if strings.HasSuffix(p.Spec.URL, ep) {
				byEndpoint[ep] = i
			}
		}
	}
	keys := make([]string, 0, len(r.Rollups.ByImage))
	facts := map[string]*ImageFacts{}
	for i := range r.Rollups.ByImage {
		img := &r.Rollups.ByImage[i]
		img.Facts = &ImageFacts{Signed: "unknown", Scan: "no scan provider"}
		facts[img.Image] = img.Facts
		keys = append(keys, img.Image)
	}
	sort.Strings(keys)
	for _, ep := range []string{"/v1/resolve", "/v1/verify", "/v1/scan"} {
		i, ok := byEndpoint[ep]
		if !ok {
			if ep != "/v1/scan" {
				for _, f := range facts {
					f.Errors = append(f.Errors, "no Provider serves "+ep)
				}
			}
			continue
		}
		p := provs[i]
		for start := 0; start < len(keys); start += factsBatch {
			batch := keys[start:min(len(keys), start+factsBatch)]
			resp, code, err := externaldata.DefaultSendRequestToProvider(ctx, p, batch, cert)
			if err != nil {
				return fmt.Errorf("provider %s (%s): %w", p.Name, p.Spec.URL, err)
			}
			if resp.Response.SystemError != "" {
				return fmt.Errorf("provider %s (%s): HTTP %d: %s", p.Name, p.Spec.URL, code, resp.Response.SystemError)
			}
			for _, item := range resp.Response.Items {
				f := facts[item.Key]
				if f == nil {
					continue
				}
				if item.Error != "" {
					f.Errors = append(f.Errors, strings.TrimPrefix(ep, "/v1/")+": "+item.Error)
					continue
				}
				applyFact(f, ep, item.Value)
			}
		}
	}
	return nil
}

// applyFact reads the fields the report shows from one provider value.
func applyFact(f *ImageFacts, ep string, value any) {
	b, err := json.Marshal(value)
	if err != nil {
		return
	}
	var v struct {
		Digest  string           `json:"digest"`
		Signed  *bool            `json:"signed"`
		Scanned *bool            `json:"scanned"`
		Reason  string           `json:"reason"`
		Counts  map[string]int64 `json:"counts"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return
	}
	if v.Digest != "" && f.Digest == "" {
		f.Digest = v.Digest
	}
	switch ep {
	case "/v1/verify":
		if v.Signed != nil {
			f.Signed = map[bool]string{true: "yes", false: "no"}[*v.Signed]
		}
	case "/v1/scan":
		switch {
		case v.Scanned == nil:
		case !*v.Scanned:
			f.Scan = "not scanned"
			if v.Reason != "" {
				f.Scan += " (" + v.Reason + ")"
			}
		default:
			var parts []string
			for _, sev := range sortedKeys(v.Counts) {
				parts = append(parts, fmt.Sprintf("%s %d", sev, v.Counts[sev]))
			}
			f.Scan = "scanned: " + strings.Join(parts, ", ")
		}
	}
}
