package k8simagesignature_test

import data.k8simagesignature
import data.lib.imagetrust.externaldata
import data.lib.imagetrust.review

d_a := "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

d_b := "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

builder := "https://github.com/slsa-framework/slsa-github-generator/.github/workflows/generator_container_slsa3.yml@refs/tags/v2.1.0"

sig_kms := {"authority": "bank-kms", "keyId": "sha256:k1", "algorithm": "ecdsa-p256-sha256", "verified": true, "format": "cosign"}

sig_gha := {
	"authority": "ci-github-actions", "keyId": "sha256:c1", "algorithm": "ecdsa-p256-sha256", "verified": true, "format": "bundle",
	"issuer": "https://token.actions.githubusercontent.com",
	"subject": "https://github.com/bank/payments/.github/workflows/release.yml@refs/heads/main",
}

sig_tekton := {"authority": "ci-tekton", "keyId": "sha256:t1", "algorithm": "ed25519", "verified": true, "format": "cosign"}

att_slsa := {"authority": "ci-github-actions", "predicateType": "https://slsa.dev/provenance/v1", "format": "bundle"}

att_spdx := {"authority": "ci-github-actions", "predicateType": "https://spdx.dev/Document", "format": "bundle"}

prov_gha := {
	"builderId": builder,
	"sourceUri": "git+https://github.com/bank/payments@refs/heads/main",
	"buildType": "https://slsa-framework.github.io/github-actions-buildtypes/workflow/v1",
	"predicateType": "https://slsa.dev/provenance/v1", "authority": "ci-github-actions",
}

# A second verified statement: SLSA v0.2 from the bank's Tekton, built from the same repository.
prov_tekton := {
	"builderId": "https://tekton.bank.internal/chains/v2",
	"sourceUri": "https://github.com/bank/payments",
	"buildType": "https://tekton.dev/chains/v2/slsa",
	"predicateType": "https://slsa.dev/provenance/v0.2", "authority": "ci-tekton",
}

# A verified statement from a fork, built by an unapproved builder.
prov_fork := {
	"builderId": "https://github.com/evil/payments/.github/workflows/build.yml@refs/heads/main",
	"sourceUri": "https://github.com/evil/payments",
	"buildType": "https://actions.github.io/buildtypes/workflow/v1",
	"predicateType": "https://slsa.dev/provenance/v1", "authority": "ci-github-actions",
}

good := {
	"image": "registry.bank.internal/payments/api:1.0",
	"digest": d_a,
	"signed": true,
	"signatures": [sig_kms, sig_gha],
	"attestations": [att_slsa, att_spdx],
	"sbom": {"formats": ["spdx"]},
	"provenance": [prov_gha],
	"platforms": [
		{"os": "linux", "architecture": "amd64", "digest": d_b},
		{"os": "linux", "architecture": "arm64", "variant": "v8", "digest": d_b},
	],
	"tagDigest": d_a,
}

unsigned := object.union(good, {
	"signed": false, "signatures": [], "attestations": [],
	"sbom": {"formats": []},
	"provenance": [],
	"rejected": [{"kind": "signature", "reason": "no matching signatures: invalid signature when validating ASN.1 encoded signature"}],
})

# Answers by image, as the provider would give them.
values := {
	"r.io/good:1": good,
	"r.io/good:2": good,
	"r.io/unsigned:1": unsigned,
	"r.io/tekton:1": object.union(good, {"signatures": [sig_tekton]}),
	"r.io/two-ci:1": object.union(good, {"signatures": [sig_gha, sig_tekton]}),
	"r.io/unverified-sig:1": object.union(good, {"signatures": [object.union(sig_kms, {"verified": false})]}),
	"r.io/unsigned-sbom:1": object.union(good, {"sbom": {"formats": [], "unverified": [{"format": "cyclonedx", "artifactType": "application/vnd.cyclonedx+json", "verified": false}]}}),
	"r.io/no-sbom:1": object.union(good, {"sbom": {"formats": []}}),
	"r.io/sbom-flagged:1": object.union(good, {"sbom": {"formats": ["spdx"], "verified": false}}),
	"r.io/cdx:1": object.union(good, {"sbom": {"formats": ["CycloneDX"]}}),
	"r.io/two-sboms:1": object.union(good, {"sbom": {"formats": ["cyclonedx", "spdx"]}}),
	"r.io/old-answer:1": object.union(object.remove(good, ["sbom", "provenance"]), {"sbom": {"present": true, "format": "spdx"}, "provenance": object.union(prov_gha, {"present": true})}),
	"r.io/forked:1": object.union(good, {"provenance": [object.union(prov_gha, {"sourceUri": "git+https://github.com/evil/payments@refs/heads/main"})]}),
	"r.io/prefix:1": object.union(good, {"provenance": [object.union(prov_gha, {"sourceUri": "https://github.com/bank-evil/payments"})]}),
	"r.io/http:1": object.union(good, {"provenance": [object.union(prov_gha, {"sourceUri": "http://github.com/bank/payments"})]}),
	"r.io/dotgit:1": object.union(good, {"provenance": [object.union(prov_gha, {"sourceUri": "git+https://GitHub.com/Bank/Payments.git@refs/tags/v1?x=1#frag"})]}),
	"r.io/selfbuilt:1": object.union(good, {"provenance": [object.union(prov_gha, {"builderId": "https://github.com/bank/payments/.github/workflows/build.yml@refs/heads/main"})]}),
	"r.io/two-prov:1": object.union(good, {"provenance": [prov_gha, prov_tekton]}),
	"r.io/with-fork:1": object.union(good, {"provenance": [prov_fork, prov_gha]}),
	"r.io/only-fork:1": object.union(good, {"provenance": [prov_fork, object.union(prov_fork, {"sourceUri": "https://github.com/evil/other"})]}),
	"r.io/split:1": object.union(good, {"provenance": [
		object.union(prov_fork, {"builderId": builder}),
		object.union(prov_gha, {"builderId": "https://github.com/evil/builder"}),
	]}),
	"r.io/prov-flagged:1": object.union(good, {"provenance": [object.union(prov_gha, {"verified": false})]}),
	"r.io/no-prov:1": object.union(good, {"attestations": [att_spdx], "provenance": []}),
	"r.io/no-prov-rejected:1": object.union(good, {
		"attestations": [],
		"provenance": [],
		"rejected": [{"kind": "attestation", "reason": "statement subject sha256:ffff does not match the image"}],
	}),
	"r.io/unverified-att:1": object.union(good, {"attestations": [object.union(att_slsa, {"verified": false}), att_spdx]}),
	"r.io/amd64:1": object.union(good, {"platforms": [{"os": "linux", "architecture": "amd64", "digest": d_b}]}),
	"r.io/single:1": object.union(good, {"platforms": []}),
	"r.io/armv7:1": object.union(good, {"platforms": [{"os": "linux", "architecture": "arm", "variant": "v7", "digest": d_b}]}),
	"r.io/truncated:1": object.union(good, {
		"platforms": [{"os": "linux", "architecture": "amd64", "digest": d_b}],
		"platformsTotal": 20000,
		"platformsTruncated": true,
	}),
	concat("", ["r.io/pinned:1@", d_a]): good,
	concat("", ["r.io/drift:1@", d_a]): object.union(good, {"tagDigest": d_b}),
	concat("", ["r.io/gone:1@", d_a]): object.union(good, {"tagDigest": "", "tagError": "not found: tag gone:1 does not exist"}),
	concat("", ["r.io/digest-only@", d_a]): object.union(good, {"tagDigest": ""}),
	concat("", ["r.io/mismatch@", d_a]): object.union(good, {"digest": d_b}),
	"r.io/stale:1": object.union(good, {"stale": true}),
	"r.io/garbage:1": "not-an-object",
}

