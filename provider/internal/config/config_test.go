package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const minimal = `
server:
  tls: {certFile: /tls/tls.crt, keyFile: /tls/tls.key, clientCAFile: /tls/ca.crt}
registries:
  - host: ghcr.io
`

func TestExampleParses(t *testing.T) {
	c, err := Parse(Example())
	if err != nil {
		t.Fatalf("Parse(Example()) = %v, want nil", err)
	}
	if got, want := len(c.Registries), 4; got != want {
		t.Errorf("len(Registries) = %d, want %d", got, want)
	}
	if got, want := c.Cache.MaxStale.D(), time.Hour; got != want {
		t.Errorf("Cache.MaxStale = %v, want %v", got, want)
	}
}

func TestDefaults(t *testing.T) {
	c, err := Parse([]byte(minimal))
	if err != nil {
		t.Fatalf("Parse(minimal) = %v", err)
	}
	for _, tc := range []struct {
		name      string
		got, want any
	}{
		{"server.address", c.Server.Address, DefaultAddress},
		{"server.metricsAddress", c.Server.MetricsAddress, DefaultMetricsAddress},
		{"server.maxRequestBytes", c.Server.MaxRequestBytes, int64(DefaultMaxRequestBytes)},
		{"server.maxKeys", c.Server.MaxKeys, DefaultMaxKeys},
		{"server.shutdownTimeout", c.Server.ShutdownTimeout.D(), DefaultShutdownTimeout},
		{"endpoints.resolve.deadline", c.Endpoints.Resolve.Deadline.D(), DefaultResolveDeadline},
		{"endpoints.mutate.deadline", c.Endpoints.Mutate.Deadline.D(), DefaultMutateDeadline},
		{"endpoints.verify.deadline", c.Endpoints.Verify.Deadline.D(), DefaultVerifyDeadline},
		{"endpoints.verifySignatures.deadline", c.Endpoints.VerifySignatures.Deadline.D(), DefaultVerifySignaturesDeadline},
		{"lookup.workers", c.Lookup.Workers, DefaultWorkers},
		{"lookup.perRegistryConcurrency", c.Lookup.PerRegistryConcurrency, DefaultPerRegistryConcurrency},
		{"lookup.registryTimeout", c.Lookup.RegistryTimeout.D(), DefaultRegistryTimeout},
		{"lookup.maxPlatforms", c.Lookup.MaxPlatforms, DefaultMaxPlatforms},
		{"cache.maxEntries", c.Cache.MaxEntries, DefaultCacheMaxEntries},
		{"cache.maxBytes", c.Cache.MaxBytes, int64(DefaultCacheMaxBytes)},
		{"cache.ttl", c.Cache.TTL.D(), DefaultCacheTTL},
		{"cache.notFoundTTL", c.Cache.NotFoundTTL.D(), DefaultCacheNotFoundTTL},
		{"cache.maxStale", c.Cache.MaxStale.D(), time.Duration(0)},
	} {
		if tc.got != tc.want {
			t.Errorf("%s = %v, want %v", tc.name, tc.got, tc.want)
		}
	}
}

func TestHostsLowerCased(t *testing.T) {
	c, err := Parse([]byte(minimal + "  - host: Registry.Bank.Internal:5000\n    mirrors: [{host: MIRROR.bank.internal}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.Registries[1].Host, "registry.bank.internal:5000"; got != want {
		t.Errorf("Registries[1].Host = %q, want %q", got, want)
	}
	if got, want := c.Registries[1].Mirrors[0].Host, "mirror.bank.internal"; got != want {
		t.Errorf("Mirrors[0].Host = %q, want %q", got, want)
	}
}

// TestDecodeErrors: unknown fields, mistyped values and bad durations are rejected with the
// field path.
func TestDecodeErrors(t *testing.T) {
	for _, tc := range []struct {
		name, yaml, want string
	}{
		{"unknown top-level field", minimal + "extra: 1\n", `extra: unknown field`},
		{"unknown nested field", minimal + "  - host: quay.io\n    mirrors: [{host: m.example, hosst: x}]\n", `registries[1].mirrors[0].hosst: unknown field`},
		{"field name case differs", minimal + "cache: {TTL: 5m}\n", `cache.TTL: unknown field`},
		{"unknown server field", strings.Replace(minimal, "server:\n", "server:\n  port: 8443\n", 1), `server.port: unknown field`},
		{"string for int", minimal + "lookup: {workers: many}\n", `lookup.workers: expected an integer, got "many"`},
		{"fraction for int", strings.Replace(minimal, "server:\n", "server:\n  maxKeys: 1.5\n", 1), `server.maxKeys: expected an integer, got 1.5`},
		{"bool field as string", minimal + "  - host: quay.io\n    insecure: \"sure\"\n", `registries[1].insecure: expected true or false`},
		{"bad duration", minimal + "cache: {ttl: 5 minutes}\n", `cache.ttl: invalid duration "5 minutes"`},
		{"number duration", minimal + "endpoints: {mutate: {deadline: 800}}\n", `endpoints.mutate.deadline: duration must be a string`},
		{"list expected", strings.Replace(minimal, "registries:\n  - host: ghcr.io\n", "registries: ghcr.io\n", 1), `registries: expected a list, got "ghcr.io"`},
		{"duplicate key", minimal + "cache: {ttl: 1m}\ncache: {ttl: 2m}\n", `key "cache" already set`},
		{"not YAML", "server: [\n", `parsing YAML`},
		{"authority unknown field", minimal + "authorities: [{name: a, key: {file: k.pem, path: x}}]\n", `authorities[0].key.path: unknown field`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Parse() = %v, want error containing %q", err, tc.want)
			}
		})
	}
}

