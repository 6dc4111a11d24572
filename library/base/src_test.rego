package k8strustedimagesource_test

import data.k8strustedimagesource

dig := "@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

pod(images) := {"review": {
	"kind": {"kind": "Pod"},
	"object": {"kind": "Pod", "spec": {"containers": [{"name": sprintf("c%d", [i]), "image": img} | some i, img in images]}},
}}

bank := {
	"allowedRegistries": ["registry.bank.internal", "quay.io/redhat-openshift-approved"],
	"allowImplicitRegistry": false,
}

msgs(images, params) := m if {
	m := {v.msg | some v in k8strustedimagesource.violation} with input as object.union(pod(images), {"parameters": params})
}

test_compliant if {
	msgs(["registry.bank.internal/payments/api:2.4.1", concat("", ["quay.io/redhat-openshift-approved/ubi9:9.4", dig])], bank) == set()
}

test_nginx_latest if {
	msgs(["nginx:latest"], bank) == {
		"container <c0> image <nginx:latest> does not name its registry (the node would pull <docker.io/library/nginx:latest>); write the registry explicitly, allowed: <registry.bank.internal>, <quay.io/redhat-openshift-approved>",
		"container <c0> image <docker.io/library/nginx:latest> comes from <docker.io/library/nginx>, which is not an allowed registry; allowed: <registry.bank.internal>, <quay.io/redhat-openshift-approved>",
		"container <c0> image <docker.io/library/nginx:latest> uses banned tag <latest>; pin a version or digest",
	}
}

test_no_parameters_uses_defaults if {
	m := {v.msg | some v in k8strustedimagesource.violation} with input as pod(["nginx"])
	m == {
		"container <c0> image <nginx> does not name its registry (the node would pull <docker.io/library/nginx:latest>); write the registry explicitly",
		"container <c0> image <docker.io/library/nginx:latest> uses banned tag <latest> (no tag given); pin a version or digest",
	}
}

test_registry_tricks if {
	count(msgs(["registry.bank.internal.evil.io/app:1.0"], bank)) == 1
	count(msgs(["quay.io/redhat-openshift-approved-evil/app:1.0"], bank)) == 1
	count(msgs(["Registry.Bank.Internal/app:1.0"], bank)) == 0
}

test_implicit_allowed if {
	msgs(["nginx:1.25"], {"allowedRegistries": ["docker.io"], "allowImplicitRegistry": true}) == set()
}

test_banned_tags_custom_and_case if {
	msgs(["r.io/a:CANARY", "r.io/b:latest"], {"bannedTags": ["canary"], "allowImplicitRegistry": true}) == {"container <c0> image <r.io/a:CANARY> uses banned tag <CANARY>; pin a version or digest"}
}

test_digest_skips_tag_rules if {
	msgs([concat("", ["registry.bank.internal/a:latest", dig])], object.union(bank, {"tagPattern": "[0-9]+"})) == set()
}

test_tag_pattern_is_anchored if {
	msgs(["registry.bank.internal/a:1.2.3-rc1"], object.union(bank, {"tagPattern": `[0-9]+\.[0-9]+\.[0-9]+`})) == {`container <c0> image <registry.bank.internal/a:1.2.3-rc1> has tag <1.2.3-rc1>, which does not match the required pattern <[0-9]+\.[0-9]+\.[0-9]+>; use a matching tag or pin a digest`}
}

test_invalid_reference if {
	msgs(["docker://nginx"], bank) == {"container <c0> image <docker://nginx> is not a valid image reference: a transport or URL prefix (such as docker://, https://) is not part of an image reference; write [registry/]repository[:tag][@digest] as the container runtime parses it"}
}

test_exemptions if {
	msgs(["nginx:latest"], object.union(bank, {"exemptImages": [{"image": "docker.io/library/nginx:*", "reason": "r"}]})) == set()
}

