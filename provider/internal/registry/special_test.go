package registry

import (
	"net/netip"
	"testing"
)

// TestSpecialPurposeRanges checks the SSRF guard range by range: the first and last address of
// every special-purpose block and one inside it are refused; addresses embedding an IPv4
// address (IPv4-mapped, NAT64, 6to4) are judged by that IPv4 address.
func TestSpecialPurposeRanges(t *testing.T) {
	blocked := []struct{ name, first, inside, last string }{
		{"this network 0/8", "0.0.0.0", "0.1.2.3", "0.255.255.255"},
		{"private 10/8", "10.0.0.0", "10.20.30.40", "10.255.255.255"},
		{"shared CGNAT 100.64/10", "100.64.0.0", "100.100.1.1", "100.127.255.255"},
		{"loopback 127/8", "127.0.0.0", "127.0.0.2", "127.255.255.255"},
		{"link-local 169.254/16", "169.254.0.0", "169.254.169.254", "169.254.255.255"},
		{"private 172.16/12", "172.16.0.0", "172.20.1.1", "172.31.255.255"},
		{"IETF protocol assignments 192.0.0/24", "192.0.0.0", "192.0.0.170", "192.0.0.255"},
		{"TEST-NET-1 192.0.2/24", "192.0.2.0", "192.0.2.55", "192.0.2.255"},
		{"AS112-v4 192.31.196/24", "192.31.196.0", "192.31.196.1", "192.31.196.255"},
		{"AMT 192.52.193/24", "192.52.193.0", "192.52.193.1", "192.52.193.255"},
		{"6to4 relay anycast 192.88.99/24", "192.88.99.0", "192.88.99.1", "192.88.99.255"},
		{"private 192.168/16", "192.168.0.0", "192.168.1.1", "192.168.255.255"},
		{"AS112 direct delegation 192.175.48/24", "192.175.48.0", "192.175.48.1", "192.175.48.255"},
		{"benchmarking 198.18/15", "198.18.0.0", "198.19.1.1", "198.19.255.255"},
		{"TEST-NET-2 198.51.100/24", "198.51.100.0", "198.51.100.7", "198.51.100.255"},
		{"TEST-NET-3 203.0.113/24", "203.0.113.0", "203.0.113.9", "203.0.113.255"},
		{"multicast 224/4", "224.0.0.0", "232.1.2.3", "239.255.255.255"},
		{"reserved 240/4", "240.0.0.0", "250.1.2.3", "255.255.255.254"},
		{"limited broadcast", "255.255.255.255", "255.255.255.255", "255.255.255.255"},
		{"unspecified ::/128", "::", "::", "::"},
		{"loopback ::1/128", "::1", "::1", "::1"},
		{"IPv4-mapped ::ffff:0:0/96", "::ffff:0.0.0.0", "::ffff:10.0.0.1", "::ffff:255.255.255.255"},
		{"IPv4-compatible ::/96", "::0.0.0.2", "::10.0.0.1", "::255.255.255.255"},
		{"IPv4-compatible with public IPv4", "::8.8.8.8", "::1.1.1.1", "::9.9.9.9"},
		{"NAT64 64:ff9b::/96 embedding internal IPv4", "64:ff9b::", "64:ff9b::10.0.0.1", "64:ff9b::255.255.255.255"},
		{"NAT64 embedding loopback and metadata", "64:ff9b::127.0.0.1", "64:ff9b::169.254.169.254", "64:ff9b::192.168.0.1"},
		{"local-use NAT64 64:ff9b:1::/48", "64:ff9b:1::", "64:ff9b:1::8.8.8.8", "64:ff9b:1:ffff:ffff:ffff:ffff:ffff"},
		{"discard-only 100::/64", "100::", "100::1:2", "100::ffff:ffff:ffff:ffff"},
		{"dummy prefix 100:0:0:1::/64", "100:0:0:1::", "100:0:0:1::5", "100:0:0:1:ffff:ffff:ffff:ffff"},
		{"IETF protocol assignments 2001::/23", "2001::", "2001:1::1", "2001:1ff:ffff:ffff:ffff:ffff:ffff:ffff"},
		{"Teredo 2001::/32", "2001::", "2001:0:4136:e378:8000:63bf:3fff:fdd2", "2001:0:ffff:ffff:ffff:ffff:ffff:ffff"},
		{"benchmarking 2001:2::/48", "2001:2::", "2001:2::1", "2001:2:0:ffff:ffff:ffff:ffff:ffff"},
		{"ORCHIDv2 2001:20::/28", "2001:20::", "2001:21::1", "2001:2f:ffff:ffff:ffff:ffff:ffff:ffff"},
		{"documentation 2001:db8::/32", "2001:db8::", "2001:db8:1::1", "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff"},
		{"6to4 2002::/16 embedding internal IPv4", "2002::", "2002:a00:1::1", "2002:c0a8:ffff:ffff:ffff:ffff:ffff:ffff"},
		{"6to4 embedding loopback", "2002:7f00:1::", "2002:7f00:1::1", "2002:7fff:ffff:ffff:ffff:ffff:ffff:ffff"},
		{"AS112-v6 2620:4f:8000::/48", "2620:4f:8000::", "2620:4f:8000::1", "2620:4f:8000:ffff:ffff:ffff:ffff:ffff"},
		{"documentation 3fff::/20", "3fff::", "3fff:1::1", "3fff:fff:ffff:ffff:ffff:ffff:ffff:ffff"},
		{"SRv6 SIDs 5f00::/16", "5f00::", "5f00:1::1", "5f00:ffff:ffff:ffff:ffff:ffff:ffff:ffff"},
		{"unique local fc00::/7", "fc00::", "fd12:3456::1", "fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"},
		{"link-local fe80::/10", "fe80::", "fe80::1", "febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff"},
		{"site-local fec0::/10", "fec0::", "fec0::1", "feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"},
		{"multicast ff00::/8", "ff00::", "ff02::1", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"},
		{"outside 2000::/3", "4000::", "8000::1", "e000::1"},
		{"link-local with zone", "fe80::1%eth0", "fe80::1%lo", "fe80::1%1"},
	}
	for _, tt := range blocked {
		for _, s := range []string{tt.first, tt.inside, tt.last} {
			a := netip.MustParseAddr(s)
			if isPublic(a) {
				t.Errorf("%s: isPublic(%s) = true, want false", tt.name, s)
			}
		}
	}
	allowed := []string{
		"1.1.1.1", "8.8.8.8", "9.255.255.255", "11.0.0.0", "100.63.255.255", "100.128.0.0",
		"126.255.255.255", "128.0.0.0", "169.253.255.255", "169.255.0.0", "172.15.255.255",
		"172.32.0.0", "192.0.1.255", "192.0.3.0", "192.88.98.255", "192.88.100.0",
		"192.167.255.255", "192.169.0.0", "198.17.255.255", "198.20.0.0", "198.51.99.255",
		"198.51.101.0", "203.0.112.255", "203.0.114.0", "223.255.255.255",
		"::ffff:8.8.8.8",       // IPv4-mapped public: judged as 8.8.8.8
		"64:ff9b::8.8.8.8",     // NAT64 to a public IPv4 (IPv6-only clusters reach registries this way)
		"2002:808:808::1",      // 6to4 for 8.8.8.8
		"2001:200::1",          // just past 2001::/23
		"2001:4860:4860::8888", // a public IPv6 resolver
		"2606:4700::1111", "2a00:1450:4001::1", "2620:4f:7fff:ffff:ffff:ffff:ffff:ffff",
		"3ffe:ffff::1", "2620:4f:8001::",
	}
	for _, s := range allowed {
		if !isPublic(netip.MustParseAddr(s)) {
			t.Errorf("isPublic(%s) = false, want true", s)
		}
	}
}