// TestValidationErrors: each invalid value is reported with its field path.
func TestValidationErrors(t *testing.T) {
	base := func() *Config {
		c, err := Parse([]byte(minimal))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	for _, tc := range []struct {
		name   string
		mutate func(*Config)
		field  string
		want   string
	}{
		{"bad address", func(c *Config) { c.Server.Address = "8443" }, "server.address", "not host:port"},
		{"bad metrics port", func(c *Config) { c.Server.MetricsAddress = ":99999" }, "server.metricsAddress", "invalid port"},
		{"same ports", func(c *Config) { c.Server.MetricsAddress = c.Server.Address }, "server.metricsAddress", "must be separate"},
		{"no cert file", func(c *Config) { c.Server.TLS.CertFile = "" }, "server.tls.certFile", "required"},
		{"no key file", func(c *Config) { c.Server.TLS.KeyFile = " " }, "server.tls.keyFile", "required"},
		{"no client CA", func(c *Config) { c.Server.TLS.ClientCAFile = "" }, "server.tls.clientCAFile", "required"},
		{"negative body cap", func(c *Config) { c.Server.MaxRequestBytes = -1 }, "server.maxRequestBytes", "out of range"},
		{"huge body cap", func(c *Config) { c.Server.MaxRequestBytes = 1 << 40 }, "server.maxRequestBytes", "out of range"},
		{"too many keys", func(c *Config) { c.Server.MaxKeys = MaxKeysLimit + 1 }, "server.maxKeys", "out of range"},
		{"negative shutdown", func(c *Config) { c.Server.ShutdownTimeout = -1 }, "server.shutdownTimeout", "must be positive"},
		{"mutate deadline at Gatekeeper's", func(c *Config) { c.Endpoints.Mutate.Deadline = Duration(time.Second) }, "endpoints.mutate.deadline", "below Gatekeeper's 1s"},
		{"negative resolve deadline", func(c *Config) { c.Endpoints.Resolve.Deadline = -1 }, "endpoints.resolve.deadline", "must be positive"},
		{"long verify deadline", func(c *Config) { c.Endpoints.Verify.Deadline = Duration(time.Hour) }, "endpoints.verify.deadline", "longer than the maximum"},
		{"long verifySignatures deadline", func(c *Config) { c.Endpoints.VerifySignatures.Deadline = Duration(time.Hour) }, "endpoints.verifySignatures.deadline", "longer than the maximum"},
		{"negative verifySignatures deadline", func(c *Config) { c.Endpoints.VerifySignatures.Deadline = -1 }, "endpoints.verifySignatures.deadline", "must be positive"},
		{"no workers", func(c *Config) { c.Lookup.Workers = -3 }, "lookup.workers", "out of range"},
		{"no per-registry slots", func(c *Config) { c.Lookup.PerRegistryConcurrency = -1 }, "lookup.perRegistryConcurrency", "out of range"},
		{"registry timeout", func(c *Config) { c.Lookup.RegistryTimeout = -1 }, "lookup.registryTimeout", "must be positive"},
		{"negative platform cap", func(c *Config) { c.Lookup.MaxPlatforms = -1 }, "lookup.maxPlatforms", "out of range (1..4096)"},
		{"huge platform cap", func(c *Config) { c.Lookup.MaxPlatforms = MaxPlatformsLimit + 1 }, "lookup.maxPlatforms", "out of range"},
		{"cache entries", func(c *Config) { c.Cache.MaxEntries = -1 }, "cache.maxEntries", "must be positive"},
		{"cache bytes", func(c *Config) { c.Cache.MaxBytes = 1000 }, "cache.maxBytes", "below the minimum"},
		{"not-found TTL above TTL", func(c *Config) { c.Cache.NotFoundTTL = Duration(time.Hour) }, "cache.notFoundTTL", "longer than cache.ttl"},
		{"negative max stale", func(c *Config) { c.Cache.MaxStale = -1 }, "cache.maxStale", "must not be negative"},
		{"kubernetes without namespace", func(c *Config) { c.Auth.Kubernetes = &KubernetesAuth{} }, "auth.kubernetes.namespace", "required"},
		{"empty pull secret", func(c *Config) {
			c.Auth.Kubernetes = &KubernetesAuth{Namespace: "ns", ImagePullSecrets: []string{"ok", ""}}
		}, "auth.kubernetes.imagePullSecrets[1]", "empty"},
		{"no registries", func(c *Config) { c.Registries = nil }, "registries", "at least one"},
		{"scheme in host", func(c *Config) { c.Registries[0].Host = "https://ghcr.io" }, "registries[0].host", "without scheme"},
		{"path in host", func(c *Config) { c.Registries[0].Host = "ghcr.io/org" }, "registries[0].host", "without scheme or path"},
		{"dotless host", func(c *Config) { c.Registries[0].Host = "registry" }, "registries[0].host", "Docker Hub path"},
		{"index.docker.io", func(c *Config) { c.Registries[0].Host = "index.docker.io" }, "registries[0].host", `they use "docker.io"`},
		{"empty host", func(c *Config) { c.Registries[0].Host = "" }, "registries[0].host", "required"},
		{"bad port", func(c *Config) { c.Registries[0].Host = "ghcr.io:http" }, "registries[0].host", "not a valid registry host"},
		{"duplicate registry", func(c *Config) {
			c.Registries = append(c.Registries, Registry{Host: "quay.io"}, Registry{Host: "GHCR.io"})
		}, "registries[2].host", "already registries[0]"},
		{"bad mirror", func(c *Config) {
			c.Registries = append(c.Registries, Registry{Host: "quay.io"}, Registry{Host: "r.example", Mirrors: []Mirror{{Host: "m.example"}, {Host: "http://m"}}})
		}, "registries[2].mirrors[1].host", "without scheme"},
		{"mirror is the registry", func(c *Config) { c.Registries[0].Mirrors = []Mirror{{Host: "ghcr.io"}} }, "registries[0].mirrors[0].host", "the registry itself"},
		{"duplicate mirror", func(c *Config) {
			c.Registries[0].Mirrors = []Mirror{{Host: "m.example"}, {Host: "m.example"}}
		}, "registries[0].mirrors[1].host", "already registries[0].mirrors[0]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := base()
			tc.mutate(c)
			err := c.Validate()
			if err == nil {
				t.Fatalf("Validate() = nil, want error naming %s", tc.field)
			}
			var found bool
			for _, fe := range FieldErrors(err) {
				if fe.Field == tc.field && strings.Contains(fe.Problem, tc.want) {
					found = true
				}
			}
			if !found {
				t.Errorf("Validate() = %v, want a FieldError %s: …%s…", err, tc.field, tc.want)
			}
			if !strings.Contains(err.Error(), tc.field+": ") {
				t.Errorf("Validate() message %q does not name %s", err, tc.field)
			}
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Errorf("errors.As(Validate(), *FieldError) = false")
			}
		})
	}
}

