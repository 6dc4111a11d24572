package k8simageattestations_test

import data.k8simageattestations

d_a := "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

d_b := "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

slsa := "https://slsa.dev/provenance/v1"

review_type := "https://bank.internal/attestations/change-review/v1"

stmt(authority, ptype, predicate) := {
	"authority": authority, "format": "dsse", "_type": "https://in-toto.io/Statement/v0.1",
	"predicateType": ptype, "subjects": [{"name": "r.io/x", "digest": {"sha256": substring(d_a, 7, -1)}}],
	"predicate": predicate, "truncated": false,
}

prov(authority, uri) := stmt(authority, slsa, {
	"buildDefinition": {"buildType": "https://slsa-framework.github.io/github-actions-buildtypes/workflow/v1", "externalParameters": {"source": {"uri": uri}}},
	"runDetails": {"builder": {"id": "https://github.com/actions/runner/github-hosted"}},
})

rev(authority, status, level) := stmt(authority, review_type, {"ticket": "CHG-1", "status": status, "approval": {"level": level}})

val(stmts) := {"image": "r.io/x:1", "digest": d_a, "statements": stmts, "statementsTotal": count(stmts), "truncated": false}

values := {
	"r.io/good:1": val([prov("release", "git+https://github.com/bank/payments@refs/heads/main"), rev("release", "approved", 2)]),
	"r.io/dotgit:1": val([prov("release", "https://GitHub.com/bank/payments.git/")]),
	"r.io/wrong:1": val([prov("release", "git+https://github.com/evil/payments@refs/heads/main")]),
	"r.io/fork:1": val([prov("release", "git+https://github.com/bank/payments-fork")]),
	"r.io/mixed:1": val([prov("release", "git+https://github.com/bank/payments"), prov("release", "git+https://github.com/evil/payments")]),
	"r.io/stranger:1": val([prov("someone", "git+https://github.com/bank/payments")]),
	"r.io/no-uri:1": val([stmt("release", slsa, {"buildDefinition": {"externalParameters": {"workflow": {"repository": "https://github.com/bank/payments"}}}})]),
	"r.io/none:1": object.union(val([]), {"rejected": [{"kind": "attestation", "reason": "layer sha256:cc: no configured authority verified it"}]}),
	"r.io/pending:1": val([prov("release", "https://github.com/bank/payments"), rev("release", "pending", 1)]),
	"r.io/truncated:1": object.union(val([prov("release", "https://github.com/bank/payments"), rev("release", "approved", 2)]), {"statementsTotal": 40, "truncated": true}),
	concat("", ["r.io/pinned@", d_b]): val([prov("release", "https://github.com/bank/payments")]),
	"r.io/garbage:1": "nope",
}

key_errors := {
	"r.io/down:1": "unavailable: registry r.io returned 503",
	"r.io/notfound:1": "not found: manifest unknown",
}

mock(req) := {
	"responses": [[k, values[k]] | some k in req.keys; values[k]],
	"errors": [[k, key_errors[k]] | some k in req.keys; key_errors[k]],
	"status_code": 200,
	"system_error": "",
}

mock_system_error(_) := {"responses": null, "errors": null, "status_code": 500, "system_error": "connection refused"}

# The provider answers only when asked for exactly these keys, in one call.
mock_strict(req) := mock(req) if {
	req == {"provider": "imagetrust-attestations", "keys": ["r.io/good:1", "r.io/wrong:1"]}
} else := {"responses": [], "errors": [], "status_code": 200, "system_error": sprintf("unexpected request %v", [req])}

pod(images) := {"review": {
	"kind": {"kind": "Pod"},
	"object": {"kind": "Pod", "spec": {"containers": [{"name": sprintf("c%d", [i]), "image": img} | some i, img in images]}},
}}

msgs(images, params) := m if {
	m := {v.msg | some v in k8simageattestations.violation} with input as object.union(pod(images), {"parameters": params})
		with external_data as mock
}

slsa_rule := {"authorities": ["release"], "allowedSourceRepos": ["https://github.com/bank/payments"]}

review_rule := {"authorities": ["release"], "requiredPredicates": [{
	"predicateType": review_type, "field": "status", "allowedValues": ["approved"],
	"description": "changes are reviewed before release",
}]}