test_misconfiguration if {
	m := msgs(["registry.bank.internal/a:1.0"], {
		"allowedRegistries": "registry.bank.internal",
		"allowImplicitRegistry": "no",
		"bannedTags": "latest",
		"tagPattern": 5,
	})
	m == {
		"constraint is misconfigured: allowedRegistries must be a list of host[:port][/path] strings, got <registry.bank.internal>; every image is denied until it is fixed",
		"constraint is misconfigured: allowImplicitRegistry must be a boolean, got <no>; every image is denied until it is fixed",
		"constraint is misconfigured: bannedTags must be a list of strings, got <latest>; every image is denied until it is fixed",
		"constraint is misconfigured: tagPattern must be a string, got <5>; every image is denied until it is fixed",
	}
}

test_misconfigured_entries if {
	m := msgs(["registry.bank.internal/a:1.0"], {
		"allowedRegistries": ["https://r.io", "registry.bank.internal"],
		"bannedTags": ["", 5],
		"tagPattern": "(",
		"exemptImages": [{"image": "x"}],
	})
	m == {
		"constraint is misconfigured: allowedRegistries[0] <https://r.io> is not host[:port][/path] (no scheme, no tag or digest, no trailing slash, lowercase path); every image is denied until it is fixed",
		"constraint is misconfigured: bannedTags[0] must be a non-empty string, got <>; every image is denied until it is fixed",
		"constraint is misconfigured: bannedTags[1] must be a non-empty string, got <5>; every image is denied until it is fixed",
		"constraint is misconfigured: tagPattern <(> is not a valid RE2 regular expression; every image is denied until it is fixed",
		`constraint is misconfigured: exemptImages[0] must have a non-empty image glob and a non-empty reason, got <{"image": "x"}>; every image is denied until it is fixed`,
	}
}

# 2026-06-15T12:00:00Z
now := 1781524800000000000

test_exemption_expiry if {
	debug := object.union(bank, {"exemptImages": [{"image": "docker.io/library/busybox:*", "reason": "debugging tool", "expires": "2026-06-14"}]})
	m := msgs(["busybox:1.36"], debug) with time.now_ns as now
	m == {
		"container <c0> image <busybox:1.36> does not name its registry (the node would pull <docker.io/library/busybox:1.36>); write the registry explicitly, allowed: <registry.bank.internal>, <quay.io/redhat-openshift-approved>; exemption for <docker.io/library/busybox:*> expired on <2026-06-14> (<debugging tool>)",
		"container <c0> image <docker.io/library/busybox:1.36> comes from <docker.io/library/busybox>, which is not an allowed registry; allowed: <registry.bank.internal>, <quay.io/redhat-openshift-approved>; exemption for <docker.io/library/busybox:*> expired on <2026-06-14> (<debugging tool>)",
	}
	live := object.union(bank, {"exemptImages": [{"image": "docker.io/library/busybox:*", "reason": "debugging tool", "expires": "2026-06-15"}]})
	msgs(["busybox:1.36"], live) == set() with time.now_ns as now
}

test_exemption_malformed_expiry if {
	params := object.union(bank, {"exemptImages": [{"image": "docker.io/library/busybox:*", "reason": "debugging tool", "expires": "15.06.2026"}]})
	msgs(["busybox:1.36"], params) == {
		"constraint is misconfigured: exemptImages[0] <docker.io/library/busybox:*> expires <15.06.2026>, which is not an RFC 3339 date (2026-12-31) or date-time (2026-12-31T18:00:00Z); every image is denied until it is fixed",
		"container <c0> image <busybox:1.36> does not name its registry (the node would pull <docker.io/library/busybox:1.36>); write the registry explicitly, allowed: <registry.bank.internal>, <quay.io/redhat-openshift-approved>",
		"container <c0> image <docker.io/library/busybox:1.36> comes from <docker.io/library/busybox>, which is not an allowed registry; allowed: <registry.bank.internal>, <quay.io/redhat-openshift-approved>",
	}
}

# The one-body check of well-formed parameters never hides a problem: config_problems is
# what looking at every parameter finds, for well-formed and malformed shapes of each.
test_config_problems_gate_hides_nothing if {
	shapes := [
		{}, bank, object.union(bank, {"bannedTags": ["latest", "V1"], "tagPattern": `v?[0-9]+`}),
		{"allowedRegistries": []}, {"allowedRegistries": "r.io"}, {"allowedRegistries": {"a": "r.io"}},
		{"allowedRegistries": ["r.io", "bad entry"]}, {"allowedRegistries": ["r.io", 7]}, {"allowedRegistries": null},
		{"allowImplicitRegistry": "yes"}, {"allowImplicitRegistry": null}, {"allowImplicitRegistry": true},
		{"bannedTags": []}, {"bannedTags": "latest"}, {"bannedTags": ["latest", ""]}, {"bannedTags": ["latest", 3]},
		{"bannedTags": null}, {"bannedTags": {"a": "latest"}},
		{"tagPattern": ""}, {"tagPattern": "("}, {"tagPattern": 5}, {"tagPattern": null}, {"tagPattern": false},
		{"bannedTags": ["a\"b", "c\\d", "<e>", "f\ng"]}, {"bannedTags": ["latest"], "exemptImages": []},
		{"allowedRegistries": ["[::1]:5000/a", "R.io"], "allowImplicitRegistry": false, "bannedTags": []},
	]
	every params in shapes {
		k8strustedimagesource.config_problems == k8strustedimagesource._problems with input as object.union(pod(["r.io/a:1"]), {"parameters": params})
	}
	count(k8strustedimagesource._problems) == 0 with input as object.union(pod(["r.io/a:1"]), {"parameters": bank})
	count(k8strustedimagesource.config_problems) == 1 with input as object.union(pod(["r.io/a:1"]), {"parameters": {"tagPattern": false}})
}

# The literal tail is the alternation of the tails it stands for, and the one-replace names
# are the well-formed dotted entries other than Docker Hub's.
test_settle_tail_literal if {
	inp := object.union(pod(["r.io/a:1"]), {"parameters": bank})
	k8strustedimagesource._settle_tail == concat("|", k8strustedimagesource._settle_tails) with input as inp
	k8strustedimagesource._settle_tail == `(?::[\w][\w.-]*)?@(?:sha256:[a-f0-9]{64}|sha384:[a-f0-9]{96}|sha512:[a-f0-9]{128})` with input as object.union(inp, {"parameters": {"bannedTags": ["1.0"]}})
	names := k8strustedimagesource._settle_name with input as object.union(inp, {"parameters": {"allowedRegistries": ["docker.io", "localhost:5000", "R.io:5000/a", "index.docker.io/x", "[::1]/y", "docker.io.evil.com", "docker.io:5000", "bad entry", "q.io"]}})
	startswith(names, `(?:r\.io:5000/a/|docker\.io\.evil\.com/|docker\.io:5000/|q\.io/)[a-z0-9]`)
	k8strustedimagesource._settle_name == "" with input as object.union(inp, {"parameters": {"allowedRegistries": ["docker.io", "localhost"]}})
	k8strustedimagesource._settle_pattern == data.lib.imagetrust.containers.settle_nothing with input as object.union(inp, {"parameters": {"allowedRegistries": []}})
}

test_well_formed_params_re_is_the_grammar if {
	e := concat("", [`(?:`, data.lib.imagetrust.reference.domain_and_port, `)(?:/`, data.lib.imagetrust.reference.remote_name, `)?`])
	k8strustedimagesource._well_formed_params_re == concat("", [
		`^\{(?:"allowImplicitRegistry":(?:true|false),?)?(?:"allowedRegistries":\[(?:"`, e, `"(?:,"`, e,
		`")*)?\],?)?(?:"bannedTags":\[(?:"[^"\\]+"(?:,"[^"\\]+")*)?\])?\}$`,
	])
}