func TestValidationReportsAllProblems(t *testing.T) {
	_, err := Parse([]byte("registries: [{host: 'http://x'}]\nlookup: {workers: -1}\n"))
	if err == nil {
		t.Fatal("Parse() = nil, want errors")
	}
	var fields []string
	for _, fe := range FieldErrors(err) {
		fields = append(fields, fe.Field)
	}
	want := []string{"server.tls.certFile", "server.tls.keyFile", "server.tls.clientCAFile", "lookup.workers", "registries[0].host"}
	if strings.Join(fields, ",") != strings.Join(want, ",") {
		t.Errorf("FieldErrors(Parse()) fields = %v, want %v", fields, want)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "provider.yaml")
	if err := os.WriteFile(p, []byte(minimal), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(p); err != nil {
		t.Errorf("Load(%s) = %v, want nil", p, err)
	}
	if _, err := Load(filepath.Join(dir, "missing.yaml")); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load(missing) = %v, want os.ErrNotExist", err)
	}
	if err := os.WriteFile(p, []byte(minimal+"bogus: true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(p); err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "bogus: unknown field") {
		t.Errorf("Load(bad) = %v, want error naming the file and the field", err)
	}
}

func TestMarshalRoundTrip(t *testing.T) {
	c, err := Parse(Example())
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	c2, err := Parse(b)
	if err != nil {
		t.Fatalf("Parse(Marshal()) = %v\n%s", err, b)
	}
	if c2.Endpoints.Mutate.Deadline != c.Endpoints.Mutate.Deadline || len(c2.Registries) != len(c.Registries) {
		t.Errorf("round trip changed the config:\n%s", b)
	}
}
