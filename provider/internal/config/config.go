// Package config is the provider's one configuration file: listen addresses, TLS files,
// registries, cache, deadlines, limits and trust authorities. It is decoded strictly (unknown
// fields are errors) and validated at start with messages that name the field.
package config

import (
	"encoding/json"
	"fmt"
	"time"
)

// Config is the whole provider configuration file.
type Config struct {
	Server      Server      `json:"server"`
	Endpoints   Endpoints   `json:"endpoints"`
	Lookup      Lookup      `json:"lookup"`
	Cache       Cache       `json:"cache"`
	Auth        Auth        `json:"auth"`
	Registries  []Registry  `json:"registries"`
	Authorities []Authority `json:"authorities,omitempty"`
	Scan        Scan        `json:"scan"`
	// Attestations bounds POST /v1/attestations (attestations.go).
	Attestations Attestations `json:"attestations"`
}

// Server holds listen addresses, TLS files and request limits.
type Server struct {
	// Address is the HTTPS listen address for the external-data endpoints (default ":8443").
	Address string `json:"address"`
	// MetricsAddress is the plain-HTTP listen address for /healthz, /readyz and /metrics
	// (default ":8080").
	MetricsAddress string `json:"metricsAddress"`
	TLS            TLS    `json:"tls"`
	// MaxRequestBytes caps a request body (default 1 MiB).
	MaxRequestBytes int64 `json:"maxRequestBytes"`
	// MaxKeys caps the keys of one request (default 1000).
	MaxKeys int `json:"maxKeys"`
	// ShutdownTimeout bounds graceful shutdown (default 10s).
	ShutdownTimeout Duration `json:"shutdownTimeout"`
}

// TLS names the serving certificate and the CA that client certificates must chain to.
// All three files are reloaded when they change.
type TLS struct {
	CertFile     string `json:"certFile"`
	KeyFile      string `json:"keyFile"`
	ClientCAFile string `json:"clientCAFile"`
}

// Endpoints holds the per-endpoint deadlines. Each must stay below the timeout of the
// Gatekeeper Provider object that calls it (validation 3 s, mutation 1 s by default).
type Endpoints struct {
	Resolve Endpoint `json:"resolve"`
	Mutate  Endpoint `json:"mutate"`
	Verify  Endpoint `json:"verify"`
	// VerifySignatures is /v1/verify/signatures: verify reading signatures only, for
	// constraints that ask about no attestation (its own cache and deadline).
	VerifySignatures Endpoint `json:"verifySignatures"`
}

// Endpoint configures one external-data endpoint.
type Endpoint struct {
	// Deadline for a whole batch; keys not done by then get a per-key "timed out" error.
	// Defaults: resolve 2.5s, mutate 800ms, verify and verifySignatures 2.5s.
	Deadline Duration `json:"deadline"`
}

// Lookup bounds registry work.
type Lookup struct {
	// Workers is the size of the worker pool shared by all batches (default 128); one
	// registry host holds at most a quarter of them at once.
	Workers int `json:"workers"`
	// PerRegistryConcurrency caps in-flight requests to one registry host (default 32: against
	// a registry 20 ms away, 8 Gatekeeper clients sending mutation batches of 100 are answered
	// within the 800 ms mutate deadline; 16 misses it, see docs/performance.md).
	PerRegistryConcurrency int `json:"perRegistryConcurrency"`
	// RegistryTimeout bounds one registry operation (default 2s).
	RegistryTimeout Duration `json:"registryTimeout"`
	// MaxPlatforms caps the platforms a /v1/resolve or /v1/verify answer lists for an index
	// (default 256); the answer also carries platformsTotal and platformsTruncated.
	MaxPlatforms int `json:"maxPlatforms"`
	// MaxIndexBytes caps an image index /v1/resolve and /v1/verify read for its platforms
	// (default 256 KiB, about 1,300 platforms; 4 KiB to 4 MiB); a larger index is answered
	// "limit exceeded:" naming this field. /v1/scan reads indexes within 256 KiB too.
	MaxIndexBytes int64 `json:"maxIndexBytes,omitempty"`
	// MaxReferrersBytes caps a referrers list /v1/verify reads, the referrers API's answer or
	// its fallback tag (default 512 KiB, several thousand descriptors, of which verify examines
	// at most 64 in digest order; 4 KiB to 4 MiB); a longer list is answered "limit exceeded:"
	// naming this field, read no further than the cap.
	MaxReferrersBytes int64 `json:"maxReferrersBytes,omitempty"`
}

// Cache configures the answer cache.
type Cache struct {
	// MaxEntries bounds the cache (default 100000).
	MaxEntries int `json:"maxEntries"`
	// MaxBytes bounds the memory each endpoint's cache holds, estimated per entry (key,
	// answer, bookkeeping); the least recently used answers are evicted beyond it (default
	// 32 MiB, at least 1 MiB). Metric imagetrust_cache_bytes.
	MaxBytes int64 `json:"maxBytes"`
	// TTL of a successful answer (default 5m).
	TTL Duration `json:"ttl"`
	// NotFoundTTL of a "not found" / "not signed" answer (default 30s).
	NotFoundTTL Duration `json:"notFoundTTL"`
	// MaxStale: during a registry outage an expired answer is served, marked "stale": true,
	// for at most this long after it expired (default 0: never).
	MaxStale Duration `json:"maxStale"`
}

// Auth configures registry credentials.
type Auth struct {
	// DockerConfigFile is a docker config.json with registry credentials (optional).
	DockerConfigFile string `json:"dockerConfigFile,omitempty"`
	// Kubernetes reads pull secrets through the API server (optional).
	Kubernetes *KubernetesAuth `json:"kubernetes,omitempty"`
}

// KubernetesAuth names where pull secrets are read from (ggcr pkg/authn/kubernetes).
type KubernetesAuth struct {
	Namespace          string   `json:"namespace"`
	ServiceAccountName string   `json:"serviceAccountName,omitempty"`
	ImagePullSecrets   []string `json:"imagePullSecrets,omitempty"`
}

// Registry is one registry the provider may contact. Nothing else is ever contacted.
type Registry struct {
	// Host is host[:port] as in a normalised image reference ("docker.io", "ghcr.io",
	// "registry.bank.internal:5000"); compared case-insensitively.
	Host string `json:"host"`
	// Insecure allows plain HTTP (and only then).
	Insecure bool `json:"insecure,omitempty"`
	// Mirrors serve content by digest in order; tags are resolved at the origin unless
	// the mirror sets TrustTags.
	Mirrors []Mirror `json:"mirrors,omitempty"`
}

// Mirror is a pull-through mirror of a registry.
type Mirror struct {
	Host      string `json:"host"`
	Insecure  bool   `json:"insecure,omitempty"`
	TrustTags bool   `json:"trustTags,omitempty"`
}

// Duration is a time.Duration written as a Go duration string ("2.5s", "5m").
type Duration time.Duration

// UnmarshalJSON accepts a Go duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration must be a string such as \"2s\" or \"5m\", got %s", b)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("invalid duration %q: %w", s, err)
	}
	*d = Duration(v)
	return nil
}

// MarshalJSON writes a Go duration string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }
