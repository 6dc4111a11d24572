package config_test

import (
	"strings"
	"testing"

	"github.com/imagetrust/imagetrust/provider/internal/config"
)

// TestMaxReferrersBytesValidated: lookup.maxReferrersBytes outside 4 KiB..4 MiB is a
// configuration error naming the field; unset, it is 512 KiB; in range, it is kept.
func TestMaxReferrersBytesValidated(t *testing.T) {
	for _, n := range []int64{1, 4<<10 - 1, 4<<20 + 1} {
		c := config.Config{Registries: []config.Registry{{Host: "r.example"}}, Lookup: config.Lookup{MaxReferrersBytes: n}}
		c.ApplyDefaults()
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "lookup.maxReferrersBytes") {
			t.Errorf("lookup.maxReferrersBytes %d: Validate() = %v, want an error naming lookup.maxReferrersBytes", n, err)
		}
	}
	c := config.Config{Registries: []config.Registry{{Host: "r.example"}}}
	c.ApplyDefaults()
	if c.Lookup.MaxReferrersBytes != 512<<10 {
		t.Errorf("default lookup.maxReferrersBytes = %d, want %d", c.Lookup.MaxReferrersBytes, 512<<10)
	}
	c = config.Config{Registries: []config.Registry{{Host: "r.example"}}, Lookup: config.Lookup{MaxReferrersBytes: 4 << 20}}
	c.ApplyDefaults()
	if err := c.Validate(); err != nil && strings.Contains(err.Error(), "lookup.maxReferrersBytes") {
		t.Errorf("lookup.maxReferrersBytes 4 MiB: Validate() = %v, want nil", err)
	}
}
