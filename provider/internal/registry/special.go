package registry

import "net/netip"

// specialV4 is every IPv4 block the SSRF guard refuses: the IANA IPv4 Special-Purpose Address
// Registry in full (including the few blocks it marks globally reachable — anycast relays and
// AS112 name servers, where no registry lives) plus multicast 224/4.
var specialV4 = mustPrefixes(
	"0.0.0.0/8",          // "this network"
	"10.0.0.0/8",         // private
	"100.64.0.0/10",      // shared address space (CGNAT)
	"127.0.0.0/8",        // loopback
	"169.254.0.0/16",     // link-local (cloud metadata)
	"172.16.0.0/12",      // private
	"192.0.0.0/24",       // IETF protocol assignments (DS-Lite, PCP/TURN anycast, NAT64 discovery)
	"192.0.2.0/24",       // TEST-NET-1
	"192.31.196.0/24",    // AS112-v4
	"192.52.193.0/24",    // AMT
	"192.88.99.0/24",     // deprecated 6to4 relay anycast
	"192.168.0.0/16",     // private
	"192.175.48.0/24",    // AS112 direct delegation
	"198.18.0.0/15",      // benchmarking
	"198.51.100.0/24",    // TEST-NET-2
	"203.0.113.0/24",     // TEST-NET-3
	"224.0.0.0/4",        // multicast
	"240.0.0.0/4",        // reserved
	"255.255.255.255/32", // limited broadcast (inside 240/4; listed as the registry lists it)
)

// specialV6 is every IPv6 block the SSRF guard refuses outright: the IANA IPv6 Special-Purpose
// Address Registry (2001::/23 as a whole: Teredo, benchmarking, AMT, AS112, ORCHID, DET all sit
// inside it), deprecated site-local, multicast and IPv4-compatible addresses. IPv4-mapped, NAT64
// (64:ff9b::/96) and 6to4 (2002::/16) addresses are not listed: they are judged by the IPv4
// address they embed (embeddedV4).
var specialV6 = mustPrefixes(
	"::/96",             // unspecified, loopback and deprecated IPv4-compatible ::a.b.c.d
	"64:ff9b:1::/48",    // local-use IPv4/IPv6 translation
	"100::/64",          // discard-only
	"100:0:0:1::/64",    // dummy prefix
	"2001::/23",         // IETF protocol assignments
	"2001:db8::/32",     // documentation
	"2620:4f:8000::/48", // AS112 direct delegation
	"3fff::/20",         // documentation
	"5f00::/16",         // SRv6 SIDs
	"fc00::/7",          // unique local
	"fe80::/10",         // link-local
	"fec0::/10",         // deprecated site-local
	"ff00::/8",          // multicast
)

var (
	globalUnicastV6 = netip.MustParsePrefix("2000::/3")
	nat64WellKnown  = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour       = netip.MustParsePrefix("2002::/16")
)

func mustPrefixes(ss ...string) []netip.Prefix {
	ps := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		ps[i] = netip.MustParsePrefix(s)
	}
	return ps
}

// embeddedV4 returns the IPv4 address an IPv6 address stands for: IPv4-mapped ::ffff:a.b.c.d,
// NAT64 64:ff9b::a.b.c.d (last 32 bits) and 6to4 2002:aabb:ccdd:: (bits 16-47).
func embeddedV4(a netip.Addr) (netip.Addr, bool) {
	b := a.As16()
	switch {
	case a.Is4In6():
		return a.Unmap(), true
	case nat64WellKnown.Contains(a):
		return netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]}), true
	case sixToFour.Contains(a):
		return netip.AddrFrom4([4]byte{b[2], b[3], b[4], b[5]}), true
	}
	return netip.Addr{}, false
}

// isPublic reports whether a may be dialled for a host that is not a configured registry:
// a global unicast address outside every special-purpose block, judged for IPv6 forms that
// embed an IPv4 address by that IPv4 address. Zoned addresses are never public.
func isPublic(a netip.Addr) bool {
	if !a.IsValid() || a.Zone() != "" {
		return false
	}
	if a.Is6() {
		if v4, ok := embeddedV4(a); ok {
			return isPublicV4(v4)
		}
		if !globalUnicastV6.Contains(a) {
			return false
		}
		for _, p := range specialV6 {
			if p.Contains(a) {
				return false
			}
		}
		return true
	}
	return isPublicV4(a)
}

func isPublicV4(a netip.Addr) bool {
	for _, p := range specialV4 {
		if p.Contains(a) {
			return false
		}
	}
	return true
}