key_errors := {
	"r.io/down:1": "unavailable: registry r.io returned 503",
	"r.io/slow:1": "timed out: verification did not finish within 2.5s",
	"r.io/notfound:1": "not found: manifest unknown",
	"r.io/denied:1": "denied: no signature verified for sha256:aaaa",
	"r.io/odd:1": "something unexpected",
}

mock(req) := {
	"responses": [[k, values[k]] | some k in req.keys; values[k]],
	"errors": [[k, key_errors[k]] | some k in req.keys; key_errors[k]],
	"status_code": 200,
	"system_error": "",
}

mock_system_error(_) := {"responses": null, "errors": null, "status_code": 500, "system_error": "failed to send external data request: connection refused"}

mock_status(req) := object.union(mock(req), {"status_code": 503})

mock_cached(req) := object.union(mock(req), {"status_code": 0})

# The provider answers only when asked for exactly these keys, in one call.
mock_strict(req) := mock(req) if {
	req == {"provider": "imagetrust-verify-signatures", "keys": ["r.io/good:1", "r.io/unsigned:1"]}
} else := {"responses": [], "errors": [], "status_code": 200, "system_error": sprintf("unexpected request %v", [req])}

pod(images) := {"review": {
	"kind": {"kind": "Pod"},
	"object": {"kind": "Pod", "spec": {"containers": [{"name": sprintf("c%d", [i]), "image": img} | some i, img in images]}},
}}

msgs(images, params) := m if {
	m := {v.msg | some v in k8simagesignature.violation} with input as object.union(pod(images), {"parameters": params})
		with external_data as mock
}

kms := {"authorities": ["bank-kms"]}

# ---------------------------------------------------------------------------------------
# Signatures.

test_signed_by_required_authority if {
	msgs(["r.io/good:1"], kms) == set()
}

test_not_signed_by_required_authority if {
	msgs(["r.io/tekton:1"], kms) == {"container <c0> image <r.io/tekton:1> is not signed by required authority <bank-kms>; found verified signatures from <ci-tekton>"}
}

test_all_authorities_required if {
	msgs(["r.io/good:1"], {"authorities": ["bank-kms", "ci-tekton"]}) == {"container <c0> image <r.io/good:1> is not signed by required authority <ci-tekton>; found verified signatures from <bank-kms, ci-github-actions>"}
}

test_unsigned_names_rejections if {
	msgs(["r.io/unsigned:1"], kms) == {"container <c0> image <r.io/unsigned:1> is not signed by required authority <bank-kms>; found no verified signature (rejected: <no matching signatures: invalid signature when validating ASN.1 encoded signature>)"}
}

test_unverified_signature_does_not_count if {
	msgs(["r.io/unverified-sig:1"], kms) == {"container <c0> image <r.io/unverified-sig:1> is not signed by required authority <bank-kms>; found no verified signature"}
}

test_any_of_threshold_one if {
	params := {"anyOf": ["ci-github-actions", "ci-tekton"]}
	msgs(["r.io/tekton:1", "r.io/good:1"], params) == set()
	msgs(["r.io/unsigned:1"], params) == {"container <c0> image <r.io/unsigned:1> is signed by 0 of the authorities <ci-github-actions, ci-tekton>, 1 required; found no verified signature (rejected: <no matching signatures: invalid signature when validating ASN.1 encoded signature>)"}
}

