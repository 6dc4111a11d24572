// Package demo is `make demo`: an in-memory registry with signed and unsigned sample images,
// the real provider over mTLS, Gatekeeper's mutation system running the Assign mutators of
// manifests/ against the provider's /v1/mutate, and the frameworks constraint client (the engine
// Gatekeeper's validating webhook runs) evaluating templates/ and constraints/ against sample
// workloads. It reports one row per container: what Gatekeeper would decide and why.
package demo

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"text/template"
	"time"

	"github.com/go-logr/logr"
	"github.com/open-policy-agent/frameworks/constraint/pkg/apis/externaldata/unversioned"
	"github.com/open-policy-agent/frameworks/constraint/pkg/client/drivers/rego"
	"github.com/open-policy-agent/frameworks/constraint/pkg/externaldata"
	mutationsunversioned "github.com/open-policy-agent/gatekeeper/v3/apis/mutations/unversioned"
	"github.com/open-policy-agent/gatekeeper/v3/pkg/mutation"
	"github.com/open-policy-agent/gatekeeper/v3/pkg/mutation/mutators/assign"
	mtypes "github.com/open-policy-agent/gatekeeper/v3/pkg/mutation/types"
	"github.com/open-policy-agent/gatekeeper/v3/pkg/util"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/certwatcher"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/imagetrust/imagetrust/provider/internal/policy"
	"github.com/imagetrust/imagetrust/provider/internal/signing"
)

//go:embed samples.yaml
var samplesYAML string

// Options configures Run.
type Options struct {
	// RepoDir is the repository root: templates/, constraints/ and manifests/ are read from it.
	RepoDir string
	// WorkDir receives the generated PKI, keys and provider configuration (required).
	WorkDir string
	// ProviderLog receives the provider's JSON log lines (nil: discarded).
	ProviderLog io.Writer
}

// Decision is what Gatekeeper does with one container's image.
type Decision string

// Decisions, strongest first.
const (
	Deny    Decision = "deny"
	Warn    Decision = "warn"
	Mutated Decision = "mutated"
	Allow   Decision = "allow"
)

// Row is one container of one sample object.
type Row struct {
	Cluster   string
	Object    string // Kind namespace/name
	Container string // name; init containers prefixed "init:"
	Image     string // as written (display form)
	Pinned    string // the image after mutation, when the mutator changed it (display form)
	Decision  Decision
	Reasons   []string // "constraint: message" (display form)
}

// Object is one reviewed sample.
type Object struct {
	Cluster  string
	Name     string // Kind namespace/name
	Scenario string
	Admitted bool
	Rows     []Row
}

// Report is the outcome of Run.
type Report struct {
	RegistryHost string // 127.0.0.1:port, standing in for registry.bank.internal
	ProviderAddr string
	ConfigFile   string
	Templates    []string
	Mutators     int
	// Digests of the sample images pushed to the registry ("registry.bank.internal/repo:tag" →
	// "sha256:…").
	Digests map[string]string
	Objects []Object
	// Requests the provider answered, by endpoint (resolve, mutate, verify, scan).
	Requests map[string]int
	Elapsed  time.Duration
}

