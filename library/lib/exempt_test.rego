package lib.imagetrust.exempt_test

import data.lib.imagetrust.exempt
import data.lib.imagetrust.reference

ex(image) := [{"image": image, "reason": "test"}]

is_exempt(s, glob) if exempt.is_exempt(reference.parse(s), ex(glob))

test_star_stays_in_segment if {
	is_exempt("ghcr.io/org/app:1.0", "ghcr.io/org/*")
	not is_exempt("ghcr.io/org/sub/app:1.0", "ghcr.io/org/*")
	is_exempt("ghcr.io/org/sub/app:1.0", "ghcr.io/org/**")
	is_exempt("busybox:1.36", "docker.io/library/busybox:*")
	not is_exempt("busybox:1.36", "busybox:*")
}

test_literals_are_quoted if {
	not is_exempt("ghcr.io/orgxapp:1.0", "ghcr.io/org.app:1.0")
	is_exempt("ghcr.io/org.app:1.0", "ghcr.io/org.app:1.0")
	exempt.glob_to_regex("a.b/*/**+(x)") == `^a\.b/[^/]*/.*\+\(x\)$`
}

test_invalid_never_exempt if {
	not exempt.is_exempt(reference.parse("busybox:"), ex("**"))
}

test_malformed_entries_ignored_and_reported if {
	not exempt.is_exempt(reference.parse("busybox:1"), [{"image": "**", "reason": ""}])
	not exempt.is_exempt(reference.parse("busybox:1"), [{"image": "**"}])
	exempt.problems == {`exemptImages[0] must have a non-empty image glob and a non-empty reason, got <{"image": "**"}>`} with input as {"parameters": {"exemptImages": [{"image": "**"}]}}
	exempt.problems == {"exemptImages must be a list of {image, reason}, got <x>"} with input as {"parameters": {"exemptImages": "x"}}
}

test_matching_compiled if {
	e := exempt.compile({"image": "docker.io/library/*:1", "reason": "test"})
	e == {"image": "docker.io/library/*:1", "reason": "test", "regex": `^docker\.io/library/[^/]*:1$`}
	exempt.matches(reference.parse("busybox:1"), e)
	not exempt.matches(reference.parse("busybox:2"), e)
}

# 2026-06-15T12:00:00Z
now := 1781524800000000000

test_expired_entries_no_longer_apply if {
	live := [{"image": "docker.io/library/busybox:*", "reason": "debug", "expires": "2026-06-15"}]
	gone := [{"image": "docker.io/library/busybox:*", "reason": "debug", "expires": "2026-06-14T23:59:59Z"}]
	exempt.is_exempt(reference.parse("busybox:1"), live) with time.now_ns as now
	not exempt.is_exempt(reference.parse("busybox:1"), gone) with time.now_ns as now
}

test_active_and_expired if {
	params := {"exemptImages": [
		{"image": "r.io/a/*", "reason": "a", "expires": "2026-06-16"},
		{"image": "r.io/b/*", "reason": "b", "expires": "2026-06-01"},
		{"image": "r.io/c/*", "reason": "c"},
		{"image": "r.io/d/*", "reason": "d", "expires": "June 1st"},
		{"image": "r.io/e/*", "reason": "e", "expires": null},
	]}
	[e.image | some e in exempt.active] == ["r.io/a/*", "r.io/c/*", "r.io/e/*"] with input as {"parameters": params} with time.now_ns as now
	exempt.expired == [{"image": "r.io/b/*", "reason": "b", "expires": "2026-06-01", "regex": `^r\.io/b/[^/]*$`}] with input as {"parameters": params} with time.now_ns as now
	exempt.problems == {"exemptImages[3] <r.io/d/*> expires <June 1st>, which is not an RFC 3339 date (2026-12-31) or date-time (2026-12-31T18:00:00Z)"} with input as {"parameters": params} with time.now_ns as now
	exempt.expired_note(exempt.expired[0]) == "exemption for <r.io/b/*> expired on <2026-06-01> (<b>)" with input as {"parameters": params} with time.now_ns as now
}

test_malformed_expiry_never_applies if {
	not exempt.is_exempt(reference.parse("busybox:1"), [{"image": "**", "reason": "x", "expires": "2999-99-99"}])
	not exempt.is_exempt(reference.parse("busybox:1"), [{"image": "**", "reason": "x", "expires": 2999}])
	exempt.problems == {"exemptImages[0] <**> expires <2999>, which is not an RFC 3339 date (2026-12-31) or date-time (2026-12-31T18:00:00Z)"} with input as {"parameters": {"exemptImages": [{"image": "**", "reason": "x", "expires": 2999}]}}
}