test_any_of_threshold_two if {
	params := {"anyOf": ["ci-github-actions", "ci-tekton"], "threshold": 2}
	msgs(["r.io/two-ci:1"], params) == set()
	msgs(["r.io/tekton:1"], params) == {"container <c0> image <r.io/tekton:1> is signed by 1 of the authorities <ci-github-actions, ci-tekton>, 2 required; found verified signatures from <ci-tekton>"}
}

test_authorities_and_any_of_both_apply if {
	params := {"authorities": ["bank-kms"], "anyOf": ["ci-tekton"]}
	msgs(["r.io/good:1"], params) == {"container <c0> image <r.io/good:1> is signed by 0 of the authorities <ci-tekton>, 1 required; found verified signatures from <bank-kms, ci-github-actions>"}
}

test_default_requires_any_verified_signature if {
	msgs(["r.io/tekton:1"], {}) == set()
	msgs(["r.io/unverified-sig:1"], {}) == {"container <c0> image <r.io/unverified-sig:1> has no verified signature from a trusted authority; found no verified signature"}
}

test_no_parameters_at_all if {
	m := {v.msg | some v in k8simagesignature.violation} with input as pod(["r.io/unsigned:1", "r.io/good:1"])
		with external_data as mock
	m == {"container <c0> image <r.io/unsigned:1> has no verified signature from a trusted authority; found no verified signature (rejected: <no matching signatures: invalid signature when validating ASN.1 encoded signature>)"}
}

# ---------------------------------------------------------------------------------------
# SBOM.

test_sbom_present if {
	msgs(["r.io/good:1"], {"requireSBOM": true, "sbomFormats": ["spdx", "cyclonedx"]}) == set()
}

test_sbom_missing if {
	msgs(["r.io/no-sbom:1"], {"requireSBOM": true}) == {"container <c0> image <r.io/no-sbom:1> has no verified SBOM; found no SBOM"}
}

test_unsigned_sbom_referrer_does_not_count if {
	msgs(["r.io/unsigned-sbom:1"], {"requireSBOM": true}) == {"container <c0> image <r.io/unsigned-sbom:1> has no verified SBOM; found only unverified SBOMs <cyclonedx> (an SBOM must be a signed attestation)"}
}

test_sbom_marked_unverified_does_not_count if {
	msgs(["r.io/sbom-flagged:1"], {"requireSBOM": true}) == {"container <c0> image <r.io/sbom-flagged:1> has no verified SBOM; found no SBOM"}
}

test_sbom_wrong_format if {
	msgs(["r.io/cdx:1"], {"requireSBOM": true, "sbomFormats": ["SPDX"]}) == {"container <c0> image <r.io/cdx:1> has a verified SBOM in format <CycloneDX>, allowed: <spdx>"}
	msgs(["r.io/cdx:1"], {"sbomFormats": ["cyclonedx"]}) == set()
}

test_sbom_formats_imply_require_sbom if {
	msgs(["r.io/no-sbom:1"], {"sbomFormats": ["spdx"]}) == {"container <c0> image <r.io/no-sbom:1> has no verified SBOM; found no SBOM"}
}

test_sbom_not_required_by_default if {
	msgs(["r.io/no-sbom:1"], kms) == set()
}

test_sbom_formats_some_verified_sbom_allowed if {
	msgs(["r.io/two-sboms:1"], {"sbomFormats": ["spdx"]}) == set()
	msgs(["r.io/two-sboms:1"], {"sbomFormats": ["CycloneDX"]}) == set()
	msgs(["r.io/two-sboms:1"], {"sbomFormats": ["syft"]}) == {"container <c0> image <r.io/two-sboms:1> has verified SBOMs in formats <cyclonedx, spdx>, allowed: <syft>"}
}

# An answer in the old single-object shape proves nothing: denied, never admitted by accident.
test_old_answer_shape_does_not_count if {
	msgs(["r.io/old-answer:1"], {"requireSBOM": true, "requireProvenance": true}) == {
		"container <c0> image <r.io/old-answer:1> has no verified SBOM; found no SBOM",
		"container <c0> image <r.io/old-answer:1> has no verified SLSA provenance; found verified attestations <https://slsa.dev/provenance/v1, https://spdx.dev/Document>",
	}
}

# ---------------------------------------------------------------------------------------
# Provenance.

gh := {"allowedSourceRepos": ["https://github.com/bank/*"], "allowedBuilders": ["https://github.com/slsa-framework/slsa-github-generator/.github/workflows/generator_container_slsa3.yml@refs/tags/v*"]}

test_provenance_from_allowed_repo_and_builder if {
	msgs(["r.io/good:1", "r.io/dotgit:1"], gh) == set()
}

test_provenance_unapproved_repo if {
	msgs(["r.io/forked:1"], gh) == {"container <c0> image <r.io/forked:1> was built from <git+https://github.com/evil/payments@refs/heads/main>, which is not an allowed source repository; allowed: <https://github.com/bank/*>"}
}

test_provenance_repo_is_not_a_prefix_match if {
	msgs(["r.io/prefix:1"], {"allowedSourceRepos": ["github.com/bank"]}) == {"container <c0> image <r.io/prefix:1> was built from <https://github.com/bank-evil/payments>, which is not an allowed source repository; allowed: <github.com/bank>"}
	msgs(["r.io/prefix:1"], gh) == {"container <c0> image <r.io/prefix:1> was built from <https://github.com/bank-evil/payments>, which is not an allowed source repository; allowed: <https://github.com/bank/*>"}
}

