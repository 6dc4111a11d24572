package config

import (
	"strings"
	"time"
)

// Defaults. Deadlines stay well below Gatekeeper's Provider timeouts (validation 3 s, mutation 1 s).
const (
	DefaultAddress         = ":8443"
	DefaultMetricsAddress  = ":8080"
	DefaultMaxRequestBytes = 1 << 20
	DefaultMaxKeys         = 1000
	DefaultShutdownTimeout = 10 * time.Second
	DefaultResolveDeadline = 2500 * time.Millisecond
	DefaultMutateDeadline  = 800 * time.Millisecond
	DefaultVerifyDeadline  = 2500 * time.Millisecond
	// DefaultVerifySignaturesDeadline: as verify, also under Gatekeeper's 3 s validation timeout.
	DefaultVerifySignaturesDeadline = 2500 * time.Millisecond
	DefaultWorkers                  = 128
	DefaultPerRegistryConcurrency   = 32
	DefaultRegistryTimeout          = 2 * time.Second
	DefaultCacheMaxEntries          = 100000
	DefaultCacheMaxBytes            = 32 << 20
	MinCacheMaxBytes                = 1 << 20
	DefaultCacheTTL                 = 5 * time.Minute
	DefaultCacheNotFoundTTL         = 30 * time.Second
	// DefaultUnsignedTTL: a cached verify answer with signed=false is looked up again after
	// this long, so a newly signed image is admitted soon.
	DefaultUnsignedTTL = 30 * time.Second
	// ParseMemoEntries bounds the memo of parsed references (about 200 bytes per entry); it is
	// never larger than cache.maxEntries.
	ParseMemoEntries = 8192
	// LoadTimeoutRegistryOps: one resolve load is at most this many registry operations long
	// (a HEAD, maybe a GET, maybe at a mirror first); see Config.LoadTimeout.
	LoadTimeoutRegistryOps = 3
)

// Platform list cap of /v1/resolve and /v1/verify answers (lookup.maxPlatforms).
const (
	// DefaultMaxPlatforms: far more platforms than any multi-arch image publishes (the
	// largest public ones list about 10), far fewer than a 4 MiB index can hold (about 20,000).
	DefaultMaxPlatforms = 256
	// MaxPlatformsLimit is the largest lookup.maxPlatforms accepted.
	MaxPlatformsLimit = 4096
)

// Index manifest cap of /v1/resolve and /v1/verify (lookup.maxIndexBytes).
const (
	// DefaultMaxIndexBytes: about 1,300 platforms, a hundred times what the largest public
	// multi-arch images list, and what /v1/scan reads.
	DefaultMaxIndexBytes = 256 << 10
	// MinIndexBytes and MaxIndexBytesLimit bound lookup.maxIndexBytes.
	MinIndexBytes      = 4 << 10
	MaxIndexBytesLimit = 4 << 20
)

// Referrers list cap of /v1/verify (lookup.maxReferrersBytes).
const (
	// DefaultMaxReferrersBytes: several thousand descriptors (about 2,700 of 190 bytes) where
	// verify examines at most 64, in digest order.
	DefaultMaxReferrersBytes = 512 << 10
	// MinReferrersBytes and MaxReferrersBytesLimit bound lookup.maxReferrersBytes.
	MinReferrersBytes      = 4 << 10
	MaxReferrersBytesLimit = 4 << 20
)

// LoadTimeout bounds one resolve or mutate load, which runs detached from the batch that
// started it (other batches may share it): LoadTimeoutRegistryOps registry timeouts.
func (c *Config) LoadTimeout() time.Duration {
	return LoadTimeoutRegistryOps * c.Lookup.RegistryTimeout.D()
}

// ApplyDefaults fills every zero field that has a default, and lower-cases registry hosts
// (hosts compare case-insensitively). Explicit values are kept, even invalid ones: Validate
// reports those.
func (c *Config) ApplyDefaults() {
	s := &c.Server
	setStr(&s.Address, DefaultAddress)
	setStr(&s.MetricsAddress, DefaultMetricsAddress)
	setInt64(&s.MaxRequestBytes, DefaultMaxRequestBytes)
	setInt(&s.MaxKeys, DefaultMaxKeys)
	setDur(&s.ShutdownTimeout, DefaultShutdownTimeout)

	setDur(&c.Endpoints.Resolve.Deadline, DefaultResolveDeadline)
	setDur(&c.Endpoints.Mutate.Deadline, DefaultMutateDeadline)
	setDur(&c.Endpoints.Verify.Deadline, DefaultVerifyDeadline)
	setDur(&c.Endpoints.VerifySignatures.Deadline, DefaultVerifySignaturesDeadline)

	setInt(&c.Lookup.Workers, DefaultWorkers)
	setInt(&c.Lookup.PerRegistryConcurrency, DefaultPerRegistryConcurrency)
	setDur(&c.Lookup.RegistryTimeout, DefaultRegistryTimeout)
	setInt(&c.Lookup.MaxPlatforms, DefaultMaxPlatforms)
	setInt64(&c.Lookup.MaxIndexBytes, DefaultMaxIndexBytes)
	setInt64(&c.Lookup.MaxReferrersBytes, DefaultMaxReferrersBytes)

	setInt(&c.Cache.MaxEntries, DefaultCacheMaxEntries)
	setInt64(&c.Cache.MaxBytes, DefaultCacheMaxBytes)
	setDur(&c.Cache.TTL, DefaultCacheTTL)
	setDur(&c.Cache.NotFoundTTL, DefaultCacheNotFoundTTL)
	c.Scan.applyDefaults()
	c.Attestations.applyDefaults()

	for i := range c.Registries {
		r := &c.Registries[i]
		r.Host = strings.ToLower(r.Host)
		for j := range r.Mirrors {
			r.Mirrors[j].Host = strings.ToLower(r.Mirrors[j].Host)
		}
	}
}

func setStr(p *string, v string) {
	if *p == "" {
		*p = v
	}
}

func setInt(p *int, v int) {
	if *p == 0 {
		*p = v
	}
}

func setInt64(p *int64, v int64) {
	if *p == 0 {
		*p = v
	}
}

func setDur(p *Duration, v time.Duration) {
	if *p == 0 {
		*p = Duration(v)
	}
}
