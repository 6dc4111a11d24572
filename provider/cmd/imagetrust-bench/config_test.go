package main

import (
	"io"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/imagetrust/imagetrust/provider/internal/config"
)

// TestConfigYAML: the written configuration drops zero fields (a baseline binary that lacks a
// newer field still reads it) and keeps explicit false values.
func TestConfigYAML(t *testing.T) {
	no := false
	b, err := configYAML(config.Config{
		Registries:  []config.Registry{{Host: "127.0.0.1:5000", Insecure: true}},
		Authorities: []config.Authority{{Name: "bench", Key: &config.Key{File: "/k.pub"}, Attestations: &no}},
	})
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for _, absent := range []string{"maxBytes", "cache", "lookup", "workers"} {
		if strings.Contains(s, absent) {
			t.Errorf("config has zero field %q:\n%s", absent, s)
		}
	}
	var back config.Config
	if err := yaml.UnmarshalStrict(b, &back); err != nil {
		t.Fatalf("written config does not read back: %v\n%s", err, s)
	}
	if a := back.Authorities; len(a) != 1 || a[0].Attestations == nil || *a[0].Attestations {
		t.Errorf("attestations: false was not kept:\n%s", s)
	}
	if r := back.Registries; len(r) != 1 || !r[0].Insecure || r[0].Host != "127.0.0.1:5000" {
		t.Errorf("registries = %+v, want the one insecure registry", r)
	}
}

func TestPerKey(t *testing.T) {
	l := Line{Keys: 2000, ProviderCPU: 0.5, ECDSAus: 100}
	l.perKey()
	if l.CPUPerKeyUS != 250 || l.CPUPerKeyECDSA != 2.5 {
		t.Errorf("perKey() = %v µs, %v ECDSA; want 250, 2.5", l.CPUPerKeyUS, l.CPUPerKeyECDSA)
	}
	z := Line{Keys: 10}
	z.perKey()
	if z.CPUPerKeyUS != 0 || z.CPUPerKeyECDSA != 0 {
		t.Errorf("perKey() without CPU = %v, %v; want zeros", z.CPUPerKeyUS, z.CPUPerKeyECDSA)
	}
}

// TestCacheFlags: -cache-max-bytes and -cache-ttl reach the provider's configuration as
// cache.maxBytes and cache.ttl, and a negative value is refused naming the flags.
func TestCacheFlags(t *testing.T) {
	f, err := parseFlags([]string{"bench", "-provider", "/p", "-only", "scan", "-cache-max-bytes", "268435456", "-cache-ttl", "2h"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	b, err := configYAML(config.Config{Cache: config.Cache{MaxBytes: f.cacheBytes, TTL: config.Duration(f.cacheTTL)}})
	if err != nil {
		t.Fatal(err)
	}
	var back config.Config
	if err := yaml.UnmarshalStrict(b, &back); err != nil {
		t.Fatalf("written config does not read back: %v\n%s", err, b)
	}
	if back.Cache.MaxBytes != 256<<20 || back.Cache.TTL.D() != 2*time.Hour {
		t.Errorf("cache = %+v, want maxBytes 268435456 and ttl 2h:\n%s", back.Cache, b)
	}
	if _, err := parseFlags([]string{"bench", "-provider", "/p", "-cache-max-bytes", "-1"}, io.Discard); err == nil || !strings.Contains(err.Error(), "-cache-max-bytes") {
		t.Errorf("negative -cache-max-bytes: err = %v, want one naming the flag", err)
	}
}