test_provenance_plain_http_source_does_not_match_https if {
	count(msgs(["r.io/http:1"], {"allowedSourceRepos": ["https://github.com/bank/payments"]})) == 1
}

test_provenance_exact_repo if {
	msgs(["r.io/good:1"], {"allowedSourceRepos": ["https://github.com/bank/payments.git"]}) == set()
}

test_provenance_unapproved_builder if {
	msgs(["r.io/selfbuilt:1"], gh) == {"container <c0> image <r.io/selfbuilt:1> was built by <https://github.com/bank/payments/.github/workflows/build.yml@refs/heads/main>, which is not an allowed builder; allowed: <https://github.com/slsa-framework/slsa-github-generator/.github/workflows/generator_container_slsa3.yml@refs/tags/v*>"}
}

test_provenance_missing if {
	msgs(["r.io/no-prov:1"], {"requireProvenance": true}) == {"container <c0> image <r.io/no-prov:1> has no verified SLSA provenance; found verified attestations <https://spdx.dev/Document>"}
	msgs(["r.io/no-prov-rejected:1"], gh) == {"container <c0> image <r.io/no-prov-rejected:1> has no verified SLSA provenance; found no verified attestation (rejected: <statement subject sha256:ffff does not match the image>)"}
}

test_provenance_not_required_by_default if {
	msgs(["r.io/no-prov:1"], {}) == set()
}

test_provenance_marked_unverified_does_not_count if {
	msgs(["r.io/prov-flagged:1"], {"requireProvenance": true}) == {"container <c0> image <r.io/prov-flagged:1> has no verified SLSA provenance; found verified attestations <https://slsa.dev/provenance/v1, https://spdx.dev/Document>"}
}

# Default: some verified provenance statement must match.
test_provenance_some_statement_matches if {
	msgs(["r.io/two-prov:1", "r.io/with-fork:1"], gh) == set()
	msgs(["r.io/two-prov:1"], {"allowedBuilders": ["https://tekton.bank.internal/**"]}) == set()
}

test_provenance_no_statement_matches if {
	msgs(["r.io/only-fork:1"], {"allowedSourceRepos": ["https://github.com/bank/*"]}) == {"container <c0> image <r.io/only-fork:1> was built from <https://github.com/evil/other, https://github.com/evil/payments>, none of which is an allowed source repository; allowed: <https://github.com/bank/*>"}
	msgs(["r.io/only-fork:1"], {"allowedBuilders": [builder]}) == {sprintf("container <c0> image <r.io/only-fork:1> was built by <%s>, which is not an allowed builder; allowed: <%s>", [prov_fork.builderId, builder])}
}

# With both lists, one statement must name an allowed source and an allowed builder.
test_provenance_source_and_builder_from_one_statement if {
	msgs(["r.io/split:1"], gh) == {concat("", [
		"container <c0> image <r.io/split:1> has no verified SLSA provenance with both an allowed source repository and an allowed builder; found ",
		"<", builder, " from https://github.com/evil/payments, https://slsa.dev/provenance/v1, authority ci-github-actions>, ",
		"<https://github.com/evil/builder from git+https://github.com/bank/payments@refs/heads/main, https://slsa.dev/provenance/v1, authority ci-github-actions>",
	])}
}

# strictProvenance: every verified provenance statement must match.
test_strict_provenance if {
	strict := object.union(gh, {"strictProvenance": true})
	msgs(["r.io/good:1"], strict) == set()
	msgs(["r.io/with-fork:1"], strict) == {concat("", [
		"container <c0> image <r.io/with-fork:1> has verified SLSA provenance ",
		"<https://github.com/evil/payments/.github/workflows/build.yml@refs/heads/main from https://github.com/evil/payments, https://slsa.dev/provenance/v1, authority ci-github-actions> ",
		"that is not allowed (strictProvenance: every statement must match): ",
		"source <https://github.com/evil/payments> is not an allowed source repository (allowed: <https://github.com/bank/*>); ",
		"builder <https://github.com/evil/payments/.github/workflows/build.yml@refs/heads/main> is not an allowed builder (allowed: <", gh.allowedBuilders[0], ">)",
	])}
	count(msgs(["r.io/two-prov:1"], strict)) == 1
	msgs(["r.io/forked:1"], strict) == {concat("", [
		"container <c0> image <r.io/forked:1> has verified SLSA provenance ",
		"<", builder, " from git+https://github.com/evil/payments@refs/heads/main, https://slsa.dev/provenance/v1, authority ci-github-actions> ",
		"that is not allowed (strictProvenance: every statement must match): ",
		"source <git+https://github.com/evil/payments@refs/heads/main> is not an allowed source repository (allowed: <https://github.com/bank/*>)",
	])}
	msgs(["r.io/two-prov:1"], {"allowedSourceRepos": ["https://github.com/bank/*"], "strictProvenance": true}) == set()
	msgs(["r.io/no-prov:1"], strict) == {"container <c0> image <r.io/no-prov:1> has no verified SLSA provenance; found verified attestations <https://spdx.dev/Document>"}
}

test_strict_provenance_needs_a_list if {
	msgs(["r.io/good:1"], {"strictProvenance": true}) == {"constraint is misconfigured: strictProvenance is true but neither allowedSourceRepos nor allowedBuilders is set; set the sources or builders every provenance statement must name; every image is denied until it is fixed"}
}

