package config

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/distribution/reference"
)

// Limits on values that could only be mistakes.
const (
	MaxRequestBytesLimit = 64 << 20
	MaxKeysLimit         = 100000
	maxDeadline          = 30 * time.Second
	// GatekeeperMutationTimeout is Gatekeeper's fixed budget for external data in mutation.
	GatekeeperMutationTimeout = time.Second
)

// Validate reports every problem with the configuration, each as a *FieldError naming the
// field path, joined with errors.Join. Call ApplyDefaults first.
func (c *Config) Validate() error {
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}

	s := c.Server
	add(checkListen("server.address", s.Address))
	add(checkListen("server.metricsAddress", s.MetricsAddress))
	if s.Address != "" && s.Address == s.MetricsAddress && !strings.HasSuffix(s.Address, ":0") {
		add(fieldErr("server.metricsAddress", "%q is also server.address; the metrics port must be separate", s.MetricsAddress))
	}
	for _, f := range []struct{ name, v string }{
		{"server.tls.certFile", s.TLS.CertFile},
		{"server.tls.keyFile", s.TLS.KeyFile},
		{"server.tls.clientCAFile", s.TLS.ClientCAFile},
	} {
		if strings.TrimSpace(f.v) == "" {
			add(fieldErr(f.name, "required (the provider only serves TLS with verified client certificates)"))
		}
	}
	if s.MaxRequestBytes <= 0 || s.MaxRequestBytes > MaxRequestBytesLimit {
		add(fieldErr("server.maxRequestBytes", "%d is out of range (1..%d)", s.MaxRequestBytes, MaxRequestBytesLimit))
	}
	if s.MaxKeys <= 0 || s.MaxKeys > MaxKeysLimit {
		add(fieldErr("server.maxKeys", "%d is out of range (1..%d)", s.MaxKeys, MaxKeysLimit))
	}
	add(positive("server.shutdownTimeout", s.ShutdownTimeout, 10*time.Minute))

	add(positive("endpoints.resolve.deadline", c.Endpoints.Resolve.Deadline, maxDeadline))
	add(positive("endpoints.verify.deadline", c.Endpoints.Verify.Deadline, maxDeadline))
	add(positive("endpoints.verifySignatures.deadline", c.Endpoints.VerifySignatures.Deadline, maxDeadline))
	if d := c.Endpoints.Mutate.Deadline.D(); d >= GatekeeperMutationTimeout {
		add(fieldErr("endpoints.mutate.deadline", "%v must be below Gatekeeper's %v mutation timeout", d, GatekeeperMutationTimeout))
	} else {
		add(positive("endpoints.mutate.deadline", c.Endpoints.Mutate.Deadline, GatekeeperMutationTimeout))
	}

	if c.Lookup.Workers <= 0 || c.Lookup.Workers > 4096 {
		add(fieldErr("lookup.workers", "%d is out of range (1..4096)", c.Lookup.Workers))
	}
	if c.Lookup.PerRegistryConcurrency <= 0 || c.Lookup.PerRegistryConcurrency > 4096 {
		add(fieldErr("lookup.perRegistryConcurrency", "%d is out of range (1..4096)", c.Lookup.PerRegistryConcurrency))
	}
	add(positive("lookup.registryTimeout", c.Lookup.RegistryTimeout, time.Minute))
	if c.Lookup.MaxPlatforms <= 0 || c.Lookup.MaxPlatforms > MaxPlatformsLimit {
		add(fieldErr("lookup.maxPlatforms", "%d is out of range (1..%d)", c.Lookup.MaxPlatforms, MaxPlatformsLimit))
	}
	if c.Lookup.MaxIndexBytes < MinIndexBytes || c.Lookup.MaxIndexBytes > MaxIndexBytesLimit {
		add(fieldErr("lookup.maxIndexBytes", "%d is out of range (%d..%d: 4 KiB to 4 MiB)", c.Lookup.MaxIndexBytes, MinIndexBytes, MaxIndexBytesLimit))
	}
	if c.Lookup.MaxReferrersBytes < MinReferrersBytes || c.Lookup.MaxReferrersBytes > MaxReferrersBytesLimit {
		add(fieldErr("lookup.maxReferrersBytes", "%d is out of range (%d..%d: 4 KiB to 4 MiB)", c.Lookup.MaxReferrersBytes, MinReferrersBytes, MaxReferrersBytesLimit))
	}

	if c.Cache.MaxEntries <= 0 {
		add(fieldErr("cache.maxEntries", "%d must be positive", c.Cache.MaxEntries))
	}
	if c.Cache.MaxBytes < MinCacheMaxBytes {
		add(fieldErr("cache.maxBytes", "%d is below the minimum %d (1 MiB)", c.Cache.MaxBytes, MinCacheMaxBytes))
	}
	add(positive("cache.ttl", c.Cache.TTL, 0))
	if c.Cache.NotFoundTTL < 0 {
		add(fieldErr("cache.notFoundTTL", "%v must not be negative", c.Cache.NotFoundTTL.D()))
	} else if c.Cache.NotFoundTTL > c.Cache.TTL && c.Cache.TTL > 0 {
		add(fieldErr("cache.notFoundTTL", "%v is longer than cache.ttl %v; negative answers must expire first", c.Cache.NotFoundTTL.D(), c.Cache.TTL.D()))
	}
	if c.Cache.MaxStale < 0 {
		add(fieldErr("cache.maxStale", "%v must not be negative", c.Cache.MaxStale.D()))
	}

	if k := c.Auth.Kubernetes; k != nil {
		if k.Namespace == "" {
			add(fieldErr("auth.kubernetes.namespace", "required when auth.kubernetes is set"))
		}
		for i, n := range k.ImagePullSecrets {
			if n == "" {
				add(fieldErr(fmt.Sprintf("auth.kubernetes.imagePullSecrets[%d]", i), "empty secret name"))
			}
		}
	}

	if len(c.Registries) == 0 {
		add(fieldErr("registries", "at least one registry is required; the provider contacts only listed registries"))
	}
	seen := map[string]int{}
	for i, r := range c.Registries {
		p := fmt.Sprintf("registries[%d]", i)
		if err := checkHost(p+".host", r.Host); err != nil {
			add(err)
		} else if j, dup := seen[strings.ToLower(r.Host)]; dup {
			add(fieldErr(p+".host", "%q is already registries[%d]", r.Host, j))
		} else {
			seen[strings.ToLower(r.Host)] = i
		}
		mseen := map[string]int{}
		for j, m := range r.Mirrors {
			mp := fmt.Sprintf("%s.mirrors[%d].host", p, j)
			if err := checkHost(mp, m.Host); err != nil {
				add(err)
				continue
			}
			if strings.EqualFold(m.Host, r.Host) {
				add(fieldErr(mp, "%q is the registry itself", m.Host))
			} else if k, dup := mseen[strings.ToLower(m.Host)]; dup {
				add(fieldErr(mp, "%q is already %s.mirrors[%d]", m.Host, p, k))
			} else {
				mseen[strings.ToLower(m.Host)] = j
			}
		}
	}

	add(c.validateAuthorities())
	add(c.validateScan())
	add(c.validateAttestations())
	return errors.Join(errs...)
}