wrong_msg := "container <c0> image <r.io/wrong:1> was built from source <git+https://github.com/evil/payments@refs/heads/main> (SLSA provenance of <release>), not one of the allowed repositories <https://github.com/bank/payments>"

test_allowed_source_admitted if {
	msgs(["r.io/good:1", "r.io/dotgit:1"], slsa_rule) == set()
}

test_wrong_source_denied_naming_it if {
	msgs(["r.io/wrong:1"], slsa_rule) == {wrong_msg}
}

test_repository_is_not_a_prefix if {
	msgs(["r.io/fork:1"], slsa_rule) == {"container <c0> image <r.io/fork:1> was built from source <git+https://github.com/bank/payments-fork> (SLSA provenance of <release>), not one of the allowed repositories <https://github.com/bank/payments>"}
}

test_every_provenance_must_match if {
	msgs(["r.io/mixed:1"], slsa_rule) == {"container <c0> image <r.io/mixed:1> was built from source <git+https://github.com/evil/payments> (SLSA provenance of <release>), not one of the allowed repositories <https://github.com/bank/payments>"}
}

test_other_authority_does_not_count if {
	msgs(["r.io/stranger:1"], slsa_rule) == {"container <c0> image <r.io/stranger:1> has no verified SLSA provenance <https://slsa.dev/provenance/v1> from authorities <release>; allowedSourceRepos requires one"}
	msgs(["r.io/stranger:1"], {"allowedSourceRepos": ["https://github.com/bank/payments"]}) == set()
}

test_no_provenance_names_rejections if {
	msgs(["r.io/none:1"], {"allowedSourceRepos": ["https://github.com/bank/payments"]}) == {"container <c0> image <r.io/none:1> has no verified SLSA provenance <https://slsa.dev/provenance/v1> from any configured authority (not verified: <layer sha256:cc: no configured authority verified it>); allowedSourceRepos requires one"}
}

test_provenance_without_source_uri if {
	msgs(["r.io/no-uri:1"], slsa_rule) == {"container <c0> image <r.io/no-uri:1> has SLSA provenance of <release> without a string buildDefinition.externalParameters.source.uri; allowedSourceRepos requires it"}
}

test_custom_predicate_field if {
	msgs(["r.io/good:1"], review_rule) == set()
	msgs(["r.io/pending:1"], review_rule) == {"container <c0> image <r.io/pending:1> has no verified <https://bank.internal/attestations/change-review/v1> statement with <status> in <approved>; found <pending> (changes are reviewed before release)"}
	msgs(["r.io/wrong:1"], review_rule) == {"container <c0> image <r.io/wrong:1> has no verified <https://bank.internal/attestations/change-review/v1> statement from authorities <release> (changes are reviewed before release)"}
}

test_custom_predicate_nested_number_and_presence if {
	level2 := {"requiredPredicates": [{"predicateType": review_type, "field": "approval.level", "allowedValues": ["2", "3"]}]}
	msgs(["r.io/good:1"], level2) == set()
	msgs(["r.io/pending:1"], level2) == {"container <c0> image <r.io/pending:1> has no verified <https://bank.internal/attestations/change-review/v1> statement with <approval.level> in <2, 3>; found <1>"}
	presence := {"requiredPredicates": [{"predicateType": review_type}]}
	msgs(["r.io/pending:1"], presence) == set()
	msgs(["r.io/dotgit:1"], presence) == {"container <c0> image <r.io/dotgit:1> has no verified <https://bank.internal/attestations/change-review/v1> statement from any configured authority"}
}

test_truncated_denies_by_default if {
	msgs(["r.io/truncated:1"], slsa_rule) == {"container <c0> image <r.io/truncated:1> has more verified attestation content than the provider reports (<40> statements, some without their predicates); raise the provider's attestations limits or set denyTruncated to false"}
	msgs(["r.io/truncated:1"], object.union(slsa_rule, {"denyTruncated": false})) == set()
}

test_pinned_digest_must_match if {
	img := concat("", ["r.io/pinned@", d_b])
	msgs([img], slsa_rule) == {sprintf("container <c0> image <%s> pins <%s> but the provider read the attestations of <%s>", [img, d_b, d_a])}
}