test_normalize_source if {
	k8simagesignature.normalize_source("git+https://GitHub.com/Bank/App.git@refs/heads/main") == "github.com/bank/app"
	k8simagesignature.normalize_source("https://github.com/bank/app/") == "github.com/bank/app"
	k8simagesignature.normalize_source("ssh://git@github.com/bank/app") == "ssh://git"
}

# ---------------------------------------------------------------------------------------
# Predicate types.

test_required_predicate_types if {
	msgs(["r.io/good:1"], {"requiredPredicateTypes": ["https://slsa.dev/provenance/v1", "https://spdx.dev/Document"]}) == set()
	msgs(["r.io/good:1"], {"requiredPredicateTypes": ["https://cosign.sigstore.dev/attestation/vuln/v1"]}) == {"container <c0> image <r.io/good:1> has no verified attestation of predicate type <https://cosign.sigstore.dev/attestation/vuln/v1>; found verified attestations <https://slsa.dev/provenance/v1, https://spdx.dev/Document>"}
}

test_attestation_marked_unverified_does_not_count if {
	msgs(["r.io/unverified-att:1"], {"requiredPredicateTypes": ["https://slsa.dev/provenance/v1"]}) == {"container <c0> image <r.io/unverified-att:1> has no verified attestation of predicate type <https://slsa.dev/provenance/v1>; found verified attestations <https://spdx.dev/Document>"}
}

# ---------------------------------------------------------------------------------------
# Platforms.

multi := {"requiredPlatforms": ["linux/amd64", "linux/arm64"]}

test_required_platforms_present if {
	msgs(["r.io/good:1"], multi) == set()
	msgs(["r.io/good:1"], {"requiredPlatforms": ["linux/arm64/v8", "Linux/AMD64"]}) == set()
}

test_required_platform_missing if {
	msgs(["r.io/amd64:1"], multi) == {"container <c0> image <r.io/amd64:1> does not provide platform <linux/arm64>; found <linux/amd64>"}
}

test_required_platform_variant if {
	msgs(["r.io/armv7:1"], {"requiredPlatforms": ["linux/arm/v6"]}) == {"container <c0> image <r.io/armv7:1> does not provide platform <linux/arm/v6>; found <linux/arm/v7>"}
	msgs(["r.io/armv7:1"], {"requiredPlatforms": ["linux/arm"]}) == set()
}

test_truncated_platform_list_proves_only_listed_platforms if {
	msgs(["r.io/truncated:1"], {"requiredPlatforms": ["linux/amd64"]}) == set()
	msgs(["r.io/truncated:1"], {"requiredPlatforms": ["linux/arm64"]}) == {"container <c0> image <r.io/truncated:1> does not provide platform <linux/arm64>; found only the first 1 of its 20000 platforms, <linux/amd64>: the provider's platform list is truncated, so the platform cannot be proven; raise the provider's lookup.maxPlatforms"}
}

test_single_platform_image_has_no_platform_list if {
	msgs(["r.io/single:1"], multi) == {
		"container <c0> image <r.io/single:1> does not provide platform <linux/amd64>; found no platform list (a single-platform image, not a multi-arch index)",
		"container <c0> image <r.io/single:1> does not provide platform <linux/arm64>; found no platform list (a single-platform image, not a multi-arch index)",
	}
}

# ---------------------------------------------------------------------------------------
# Tag drift and digests.

test_tag_still_points_at_digest if {
	msgs([concat("", ["r.io/pinned:1@", d_a])], {"denyTagDrift": true}) == set()
}

test_tag_drift if {
	msgs([concat("", ["r.io/drift:1@", d_a])], {"denyTagDrift": true}) == {sprintf("container <c0> image <r.io/drift:1@%s> pins <%s> but tag <1> now points at <%s>; update the reference", [d_a, d_a, d_b])}
}

test_tag_drift_allowed_by_default if {
	msgs([concat("", ["r.io/drift:1@", d_a])], {}) == set()
}

test_tag_gone if {
	msgs([concat("", ["r.io/gone:1@", d_a])], {"denyTagDrift": true}) == {sprintf("container <c0> image <r.io/gone:1@%s> pins <%s> but tag <1> could not be resolved (not found: tag gone:1 does not exist); denyTagDrift needs the tag to still point at the digest", [d_a, d_a])}
}

test_tag_drift_ignores_digest_only if {
	msgs([concat("", ["r.io/digest-only@", d_a])], {"denyTagDrift": true}) == set()
}

test_verified_digest_must_match_pinned_digest if {
	msgs([concat("", ["r.io/mismatch@", d_a])], {}) == {sprintf("container <c0> image <r.io/mismatch@%s> pins <%s> but the provider verified <%s>", [d_a, d_a, d_b])}
}

# ---------------------------------------------------------------------------------------
# Lookup errors and failOpen.

test_unavailable_denies if {
	msgs(["r.io/down:1"], kms) == {"container <c0> image <r.io/down:1> could not be verified: provider <imagetrust-verify-signatures> error: unavailable: registry r.io returned 503; lookup errors deny (failOpen is false)"}
	msgs(["r.io/slow:1"], kms) == {"container <c0> image <r.io/slow:1> could not be verified: provider <imagetrust-verify-signatures> error: timed out: verification did not finish within 2.5s; lookup errors deny (failOpen is false)"}
}

test_fail_open_admits_availability_errors if {
	msgs(["r.io/down:1", "r.io/slow:1", "r.io/missing:1"], {"authorities": ["bank-kms"], "failOpen": true}) == set()
}

