package k8simagedigest_test

import data.k8simagedigest

hex := "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

dig := concat("", ["@sha256:", hex])

pod(images) := {"review": {
	"kind": {"kind": "Pod"},
	"object": {"kind": "Pod", "spec": {"containers": [{"name": sprintf("c%d", [i]), "image": img} | some i, img in images]}},
}}

msgs(images, params) := m if {
	m := {v.msg | some v in k8simagedigest.violation} with input as object.union(pod(images), {"parameters": params})
}

test_digest_required if {
	msgs([concat("", ["r.io/a", dig]), concat("", ["r.io/a:1", dig])], {}) == set()
	msgs(["r.io/a:1"], {}) == {"container <c0> image <r.io/a:1> is not pinned by digest; reference it as <r.io/a@sha256:<hex>> (allowed algorithms: <sha256>)"}
}

test_no_parameters if {
	m := {v.msg | some v in k8simagedigest.violation} with input as pod([concat("", ["r.io/a:1", dig])])
	m == set()
}

test_algorithms if {
	sha512 := concat("", ["r.io/a@sha512:", hex, hex])
	msgs([sha512], {}) == {concat("", ["container <c0> image <r.io/a@sha512:", hex, hex, "> uses digest algorithm <sha512>; allowed: <sha256>"])}
	msgs([sha512], {"allowedAlgorithms": ["sha512"]}) == set()
	msgs(["r.io/a"], {"allowedAlgorithms": ["sha512"]}) == {"container <c0> image <r.io/a:latest> is not pinned by digest; reference it as <r.io/a@sha512:<hex>> (allowed algorithms: <sha512>)"}
}

test_tag_with_digest if {
	msgs([concat("", ["r.io/a:1", dig])], {"allowTagWithDigest": false}) == {concat("", ["container <c0> image <r.io/a:1", dig, "> has both tag <1> and a digest; the node pulls <r.io/a", dig, "> and ignores the tag, so remove the tag"])}
}

test_invalid if {
	msgs(["r.io/a@sha256:abc"], {}) == {"container <c0> image <r.io/a@sha256:abc> is not a valid image reference: invalid reference format; write [registry/]repository[:tag][@digest] as the container runtime parses it"}
}

test_exempt if {
	msgs(["registry.k8s.io/pause:3.9"], {"exemptImages": [{"image": "registry.k8s.io/pause:3.*", "reason": "sandbox"}]}) == set()
}

test_misconfiguration if {
	m := msgs([concat("", ["r.io/a", dig])], {"allowedAlgorithms": [], "allowTagWithDigest": "yes"})
	m == {
		"constraint is misconfigured: allowedAlgorithms must be a non-empty list, got <[]>; every image is denied until it is fixed",
		"constraint is misconfigured: allowTagWithDigest must be a boolean, got <yes>; every image is denied until it is fixed",
		"container <c0> image <r.io/a@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef> uses digest algorithm <sha256>; allowed: ",
	}
	msgs(["r.io/a"], {"allowedAlgorithms": [], "exemptImages": "all"}) == {
		"constraint is misconfigured: allowedAlgorithms must be a non-empty list, got <[]>; every image is denied until it is fixed",
		"constraint is misconfigured: exemptImages must be a list of {image, reason}, got <all>; every image is denied until it is fixed",
		"container <c0> image <r.io/a:latest> is not pinned by digest; reference it as <r.io/a@sha256:<hex>> (allowed algorithms: )",
	}
	msgs([concat("", ["r.io/a", dig])], {"allowedAlgorithms": ["md5", "sha256"]}) == {"constraint is misconfigured: allowedAlgorithms[0] <md5> is not one of sha256, sha384, sha512; every image is denied until it is fixed"}
}

# 2026-06-15T12:00:00Z
now := 1781524800000000000

test_exemption_expiry if {
	params := {"exemptImages": [{"image": "registry.k8s.io/pause:3.*", "reason": "sandbox", "expires": "2026-06-15T11:59:59Z"}]}
	msgs(["registry.k8s.io/pause:3.9"], params) == {"container <c0> image <registry.k8s.io/pause:3.9> is not pinned by digest; reference it as <registry.k8s.io/pause@sha256:<hex>> (allowed algorithms: <sha256>); exemption for <registry.k8s.io/pause:3.*> expired on <2026-06-15T11:59:59Z> (<sandbox>)"} with time.now_ns as now
	msgs(["registry.k8s.io/pause:3.9"], {"exemptImages": [object.union(params.exemptImages[0], {"expires": "2026-06-15T12:00:01Z"})]}) == set() with time.now_ns as now
	msgs(["registry.k8s.io/pause:3.9"], {"exemptImages": [object.union(params.exemptImages[0], {"expires": "2026-06-31"})]}) == {
		"constraint is misconfigured: exemptImages[0] <registry.k8s.io/pause:3.*> expires <2026-06-31>, which is not an RFC 3339 date (2026-12-31) or date-time (2026-12-31T18:00:00Z); every image is denied until it is fixed",
		"container <c0> image <registry.k8s.io/pause:3.9> is not pinned by digest; reference it as <registry.k8s.io/pause@sha256:<hex>> (allowed algorithms: <sha256>)",
	}
}

# The one-body check of well-formed parameters never hides a problem: config_problems is
# what looking at every parameter finds, for well-formed and malformed shapes of each.
test_config_problems_gate_hides_nothing if {
	shapes := [
		{}, {"allowedAlgorithms": ["sha256"]}, {"allowedAlgorithms": ["sha256"], "allowTagWithDigest": false},
		{"allowedAlgorithms": ["sha512", "sha256"]}, {"allowedAlgorithms": []}, {"allowedAlgorithms": "sha256"},
		{"allowedAlgorithms": ["md5"]}, {"allowedAlgorithms": null}, {"allowedAlgorithms": {"a": "sha256"}},
		{"allowTagWithDigest": "no"}, {"allowTagWithDigest": null}, {"allowTagWithDigest": true},
	]
	every params in shapes {
		k8simagedigest.config_problems == k8simagedigest._problems with input as object.union(pod(["r.io/a:1"]), {"parameters": params})
	}
	count(k8simagedigest.config_problems) == 1 with input as object.union(pod(["r.io/a:1"]), {"parameters": {"allowedAlgorithms": "sha256"}})
}

# The literal pattern is the one built from the parts it stands for.
test_settle_pattern_literal if {
	inp := object.union(pod(["r.io/a:1"]), {"parameters": {"allowedAlgorithms": ["sha256"]}})
	lit := k8simagedigest._settle_pattern with input as inp
	built := concat("", ["^", data.lib.imagetrust.reference.dotted_host, "/", data.lib.imagetrust.reference.remote_name, k8simagedigest._settle_tag, "@(?:", concat("|", k8simagedigest._settle_digests), ")$"]) with input as inp
	lit == built
	k8simagedigest._settle_pattern != lit with input as object.union(inp, {"parameters": {"allowTagWithDigest": false}})
}
