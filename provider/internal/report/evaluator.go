package report

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/open-policy-agent/frameworks/constraint/pkg/apis/externaldata/unversioned"
	"github.com/open-policy-agent/frameworks/constraint/pkg/client/drivers/rego"
	"github.com/open-policy-agent/frameworks/constraint/pkg/externaldata"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/certwatcher"

	"github.com/imagetrust/imagetrust/provider/internal/policy"
)

// ExternalData says how external_data calls are answered during re-evaluation and where
// provider facts are read. The zero value uses the cluster's Provider objects as they are
// (their URLs resolve inside the cluster) without a client certificate.
type ExternalData struct {
	// ProviderURL replaces scheme://host[:port] of every Provider's spec.url, keeping its
	// path (optional; for a port-forward or an in-process provider).
	ProviderURL string
	// CABundle (base64 PEM) replaces every Provider's spec.caBundle (optional).
	CABundle string
	// CertFile and KeyFile are the client certificate presented to providers (optional; the
	// imagetrust provider requires one signed by its client CA).
	CertFile, KeyFile string
}

func (ed ExternalData) clientCert() (*tls.Certificate, error) {
	if ed.CertFile == "" && ed.KeyFile == "" {
		return nil, nil
	}
	if ed.CertFile == "" || ed.KeyFile == "" {
		return nil, fmt.Errorf("provider client certificate: both the certificate and the key file are needed (got cert %q, key %q)", ed.CertFile, ed.KeyFile)
	}
	c, err := tls.LoadX509KeyPair(ed.CertFile, ed.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("provider client certificate %s: %w", ed.CertFile, err)
	}
	return &c, nil
}

// providerObjects converts the cluster's Provider objects, applying the overrides.
func (ed ExternalData) providerObjects(in []*unstructured.Unstructured) ([]*unstructured.Unstructured, []*unversioned.Provider, error) {
	var out []*unversioned.Provider
	for _, u := range in {
		raw, _, _ := unstructured.NestedString(u.Object, "spec", "url")
		timeout := int(toInt64(nestedAny(u.Object, "spec", "timeout")))
		ca, _, _ := unstructured.NestedString(u.Object, "spec", "caBundle")
		if ed.CABundle != "" {
			ca = ed.CABundle
		}
		target := raw
		if ed.ProviderURL != "" {
			pu, err := url.Parse(raw)
			if err != nil {
				return nil, nil, fmt.Errorf("Provider %s: spec.url %q: %w", u.GetName(), raw, err)
			}
			base, err := url.Parse(ed.ProviderURL)
			if err != nil || base.Host == "" {
				return nil, nil, fmt.Errorf("provider URL %q is not an absolute URL", ed.ProviderURL)
			}
			pu.Scheme, pu.Host = base.Scheme, base.Host
			pu.Path = strings.TrimSuffix(base.Path, "/") + pu.Path
			target = pu.String()
		}
		out = append(out, &unversioned.Provider{
			ObjectMeta: metav1.ObjectMeta{Name: u.GetName()},
			Spec:       unversioned.ProviderSpec{URL: target, Timeout: timeout, CABundle: ca},
		})
	}
	return in, out, nil
}

func nestedAny(obj map[string]any, path ...string) any {
	v, _, _ := unstructured.NestedFieldNoCopy(obj, path...)
	return v
}

// NewEvaluator loads the cluster's templates and constraints (status removed) into the
// frameworks client that Gatekeeper's audit runs (provider/internal/policy, audit enforcement
// point), with external_data answered by the Providers as ed says.
func NewEvaluator(ctx context.Context, in *Inputs, ed ExternalData) (*policy.Client, error) {
	_, provs, err := ed.providerObjects(in.Providers)
	if err != nil {
		return nil, err
	}
	pc := externaldata.NewCache()
	for _, p := range provs {
		if err := pc.Upsert(p); err != nil {
			return nil, fmt.Errorf("Provider %s (url %s): %w", p.Name, p.Spec.URL, err)
		}
	}
	args := []rego.Arg{
		rego.AddExternalDataProviderCache(pc),
		// As Gatekeeper: idempotent answers are reused for 3 minutes.
		rego.AddExternalDataProviderResponseCache(externaldata.NewProviderResponseCache(ctx, 3*time.Minute)),
	}
	if ed.CertFile != "" || ed.KeyFile != "" {
		if _, err := ed.clientCert(); err != nil {
			return nil, err
		}
		cw, err := certwatcher.New(ed.CertFile, ed.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("provider client certificate: %w", err)
		}
		args = append(args, rego.EnableExternalDataClientAuth(), rego.AddExternalDataClientCertWatcher(cw))
	}
	pcl, err := policy.New(policy.WithDriverArgs(args...))
	if err != nil {
		return nil, err
	}
	for _, u := range in.Templates {
		if _, err := pcl.AddTemplate(ctx, clean(u)); err != nil {
			return nil, err
		}
	}
	for _, u := range in.Constraints {
		if err := pcl.AddConstraint(ctx, clean(u)); err != nil {
			return nil, err
		}
	}
	return pcl, nil
}

// clean returns a copy without status and server-set metadata, as the object was applied.
func clean(u *unstructured.Unstructured) *unstructured.Unstructured {
	c := u.DeepCopy()
	delete(c.Object, "status")
	c.SetManagedFields(nil)
	c.SetResourceVersion("")
	c.SetUID("")
	c.SetCreationTimestamp(metav1.Time{})
	c.SetGeneration(0)
	return c
}