test_definite_errors_deny_even_with_fail_open if {
	params := {"authorities": ["bank-kms"], "failOpen": true}
	msgs(["r.io/notfound:1", "r.io/denied:1", "r.io/odd:1"], params) == {
		"container <c0> image <r.io/notfound:1> was not verified: provider <imagetrust-verify-signatures> error: not found: manifest unknown",
		"container <c1> image <r.io/denied:1> was not verified: provider <imagetrust-verify-signatures> error: denied: no signature verified for sha256:aaaa",
		"container <c2> image <r.io/odd:1> was not verified: provider <imagetrust-verify-signatures> error: something unexpected",
	}
}

test_missing_answer_denies if {
	msgs(["r.io/missing:1", "r.io/good:1"], kms) == {"container <c0> image <r.io/missing:1> could not be verified: provider <imagetrust-verify-signatures> returned no answer for this image; lookup errors deny (failOpen is false)"}
}

test_system_error_denies_every_image if {
	m := {v.msg | some v in k8simagesignature.violation} with input as object.union(pod(["r.io/good:1", "r.io/good:2"]), {"parameters": kms})
		with external_data as mock_system_error
	m == {
		"container <c0> image <r.io/good:1> could not be verified: provider <imagetrust-verify-signatures> system error: failed to send external data request: connection refused; lookup errors deny (failOpen is false)",
		"container <c1> image <r.io/good:2> could not be verified: provider <imagetrust-verify-signatures> system error: failed to send external data request: connection refused; lookup errors deny (failOpen is false)",
	}
}

test_system_error_with_fail_open if {
	m := {v.msg | some v in k8simagesignature.violation} with input as object.union(pod(["r.io/good:1"]), {"parameters": {"failOpen": true}})
		with external_data as mock_system_error
	m == set()
}

test_non_200_status_denies if {
	m := {v.msg | some v in k8simagesignature.violation} with input as object.union(pod(["r.io/good:1"]), {"parameters": kms})
		with external_data as mock_status
	m == {"container <c0> image <r.io/good:1> could not be verified: provider <imagetrust-verify-signatures> answered with HTTP status <503>; lookup errors deny (failOpen is false)"}
}

test_status_zero_means_cached if {
	m := {v.msg | some v in k8simagesignature.violation} with input as object.union(pod(["r.io/good:1"]), {"parameters": kms})
		with external_data as mock_cached
	m == set()
}

test_non_object_value_denies if {
	msgs(["r.io/garbage:1"], {"failOpen": true}) == {"container <c0> image <r.io/garbage:1> was not verified: provider <imagetrust-verify-signatures> answered <not-an-object>, not an object"}
}

# ---------------------------------------------------------------------------------------
# Stale answers.

test_stale_answer_is_evaluated_like_a_fresh_one if {
	msgs(["r.io/stale:1"], kms) == set()
}

test_deny_stale if {
	msgs(["r.io/stale:1"], {"authorities": ["bank-kms"], "denyStale": true}) == {"container <c0> image <r.io/stale:1> has only a stale verification (served from the provider's cache during a registry outage) and denyStale is true"}
	msgs(["r.io/good:1"], {"authorities": ["bank-kms"], "denyStale": true}) == set()
}

# ---------------------------------------------------------------------------------------
# References, exemptions, batching, workloads.

test_invalid_reference_denied_and_not_sent if {
	msgs(["r.io/UPPER:1", "r.io/good:1"], kms) == {"container <c0> image <r.io/UPPER:1> is not a valid image reference: repository name (UPPER) must be lowercase; write [registry/]repository[:tag][@digest] as the container runtime parses it"}
	externaldata.keys(review.checked) == ["r.io/good:1"] with input as object.union(pod(["r.io/UPPER:1", "r.io/good:1"]), {"parameters": kms})
}

test_exempt_images_not_sent if {
	params := {"authorities": ["bank-kms"], "exemptImages": [{"image": "r.io/tools/**", "reason": "debug tools"}]}
	msgs(["r.io/tools/x/debug:1", "r.io/good:1"], params) == set()
	externaldata.keys(review.checked) == ["r.io/good:1"] with input as object.union(pod(["r.io/tools/x/debug:1", "r.io/good:1"]), {"parameters": params})
}

# 2026-06-15T12:00:00Z
now := 1781524800000000000

test_expired_exemption_is_sent_and_named if {
	params := {"authorities": ["bank-kms"], "exemptImages": [
		{"image": "r.io/unsigned:*", "reason": "signing pipeline migration", "expires": "2026-06-14"},
		{"image": "r.io/down:*", "reason": "outage", "expires": "2026-06-14T00:00:00Z"},
	]}
	m := msgs(["r.io/unsigned:1", "r.io/down:1"], params) with time.now_ns as now
	m == {
		"container <c0> image <r.io/unsigned:1> is not signed by required authority <bank-kms>; found no verified signature (rejected: <no matching signatures: invalid signature when validating ASN.1 encoded signature>); exemption for <r.io/unsigned:*> expired on <2026-06-14> (<signing pipeline migration>)",
		"container <c1> image <r.io/down:1> could not be verified: provider <imagetrust-verify-signatures> error: unavailable: registry r.io returned 503; lookup errors deny (failOpen is false); exemption for <r.io/down:*> expired on <2026-06-14T00:00:00Z> (<outage>)",
	}
	externaldata.keys(review.checked) == ["r.io/down:1", "r.io/unsigned:1"] with input as object.union(pod(["r.io/unsigned:1", "r.io/down:1"]), {"parameters": params})
		with time.now_ns as now
	live := {"authorities": ["bank-kms"], "exemptImages": [{"image": "r.io/unsigned:*", "reason": "signing pipeline migration", "expires": "2026-06-16"}]}
	msgs(["r.io/unsigned:1"], live) == set() with time.now_ns as now
}