// Run starts everything, reviews the samples and stops everything again.
func Run(ctx context.Context, o Options) (rep *Report, err error) {
	start := time.Now()
	if o.WorkDir == "" {
		return nil, errors.New("demo: WorkDir is required")
	}
	if o.ProviderLog == nil {
		o.ProviderLog = io.Discard
	}
	for _, p := range []string{"templates", "constraints", mutatorsFile, providersFile} {
		if _, err := os.Stat(filepath.Join(o.RepoDir, p)); err != nil {
			return nil, fmt.Errorf("demo: %s not found under %q (run at the repository root or pass -repo): %w", p, o.RepoDir, err)
		}
	}
	// Gatekeeper's mutation system logs ignored external-data failures through controller-runtime;
	// the table reports them instead.
	ctrllog.SetLogger(logr.Discard())

	// The bank's signing key (authority bank-kms), a key nobody trusts, and the CI scanner's key
	// (scanner ci-trivy), each with its public key file in WorkDir/keys/<name>/key.pub.
	var bank, other, scan *signing.Key
	for _, k := range []struct {
		name string
		key  **signing.Key
	}{{"bank-kms", &bank}, {"untrusted", &other}, {"ci-trivy", &scan}} {
		dir := filepath.Join(o.WorkDir, "keys", k.name)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("demo: %w", err)
		}
		if *k.key, err = signing.NewKey(dir); err != nil {
			return nil, fmt.Errorf("demo: key %s: %w", k.name, err)
		}
	}
	e := &env{dir: o.WorkDir}
	defer func() {
		if cerr := e.close(); cerr != nil && err == nil {
			err = fmt.Errorf("demo: stopping the provider: %w", cerr)
		}
	}()
	if err := e.startRegistry(ctx, bank.Signer, other.Signer, scan.Signer); err != nil {
		return nil, fmt.Errorf("demo: registry: %w", err)
	}
	if err := e.startProvider(ctx, bank.PublicFile, scan.PublicFile, o.ProviderLog); err != nil {
		return nil, fmt.Errorf("demo: provider: %w", err)
	}

	pc, err := e.providerCache(o.RepoDir)
	if err != nil {
		return nil, fmt.Errorf("demo: %s: %w", providersFile, err)
	}
	cw, err := certwatcher.New(e.certFile, e.keyFile)
	if err != nil {
		return nil, fmt.Errorf("demo: gatekeeper client certificate: %w", err)
	}
	sub := strings.NewReplacer(BankRegistry, e.regHost, "{{ignoreExpires}}", IgnoreExpires(start))

	// Gatekeeper's mutation system with the Assign mutators from manifests/.
	msys := mutation.NewSystem(mutation.SystemOpts{ProviderCache: pc, ClientCertWatcher: cw})
	nMut, err := loadMutators(msys, filepath.Join(o.RepoDir, mutatorsFile))
	if err != nil {
		return nil, fmt.Errorf("demo: %s: %w", mutatorsFile, err)
	}

	// One validation client per cluster; every driver gets the same provider cache and client
	// certificate (external_data is registered process-wide, by the last driver created).
	tmplFiles, err := filepath.Glob(filepath.Join(o.RepoDir, "templates", "*.yaml"))
	if err != nil || len(tmplFiles) == 0 {
		return nil, fmt.Errorf("demo: no templates/*.yaml under %q", o.RepoDir)
	}
	sort.Strings(tmplFiles)
	clients := map[string]*policy.Client{}
	for _, cl := range Clusters {
		c, err := policy.New(
			policy.WithEnforcementPoint(util.WebhookEnforcementPoint),
			policy.WithDriverArgs(rego.AddExternalDataProviderCache(pc), rego.EnableExternalDataClientAuth(),
				rego.AddExternalDataClientCertWatcher(cw)))
		if err != nil {
			return nil, fmt.Errorf("demo: %w", err)
		}
		if err := c.AddFiles(ctx, tmplFiles...); err != nil {
			return nil, fmt.Errorf("demo: %w", err)
		}
		var docs []string
		for _, f := range cl.Constraints {
			b, err := os.ReadFile(filepath.Join(o.RepoDir, f))
			if err != nil {
				return nil, fmt.Errorf("demo: %w", err)
			}
			docs = append(docs, string(b))
		}
		for _, x := range cl.Extra {
			docs = append(docs, x.YAML)
		}
		for _, d := range docs {
			objs, err := policy.DecodeYAML([]byte(sub.Replace(d)))
			if err != nil {
				return nil, fmt.Errorf("demo: cluster %s constraints: %w", cl.Name, err)
			}
			for _, u := range objs {
				if err := c.AddConstraint(ctx, u); err != nil {
					return nil, fmt.Errorf("demo: cluster %s: %w", cl.Name, err)
				}
			}
		}
		clients[cl.Name] = c
	}

	samples, err := e.samples(sub, IgnoreExpires(start))
	if err != nil {
		return nil, fmt.Errorf("demo: samples: %w", err)
	}
	rep = &Report{RegistryHost: e.regHost, ProviderAddr: e.apiAddr, ConfigFile: e.cfgFile, Mutators: nMut,
		Digests: map[string]string{}}
	for ref, d := range e.digests {
		rep.Digests[BankRegistry+"/"+ref] = d
	}
	for _, f := range tmplFiles {
		rep.Templates = append(rep.Templates, filepath.ToSlash(filepath.Join("templates", filepath.Base(f))))
	}
	// Shown as registry.bank.internal, except in URLs (the provider talked to the loopback).
	display := strings.NewReplacer("://"+e.regHost, "://"+e.regHost, e.regHost, BankRegistry)
	for _, u := range samples {
		cluster := u.GetAnnotations()["demo.imagetrust.dev/cluster"]
		c := clients[cluster]
		if c == nil {
			return nil, fmt.Errorf("demo: sample %s/%s: unknown cluster %q", u.GetNamespace(), u.GetName(), cluster)
		}
		obj, err := admit(ctx, msys, c, u, display)
		if err != nil {
			return nil, fmt.Errorf("demo: %w", err)
		}
		obj.Cluster = cluster
		rep.Objects = append(rep.Objects, *obj)
	}
	if rep.Requests, err = e.requests(); err != nil {
		return nil, fmt.Errorf("demo: provider metrics: %w", err)
	}
	rep.Elapsed = time.Since(start)
	return rep, nil
}

