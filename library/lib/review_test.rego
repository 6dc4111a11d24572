package lib.imagetrust.review_test

import data.lib.imagetrust.review

# 2026-06-15T12:00:00Z
now := 1781524800000000000

pod(images) := {"kind": {"kind": "Pod"}, "object": {"kind": "Pod", "spec": {"containers": [{"name": sprintf("c%d", [i]), "image": img} | some i, img in images]}}}

test_params if {
	review.params == {} with input as {"review": pod([])}
	review.params == {} with input as {"review": pod([]), "parameters": "x"}
	review.params == {"a": 1} with input as {"review": pod([]), "parameters": {"a": 1}}
}

test_each_image_parsed_once_and_checked_per_container if {
	inp := {"review": pod(["r.io/a:1", "r.io/a:1", "r.io/A:1", "r.io/tools/x:1"]), "parameters": {"exemptImages": [{"image": "r.io/tools/*", "reason": "tools"}]}}
	object.keys(review.parsed) == {"r.io/a:1", "r.io/A:1", "r.io/tools/x:1"} with input as inp
	review.exempt_images == {"r.io/tools/x:1"} with input as inp
	object.keys(review.checked_refs) == {"r.io/a:1"} with input as inp
	{c.name | some [c, _] in review.checked} == {"c0", "c1"} with input as inp
	review.invalid == {"container <c2> image <r.io/A:1> is not a valid image reference: repository name (A) must be lowercase; write [registry/]repository[:tag][@digest] as the container runtime parses it"} with input as inp
}

test_no_exemptions_no_glob if {
	review.exempt_images == set() with input as {"review": pod(["r.io/a:1"])}
}

test_message_names_expired_exemptions if {
	inp := {"review": pod(["r.io/tools/x:1", "r.io/app:1"]), "parameters": {"exemptImages": [
		{"image": "r.io/tools/*", "reason": "debugging tool", "expires": "2026-06-01"},
		{"image": "r.io/**", "reason": "migration", "expires": "2026-05-31T18:00:00Z"},
		{"image": "r.io/app:*", "reason": "until the rebuild", "expires": "2026-07-01"},
	]}}
	review.exempt_images == {"r.io/app:1"} with input as inp with time.now_ns as now
	review.expired_notes == {"r.io/tools/x:1": "exemption for <r.io/tools/*> expired on <2026-06-01> (<debugging tool>); exemption for <r.io/**> expired on <2026-05-31T18:00:00Z> (<migration>)"} with input as inp with time.now_ns as now
	pairs := {[{"name": "c0", "image": "r.io/tools/x:1"}, "denied"], [{"name": "c9", "image": "r.io/other:1"}, "denied too"]}
	review.messages(pairs) == {
		"denied; exemption for <r.io/tools/*> expired on <2026-06-01> (<debugging tool>); exemption for <r.io/**> expired on <2026-05-31T18:00:00Z> (<migration>)",
		"denied too",
	}
		with input as inp with time.now_ns as now
	review.messages(pairs) == {"denied", "denied too"} with input as {"review": inp.review}
}

test_violations if {
	inp := {"review": pod(["r.io/A:1", "r.io/b:1"]), "parameters": {"exemptImages": [{"image": "x"}]}}
	review.violations({"p is wrong"}) == {
		"container <c0> image <r.io/A:1> is not a valid image reference: repository name (A) must be lowercase; write [registry/]repository[:tag][@digest] as the container runtime parses it",
		"constraint is misconfigured: p is wrong; every image is denied until it is fixed",
		`constraint is misconfigured: exemptImages[0] must have a non-empty image glob and a non-empty reason, got <{"image": "x"}>; every image is denied until it is fixed`,
	}
		with input as inp
	review.violations({"p is wrong"}) == set() with input as {"review": pod([]), "parameters": {}}
}

test_exemption_work_only_with_entries if {
	none := {"review": pod(["r.io/a:1", "r.io/A:1"]), "parameters": {"exemptImages": []}}
	review.exempt_images == set() with input as none
	object.keys(review.checked_refs) == {"r.io/a:1"} with input as none
	review.violations(set()) == {"container <c1> image <r.io/A:1> is not a valid image reference: repository name (A) must be lowercase; write [registry/]repository[:tag][@digest] as the container runtime parses it"} with input as none
	review.violations(set()) == {"constraint is misconfigured: exemptImages must be a list of {image, reason}, got <false>; every image is denied until it is fixed"} with input as {"review": pod(["r.io/a:1"]), "parameters": {"exemptImages": false}}
	review.violations(set()) == {"constraint is misconfigured: exemptImages must be a list of {image, reason}, got <null>; every image is denied until it is fixed"} with input as {"review": pod(["r.io/a:1"]), "parameters": {"exemptImages": null}}
}