test_one_batched_call_with_deduplicated_keys if {
	m := {v.msg | some v in k8simagesignature.violation} with input as object.union(pod(["r.io/unsigned:1", "r.io/good:1", "r.io/unsigned:1"]), {"parameters": kms})
		with external_data as mock_strict
	m == {
		"container <c0> image <r.io/unsigned:1> is not signed by required authority <bank-kms>; found no verified signature (rejected: <no matching signatures: invalid signature when validating ASN.1 encoded signature>)",
		"container <c2> image <r.io/unsigned:1> is not signed by required authority <bank-kms>; found no verified signature (rejected: <no matching signatures: invalid signature when validating ASN.1 encoded signature>)",
	}
}

test_no_call_without_images if {
	m := {v.msg | some v in k8simagesignature.violation} with input as object.union(pod([]), {"parameters": kms})
		with external_data as mock_system_error
	m == set()
}

test_workload_containers_of_every_kind if {
	inp := {"parameters": kms, "review": {"kind": {"kind": "CronJob"}, "object": {"kind": "CronJob", "spec": {"jobTemplate": {"spec": {"template": {"spec": {
		"initContainers": [{"name": "init", "image": "r.io/unsigned:1"}],
		"containers": [{"name": "app", "image": "r.io/good:1"}],
		"ephemeralContainers": [{"name": "debug", "image": "r.io/tekton:1"}],
	}}}}}}}}
	m := {v.msg | some v in k8simagesignature.violation} with input as inp with external_data as mock
	m == {
		"container <init> image <r.io/unsigned:1> is not signed by required authority <bank-kms>; found no verified signature (rejected: <no matching signatures: invalid signature when validating ASN.1 encoded signature>)",
		"container <debug> image <r.io/tekton:1> is not signed by required authority <bank-kms>; found verified signatures from <ci-tekton>",
	}
}

# ---------------------------------------------------------------------------------------
# Misconfigured constraints deny loudly.

test_misconfigured_threshold if {
	msgs(["r.io/good:1"], {"anyOf": ["a", "b"], "threshold": 3}) == {
		"constraint is misconfigured: threshold <3> exceeds the 2 authorities in anyOf; every image is denied until it is fixed",
		"container <c0> image <r.io/good:1> is signed by 0 of the authorities <a, b>, 3 required; found verified signatures from <bank-kms, ci-github-actions>",
	}
	msgs(["r.io/good:1"], {"threshold": 1}) == {"constraint is misconfigured: threshold is set but anyOf is empty; set anyOf to the authorities to count; every image is denied until it is fixed"}
	"constraint is misconfigured: threshold must be an integer of at least 1, got <0>; every image is denied until it is fixed" in msgs(["r.io/good:1"], {"anyOf": ["a"], "threshold": 0})
	"constraint is misconfigured: threshold must be an integer of at least 1, got <1.5>; every image is denied until it is fixed" in msgs(["r.io/good:1"], {"anyOf": ["a", "b"], "threshold": 1.5})
}

test_misconfigured_types if {
	msgs(["r.io/good:1"], {"authorities": "bank-kms"}) == {"constraint is misconfigured: authorities must be a list of strings, got <bank-kms>; every image is denied until it is fixed"}
	msgs(["r.io/good:1"], {"authorities": ["bank-kms", ""]}) == {
		"constraint is misconfigured: authorities[1] must be a non-empty string, got <>; every image is denied until it is fixed",
		"container <c0> image <r.io/good:1> is not signed by required authority <>; found verified signatures from <bank-kms, ci-github-actions>",
	}
	msgs(["r.io/good:1"], {"failOpen": "yes"}) == {"constraint is misconfigured: failOpen must be a boolean, got <yes>; every image is denied until it is fixed"}
}

test_misconfigured_platforms if {
	msgs(["r.io/good:1"], {"requiredPlatforms": ["amd64", "linux//v8"]}) == {
		"constraint is misconfigured: requiredPlatforms[0] <amd64> must be os/architecture or os/architecture/variant; every image is denied until it is fixed",
		"constraint is misconfigured: requiredPlatforms[1] <linux//v8> must be os/architecture or os/architecture/variant; every image is denied until it is fixed",
		"container <c0> image <r.io/good:1> does not provide platform <amd64>; found <linux/amd64, linux/arm64/v8>",
		"container <c0> image <r.io/good:1> does not provide platform <linux//v8>; found <linux/amd64, linux/arm64/v8>",
	}
}

test_misconfigured_exemption if {
	msgs(["r.io/good:1"], {"exemptImages": [{"image": "r.io/**"}]}) == {"constraint is misconfigured: exemptImages[0] must have a non-empty image glob and a non-empty reason, got <{\"image\": \"r.io/**\"}>; every image is denied until it is fixed"}
}

mock_undefined(req) := 1 if req.keys == ["never"]

test_no_response_denies if {
	m := {v.msg | some v in k8simagesignature.violation} with input as object.union(pod(["r.io/good:1"]), {"parameters": kms})
		with external_data as mock_undefined
	m == {"container <c0> image <r.io/good:1> could not be verified: provider <imagetrust-verify-signatures> gave no response; lookup errors deny (failOpen is false)"}
}

mock_bare(req) := {
	"responses": [[k, {"digest": d_a, "signed": false}] | some k in req.keys],
	"errors": [],
	"status_code": 200,
	"system_error": "",
}