// providerCache holds the Provider objects of manifests/, pointed at the demo provider's
// loopback address with the demo CA as caBundle (the timeouts are the manifests').
func (e *env) providerCache(repo string) (*externaldata.ProviderCache, error) {
	b, err := os.ReadFile(filepath.Join(repo, providersFile))
	if err != nil {
		return nil, err
	}
	objs, err := policy.DecodeYAML(b)
	if err != nil {
		return nil, err
	}
	pc := externaldata.NewCache()
	n := 0
	for _, u := range objs {
		if u.GetKind() != "Provider" {
			continue
		}
		tv, _, _ := unstructured.NestedFieldNoCopy(u.Object, "spec", "timeout")
		var timeout int
		switch t := tv.(type) {
		case int64:
			timeout = int(t)
		case float64:
			timeout = int(t)
		}
		if timeout <= 0 {
			return nil, fmt.Errorf("Provider %s: spec.timeout %v is not a positive number of seconds", u.GetName(), tv)
		}
		url, _, _ := unstructured.NestedString(u.Object, "spec", "url")
		path := url[strings.LastIndex(url, "/v1/"):]
		if !strings.HasPrefix(path, "/v1/") {
			return nil, fmt.Errorf("Provider %s: spec.url %q has no /v1/ path", u.GetName(), url)
		}
		if err := pc.Upsert(&unversioned.Provider{
			ObjectMeta: metav1.ObjectMeta{Name: u.GetName()},
			Spec:       unversioned.ProviderSpec{URL: "https://" + e.apiAddr + path, Timeout: timeout, CABundle: e.caBundle},
		}); err != nil {
			return nil, fmt.Errorf("Provider %s: %w", u.GetName(), err)
		}
		n++
	}
	if n == 0 {
		return nil, errors.New("no Provider objects")
	}
	return pc, nil
}

func loadMutators(sys *mutation.System, path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	objs, err := policy.DecodeYAML(b)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, u := range objs {
		if u.GetKind() != "Assign" {
			return 0, fmt.Errorf("%s %s: only Assign mutators are expected", u.GetKind(), u.GetName())
		}
		a := &mutationsunversioned.Assign{}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, a); err != nil {
			return 0, fmt.Errorf("Assign %s: %w", u.GetName(), err)
		}
		m, err := assign.MutatorForAssign(a)
		if err != nil {
			return 0, fmt.Errorf("Assign %s: %w", u.GetName(), err)
		}
		if err := sys.Upsert(m); err != nil {
			return 0, fmt.Errorf("Assign %s: %w", u.GetName(), err)
		}
		n++
	}
	return n, nil
}

