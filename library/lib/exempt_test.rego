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

test_matching if {
	exempt.matching(reference.parse("busybox:1"), ex("**")) == ex("**")
}