test_value_without_summaries if {
	m := {v.msg | some v in k8simagesignature.violation} with input as object.union(pod(["r.io/bare:1"]), {"parameters": {"requireSBOM": true, "requireProvenance": true}})
		with external_data as mock_bare
	m == {
		"container <c0> image <r.io/bare:1> has no verified signature from a trusted authority; found no verified signature",
		"container <c0> image <r.io/bare:1> has no verified SBOM; found no SBOM",
		"container <c0> image <r.io/bare:1> has no verified SLSA provenance; found no verified attestation",
	}
}

# ---------------------------------------------------------------------------------------
# Which provider: signatures only unless a parameter asks about attestations.

# mock_by_provider answers like the provider named in the request: imagetrust-verify-signatures
# reads signatures only, so its answers carry reads "signatures" and no attestation facts.
mock_by_provider(req) := mock(req) if {
	req.provider == "imagetrust-verify"
} else := object.union(mock(req), {"responses": [[k, object.union(v, {
	"reads": "signatures", "attestations": [],
	"sbom": {"formats": []}, "provenance": [],
})] |
	some [k, v] in mock(req).responses
]}) if {
	req.provider == "imagetrust-verify-signatures"
}

provider_for(params) := p if {
	p := k8simagesignature.provider with input as object.union(pod(["r.io/good:1"]), {"parameters": params})
}

test_signature_constraints_ask_the_signatures_provider if {
	every params in [
		{}, kms, {"anyOf": ["ci-tekton"], "threshold": 1}, {"requiredPlatforms": ["linux/amd64"]},
		{"denyTagDrift": true, "failOpen": true, "denyStale": true},
		{"requireSBOM": false, "requireProvenance": false, "strictProvenance": false, "sbomFormats": [], "requiredPredicateTypes": []},
		{"allowedSourceRepos": null},
	] {
		provider_for(params) == "imagetrust-verify-signatures"
	}
}

test_attestation_constraints_ask_the_full_provider if {
	every params in [
		{"requireSBOM": true}, {"sbomFormats": ["spdx"]}, {"requireProvenance": true},
		{"allowedSourceRepos": ["github.com/bank/*"]}, {"allowedBuilders": [builder]},
		{"strictProvenance": true, "allowedBuilders": [builder]},
		{"requiredPredicateTypes": ["https://slsa.dev/provenance/v1"]},
		{"requireSBOM": "yes"}, # malformed: still the full provider (and config_problems denies it)
	] {
		provider_for(params) == "imagetrust-verify"
	}
}

test_each_constraint_admits_through_its_provider if {
	m := {v.msg | some v in k8simagesignature.violation} with input as object.union(pod(["r.io/good:1"]), {"parameters": kms})
		with external_data as mock_by_provider
	m == set()
	n := {v.msg | some v in k8simagesignature.violation} with input as object.union(pod(["r.io/good:1"]), {"parameters": {"requireSBOM": true, "allowedBuilders": [builder], "requiredPredicateTypes": ["https://slsa.dev/provenance/v1"]}})
		with external_data as mock_by_provider
	n == set()
}

# Fail safe: an answer that read signatures only never satisfies an attestation rule, even
# when it (wrongly) lists attestations, SBOMs and provenance.
sigs_only_claiming_all := object.union(good, {"reads": "signatures"})

sigs_only_msgs(params) := m if {
	m := {v.msg | some v in k8simagesignature.violation} with input as object.union(pod(["r.io/good:1"]), {"parameters": params})
		with external_data as mock_sigs_only_claiming_all
}

mock_sigs_only_claiming_all(_) := {"responses": [["r.io/good:1", sigs_only_claiming_all]], "errors": [], "status_code": 200, "system_error": ""}

test_signatures_only_answer_never_satisfies_attestation_rules if {
	reads_msg := "container <c0> image <r.io/good:1> was verified by provider <imagetrust-verify> reading <signatures> only, which proves no attestation, SBOM or provenance; the constraint's attestation parameters need imagetrust-verify"
	sigs_only_msgs({"requireSBOM": true}) == {
		reads_msg,
		"container <c0> image <r.io/good:1> has no verified SBOM; found no SBOM",
	}
	sigs_only_msgs({"requireProvenance": true}) == {
		reads_msg,
		"container <c0> image <r.io/good:1> has no verified SLSA provenance; found no verified attestation",
	}
	sigs_only_msgs({"requiredPredicateTypes": ["https://spdx.dev/Document"]}) == {
		reads_msg,
		"container <c0> image <r.io/good:1> has no verified attestation of predicate type <https://spdx.dev/Document>; found no verified attestation",
	}
	every params in [{"sbomFormats": ["spdx"]}, {"allowedBuilders": [builder]}, {"allowedSourceRepos": ["github.com/bank/payments"]}] {
		reads_msg in sigs_only_msgs(params)
	}

	# Without attestation parameters, the same answer's signatures count.
	sigs_only_msgs(kms) == set()
}

test_reads_attestations if {
	k8simagesignature.reads_attestations(good)
	not k8simagesignature.reads_attestations(sigs_only_claiming_all)
	not k8simagesignature.reads_attestations(object.union(good, {"reads": "something-new"}))
	count(k8simagesignature.provenances(sigs_only_claiming_all)) == 0
	count(k8simagesignature.verified_sbom_formats(sigs_only_claiming_all)) == 0
	count(k8simagesignature.verified_predicate_types(sigs_only_claiming_all)) == 0
}