test_lookup_errors_deny_unless_fail_open if {
	msgs(["r.io/down:1"], slsa_rule) == {"container <c0> image <r.io/down:1> could not be checked for attestations: provider <imagetrust-attestations> error: unavailable: registry r.io returned 503; lookup errors deny (failOpen is false)"}
	msgs(["r.io/down:1"], object.union(slsa_rule, {"failOpen": true})) == set()
	msgs(["r.io/notfound:1"], object.union(slsa_rule, {"failOpen": true})) == {"container <c0> image <r.io/notfound:1> was not checked for attestations: provider <imagetrust-attestations> error: not found: manifest unknown"}
	msgs(["r.io/garbage:1"], slsa_rule) == {"container <c0> image <r.io/garbage:1> was not checked for attestations: provider <imagetrust-attestations> answered <nope>, not an object"}
	msgs(["r.io/missing:1"], slsa_rule) == {"container <c0> image <r.io/missing:1> could not be checked for attestations: provider <imagetrust-attestations> returned no answer for this image; lookup errors deny (failOpen is false)"}
}

test_system_error if {
	m := {v.msg | some v in k8simageattestations.violation} with input as object.union(pod(["r.io/good:1"]), {"parameters": slsa_rule})
		with external_data as mock_system_error
	m == {"container <c0> image <r.io/good:1> could not be checked for attestations: provider <imagetrust-attestations> system error: connection refused; lookup errors deny (failOpen is false)"}
}

test_one_batched_call if {
	m := {v.msg | some v in k8simageattestations.violation} with input as object.union(pod(["r.io/wrong:1", "r.io/good:1", "r.io/wrong:1"]), {"parameters": slsa_rule})
		with external_data as mock_strict
	m == {wrong_msg, replace(wrong_msg, "<c0>", "<c2>")}
}

test_exempt_images_not_looked_up if {
	params := object.union(slsa_rule, {"exemptImages": [{"image": "r.io/wrong:*", "reason": "vendor image"}]})
	m := {v.msg | some v in k8simageattestations.violation} with input as object.union(pod(["r.io/wrong:1", "r.io/good:1"]), {"parameters": params})
		with external_data as mock
	m == set()
}

test_invalid_reference_denied if {
	msgs(["r.io/Bad:1"], slsa_rule) == {"container <c0> image <r.io/Bad:1> is not a valid image reference: repository name (Bad) must be lowercase; write [registry/]repository[:tag][@digest] as the container runtime parses it"}
}

test_misconfigured if {
	msgs(["r.io/good:1"], {"authorities": "release"}) == {"constraint is misconfigured: authorities must be a list of strings, got <release>; every image is denied until it is fixed"}
	"constraint is misconfigured: allowedSourceRepos[0] must be a repository URL such as https://github.com/org/repo, got <github.com/bank/payments>; every image is denied until it is fixed" in msgs(["r.io/good:1"], {"allowedSourceRepos": ["github.com/bank/payments"]})
	"constraint is misconfigured: allowedSourceRepos[0] must be a non-empty string, got <>; every image is denied until it is fixed" in msgs(["r.io/good:1"], {"allowedSourceRepos": [""]})
	msgs(["r.io/good:1"], {"denyTruncated": "no"}) == {"constraint is misconfigured: denyTruncated must be a boolean, got <no>; every image is denied until it is fixed"}
	msgs(["r.io/good:1"], {"requiredPredicates": "x"}) == {"constraint is misconfigured: requiredPredicates must be a list of entries, got <x>; every image is denied until it is fixed"}
	bad := {"predicateType": review_type, "field": "status"}
	msgs(["r.io/good:1"], {"requiredPredicates": [bad]}) == {sprintf("constraint is misconfigured: requiredPredicates[0] must have a non-empty predicateType, and allowedValues (a non-empty list of strings) exactly when it has a field, got <%v>; every image is denied until it is fixed", [bad])}
}

test_repository_normalisation if {
	k8simageattestations._repository("git+https://github.com/bank/payments@refs/heads/main") == "https://github.com/bank/payments"
	k8simageattestations._repository("https://GitHub.com/bank/payments.git/?x=1#frag") == "https://github.com/bank/payments"
	k8simageattestations._repository("git+ssh://git@github.com/bank/payments") == "ssh://git@github.com/bank/payments"
	k8simageattestations._repository("https://github.com") == "https://github.com"
	k8simageattestations._repository("not a url") == "not a url"
}