// samples renders samples.yaml: digests of pushed images and the ignore entry's expiry filled
// in, the bank registry replaced by the loopback registry.
func (e *env) samples(sub *strings.Replacer, ignoreExpires string) ([]*unstructured.Unstructured, error) {
	t, err := template.New("samples").Option("missingkey=error").Funcs(template.FuncMap{
		"ignoreExpires": func() string { return ignoreExpires },
		"digest": func(ref string) (string, error) {
			d, ok := e.digests[ref]
			if !ok {
				return "", fmt.Errorf("no sample image %q", ref)
			}
			return d, nil
		},
	}).Parse(samplesYAML)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, nil); err != nil {
		return nil, err
	}
	return policy.DecodeYAML([]byte(sub.Replace(buf.String())))
}

// container is one container of a sample, with where it sits in the object.
type container struct {
	field string // containers, initContainers, ephemeralContainers
	name  string
	image string
}

// podSpecPath is where the pod spec of each kind lives.
func podSpecPath(kind string) []string {
	switch kind {
	case "Pod":
		return []string{"spec"}
	case "CronJob":
		return []string{"spec", "jobTemplate", "spec", "template", "spec"}
	default:
		return []string{"spec", "template", "spec"}
	}
}

func containers(u *unstructured.Unstructured) []container {
	var out []container
	for _, f := range []string{"initContainers", "containers", "ephemeralContainers"} {
		list, _, _ := unstructured.NestedSlice(u.Object, append(podSpecPath(u.GetKind()), f)...)
		for _, c := range list {
			m, ok := c.(map[string]any)
			if !ok {
				continue
			}
			n, _ := m["name"].(string)
			img, _ := m["image"].(string)
			out = append(out, container{field: f, name: n, image: img})
		}
	}
	return out
}

var containerMsg = regexp.MustCompile(`^container <([^>]*)> (image <[^>]*> )?`)

// admit does what Gatekeeper does with a create request: the mutating webhook runs the
// mutators (pinning tags through /v1/mutate), then the validating webhook reviews the mutated
// object with every constraint.
func admit(ctx context.Context, msys *mutation.System, c *policy.Client, u *unstructured.Unstructured, display *strings.Replacer) (*Object, error) {
	id := fmt.Sprintf("%s %s/%s", u.GetKind(), u.GetNamespace(), u.GetName())
	before := containers(u)
	mutated := u.DeepCopy()
	_, err := msys.Mutate(ctx, &mtypes.Mutable{
		Object:    mutated,
		Namespace: &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: u.GetNamespace()}},
		Username:  "newcomer",
		Source:    mtypes.SourceTypeOriginal,
		Operation: "CREATE",
	})
	if err != nil {
		return nil, fmt.Errorf("mutating %s: %w", id, err)
	}
	after := containers(mutated)
	if len(after) != len(before) {
		return nil, fmt.Errorf("mutating %s changed its containers", id)
	}
	vs, err := c.Review(ctx, mutated)
	if err != nil {
		return nil, err
	}
	obj := &Object{Name: id, Scenario: u.GetAnnotations()["demo.imagetrust.dev/scenario"], Admitted: true}
	for i, b := range before {
		r := Row{Object: id, Container: b.name, Image: display.Replace(b.image), Decision: Allow}
		if b.field == "initContainers" {
			r.Container = "init:" + b.name
		}
		if after[i].image != b.image {
			r.Pinned = display.Replace(after[i].image)
			r.Decision = Mutated
			r.Reasons = append(r.Reasons, "imagetrust-mutate: pinned to <"+r.Pinned+">")
		}
		for _, v := range vs {
			m := containerMsg.FindStringSubmatch(v.Msg)
			if m != nil && m[1] != b.name {
				continue
			}
			msg := v.Msg
			if m != nil {
				msg = msg[len(m[0]):]
			}
			cname := v.Constraint[strings.Index(v.Constraint, "/")+1:]
			r.Reasons = append(r.Reasons, fmt.Sprintf("%s (%s): %s", cname, v.EnforcementAction, display.Replace(msg)))
			switch v.EnforcementAction {
			case "deny":
				r.Decision = Deny
			case "warn":
				if r.Decision != Deny {
					r.Decision = Warn
				}
			}
		}
		if r.Decision == Deny {
			obj.Admitted = false
		}
		obj.Rows = append(obj.Rows, r)
	}
	for _, v := range vs {
		if v.EnforcementAction == "deny" {
			obj.Admitted = false
		}
	}
	return obj, nil
}