func checkListen(field, addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fieldErr(field, "%q is not host:port (%v)", addr, err)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fieldErr(field, "%q has an invalid port", addr)
	}
	if strings.ContainsAny(host, "/ ") {
		return fieldErr(field, "%q is not host:port", addr)
	}
	return nil
}

func positive(field string, d Duration, limit time.Duration) error {
	if d <= 0 {
		return fieldErr(field, "%v must be positive", d.D())
	}
	if limit > 0 && d.D() > limit {
		return fieldErr(field, "%v is longer than the maximum %v", d.D(), limit)
	}
	return nil
}

// checkHost accepts a registry host exactly as it appears in a normalised image reference.
func checkHost(field, host string) error {
	if host == "" {
		return fieldErr(field, "required")
	}
	if strings.Contains(host, "://") || strings.ContainsAny(host, "/@ ") {
		return fieldErr(field, "%q must be host[:port] without scheme or path", host)
	}
	named, err := reference.ParseNormalizedNamed(strings.ToLower(host) + "/x")
	if err != nil {
		return fieldErr(field, "%q is not a valid registry host: %v", host, err)
	}
	if d := reference.Domain(named); d != strings.ToLower(host) {
		if d == "docker.io" && !strings.ContainsAny(host, ".:") {
			return fieldErr(field, "%q has no dot or port, so image references read it as a Docker Hub path; write the registry as host.domain or host:port", host)
		}
		return fieldErr(field, "%q is not how image references name this registry (they use %q)", host, d)
	}
	return nil
}
