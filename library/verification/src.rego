# METADATA
# title: Image signature and attestations
# description: >-
#   Images must be signed by the required authorities (all of `authorities`, and/or
#   `threshold` of `anyOf`), and may be required to carry a verified SBOM, SLSA
#   provenance from allowed repositories and builders, attestations of given
#   predicate types, given platforms, and a tag that still points at the pinned
#   digest. The facts come from one batched external_data call to the
#   imagetrust-verify provider, or to imagetrust-verify-signatures (which reads
#   signatures only) when no parameter asks about attestations; only what it
#   verified counts. Lookup errors deny unless failOpen; invalid references are
#   denied.
package k8simagesignature

import data.lib.imagetrust.exempt
import data.lib.imagetrust.externaldata
import data.lib.imagetrust.review

# provider is the Gatekeeper Provider object the template calls: imagetrust-verify, which
# reads signatures, attestations, SBOMs and provenance, when a parameter asks about
# attestations; otherwise imagetrust-verify-signatures, which reads signatures only (about half
# the registry requests and provider CPU per image).
provider := "imagetrust-verify" if {
	needs_attestations
} else := "imagetrust-verify-signatures"

_params := review.params

# attestation_params are the parameters only an answer that read attestations can satisfy.
attestation_params := [
	"requireSBOM", "sbomFormats", "requireProvenance", "allowedSourceRepos", "allowedBuilders",
	"strictProvenance", "requiredPredicateTypes",
]

# needs_attestations: some attestation parameter is set to anything but null, false or an
# empty list (a malformed value asks the full provider too; config_problems denies it).
needs_attestations if {
	some name in attestation_params
	not _param_unset(_params[name])
}

_param_unset(null)

_param_unset(false)

_param_unset([])

# reads_attestations: the answer read everything (an answer with "reads" set, e.g.
# "signatures" from imagetrust-verify-signatures, never proves an attestation, SBOM or
# provenance, whatever its fields say).
reads_attestations(v) if object.get(v, "reads", "") == ""

_fail_open := object.get(_params, "failOpen", false) == true

_deny_stale if _params.denyStale == true

_deny_tag_drift if _params.denyTagDrift == true

_strings(name) := [s | some s in _params[name]; is_string(s)] if {
	is_array(_params[name])
} else := []

_required_authorities := _strings("authorities")

_any_of := _strings("anyOf")

_threshold := t if {
	t := _params.threshold
	is_number(t)
} else := 1

_sbom_formats := [lower(f) | some f in _strings("sbomFormats")]

# Setting sbomFormats implies requireSBOM: a format cannot be checked without an SBOM.
_require_sbom if _params.requireSBOM == true

_require_sbom if count(_sbom_formats) > 0

_source_repos := _strings("allowedSourceRepos")

_builders := _strings("allowedBuilders")

# Setting allowedSourceRepos or allowedBuilders implies requireProvenance.
_require_provenance if _params.requireProvenance == true

_require_provenance if count(_source_repos) > 0

_require_provenance if count(_builders) > 0

# The one batched call for the images of the checked containers, classified per container
# (lib/externaldata.rego).
_lookup := externaldata.lookup(provider, review.checked)

# Invalid references and a misconfigured constraint.
violation contains {"msg": msg} if {
	some msg in review.violations(config_problems)
}

# The rules below check every container whose image parses and is not exempt.
violation contains {"msg": msg} if {
	some msg in review.messages(_container_violations)
}

# Lookup failures (denied unless failOpen), definite per-key errors and malformed answers.
_container_violations contains [c, msg] if {
	some [c, msg] in externaldata.violations(_lookup, _fail_open, "verified")
}

# ---------------------------------------------------------------------------------------
# Answers.

# _answers contains [container, parsed reference, value] for every answered image.
_answers contains [c, ref, v] if {
	some [c, ref, v] in _lookup.values
	not _stale_denied(v)
}

_stale_denied(v) if {
	_deny_stale
	v.stale == true
}

_container_violations contains [c, msg] if {
	some [c, _, v] in _lookup.values
	_stale_denied(v)
	msg := sprintf(
		"container <%s> image <%s> has only a stale verification (served from the provider's cache during a registry outage) and denyStale is true",
		[c.name, c.image],
	)
}

# The provider must have verified the digest the node will pull.
_container_violations contains [c, msg] if {
	some [c, ref, v] in _answers
	ref.digest != ""
	object.get(v, "digest", "") != ref.digest
	msg := sprintf(
		"container <%s> image <%s> pins <%s> but the provider verified <%v>",
		[c.name, c.image, ref.digest, object.get(v, "digest", "")],
	)
}

# verified_authorities is the set of authorities with a verified signature in value v.
verified_authorities(v) := {s.authority |
	some s in object.get(v, "signatures", [])
	is_object(s)
	s.verified == true
	is_string(s.authority)
	s.authority != ""
}

_container_violations contains [c, msg] if {
	some [c, _, v] in _answers
	some name in _required_authorities
	not name in verified_authorities(v)
	msg := sprintf(
		"container <%s> image <%s> is not signed by required authority <%s>; found %s",
		[c.name, c.image, name, _describe_signatures(v)],
	)
}

_container_violations contains [c, msg] if {
	count(_any_of) > 0
	some [c, _, v] in _answers
	matched := {a | some a in _any_of; a in verified_authorities(v)}
	count(matched) < _threshold
	msg := sprintf(
		"container <%s> image <%s> is signed by %d of the authorities <%s>, %d required; found %s",
		[c.name, c.image, count(matched), concat(", ", sort(_any_of)), _threshold, _describe_signatures(v)],
	)
}

# Without authorities or anyOf, any verified signature from a configured authority counts.
_container_violations contains [c, msg] if {
	count(_required_authorities) == 0
	count(_any_of) == 0
	some [c, _, v] in _answers
	count(verified_authorities(v)) == 0
	msg := sprintf(
		"container <%s> image <%s> has no verified signature from a trusted authority; found %s",
		[c.name, c.image, _describe_signatures(v)],
	)
}

_describe_signatures(v) := sprintf("verified signatures from <%s>", [concat(", ", sort(verified_authorities(v)))]) if {
	count(verified_authorities(v)) > 0
} else := sprintf("no verified signature (rejected: %s)", [concat("; ", _rejections(v, "signature"))]) if {
	count(_rejections(v, "signature")) > 0
} else := "no verified signature"

# _rejections lists why signatures (kind "signature" or "bundle") or attestations did not verify.
_rejections(v, "signature") := [sprintf("<%v>", [r.reason]) |
	some r in object.get(v, "rejected", [])
	is_object(r)
	r.kind in {"signature", "bundle"}
]

_rejections(v, "attestation") := [sprintf("<%v>", [r.reason]) |
	some r in object.get(v, "rejected", [])
	is_object(r)
	r.kind in {"attestation", "bundle"}
]

# An answer that did not read attestations cannot satisfy a constraint that asks about them.
_container_violations contains [c, msg] if {
	needs_attestations
	some [c, _, v] in _answers
	not reads_attestations(v)
	msg := sprintf(
		"container <%s> image <%s> was verified by provider <%s> reading <%v> only, which proves no attestation, SBOM or provenance; the constraint's attestation parameters need imagetrust-verify",
		[c.name, c.image, _lookup.provider, v.reads],
	)
}

# ---------------------------------------------------------------------------------------
# SBOM.

# The provider lists the format of every verified SBOM attestation in sbom.formats (sorted);
# unsigned SBOMs appear only under sbom.unverified and never count. An SBOM summary marked
# "verified": false never counts.
_sbom(v) := s if {
	s := v.sbom
	is_object(s)
} else := {}

# verified_sbom_formats is the set of formats of the verified SBOMs in v.
verified_sbom_formats(v) := {f |
	reads_attestations(v)
	object.get(_sbom(v), "verified", true) == true
	some f in object.get(_sbom(v), "formats", [])
	is_string(f)
	f != ""
}

_has_verified_sbom(v) if count(verified_sbom_formats(v)) > 0

_container_violations contains [c, msg] if {
	_require_sbom
	some [c, _, v] in _answers
	not _has_verified_sbom(v)
	msg := sprintf("container <%s> image <%s> has no verified SBOM; found %s", [c.name, c.image, _describe_unverified_sboms(v)])
}

_describe_unverified_sboms(v) := sprintf("only unverified SBOMs <%s> (an SBOM must be a signed attestation)", [concat(", ", fs)]) if {
	fs := [sprintf("%v", [object.get(u, "format", "?")]) | some u in object.get(_sbom(v), "unverified", []); is_object(u)]
	count(fs) > 0
} else := "no SBOM"

# sbomFormats: some verified SBOM has an allowed format.
_container_violations contains [c, msg] if {
	count(_sbom_formats) > 0
	some [c, _, v] in _answers
	_has_verified_sbom(v)
	count({lower(f) | some f in verified_sbom_formats(v)} & {f | some f in _sbom_formats}) == 0
	msg := sprintf(
		"container <%s> image <%s> has %s, allowed: <%s>",
		[c.name, c.image, _describe_sbom_formats(verified_sbom_formats(v)), concat(", ", _sbom_formats)],
	)
}

_describe_sbom_formats(fs) := sprintf("a verified SBOM in format <%s>", [f]) if {
	count(fs) == 1
	some f in fs
} else := sprintf("verified SBOMs in formats <%s>", [concat(", ", sort(fs))])

# ---------------------------------------------------------------------------------------
# SLSA provenance.

# The provider lists every verified SLSA provenance statement in provenance (one entry per
# statement and authority: builderId, sourceUri, buildType, predicateType, authority). An entry
# marked "verified": false never counts.
provenances(v) := [p |
	reads_attestations(v)
	is_array(v.provenance)
	some p in v.provenance
	is_object(p)
	object.get(p, "verified", true) == true
]

_has_provenance(v) if count(provenances(v)) > 0

_strict_provenance if _params.strictProvenance == true

_container_violations contains [c, msg] if {
	_require_provenance
	some [c, _, v] in _answers
	not _has_provenance(v)
	msg := sprintf("container <%s> image <%s> has no verified SLSA provenance; found %s", [c.name, c.image, _describe_attestations(v)])
}

# provenance_matches: the entry names an allowed source repository (when allowedSourceRepos is
# set) and an allowed builder (when allowedBuilders is set).
provenance_matches(p) if {
	_source_ok(p)
	_builder_ok(p)
}

_source_ok(_) if count(_source_repos) == 0

_source_ok(p) if _source_allowed(object.get(p, "sourceUri", ""))

_builder_ok(_) if count(_builders) == 0

_builder_ok(p) if _builder_allowed(object.get(p, "builderId", ""))

_has_matching_provenance(v) if {
	some p in provenances(v)
	provenance_matches(p)
}

# Default: some verified provenance must match. With strictProvenance every one must (below).
_container_violations contains [c, msg] if {
	not _strict_provenance
	count(_source_repos) > 0
	some [c, _, v] in _answers
	_has_provenance(v)
	not _some_source_allowed(v)
	sources := {object.get(p, "sourceUri", "") | some p in provenances(v)}
	msg := sprintf(
		"container <%s> image <%s> was built from %s an allowed source repository; allowed: <%s>",
		[c.name, c.image, _which_is_not(sources), concat(", ", _source_repos)],
	)
}

_container_violations contains [c, msg] if {
	not _strict_provenance
	count(_builders) > 0
	some [c, _, v] in _answers
	_has_provenance(v)
	not _some_builder_allowed(v)
	builders := {object.get(p, "builderId", "") | some p in provenances(v)}
	msg := sprintf(
		"container <%s> image <%s> was built by %s an allowed builder; allowed: <%s>",
		[c.name, c.image, _which_is_not(builders), concat(", ", _builders)],
	)
}

# Both lists set, each satisfied by some statement, but no single statement satisfies both.
_container_violations contains [c, msg] if {
	not _strict_provenance
	count(_source_repos) > 0
	count(_builders) > 0
	some [c, _, v] in _answers
	_some_source_allowed(v)
	_some_builder_allowed(v)
	not _has_matching_provenance(v)
	msg := sprintf(
		"container <%s> image <%s> has no verified SLSA provenance with both an allowed source repository and an allowed builder; found %s",
		[c.name, c.image, concat(", ", [_describe_provenance(p) | some p in provenances(v)])],
	)
}

_some_source_allowed(v) if {
	some p in provenances(v)
	_source_allowed(object.get(p, "sourceUri", ""))
}

_some_builder_allowed(v) if {
	some p in provenances(v)
	_builder_allowed(object.get(p, "builderId", ""))
}

_which_is_not(values) := sprintf("<%v>, which is not", [x]) if {
	count(values) == 1
	some x in values
} else := sprintf("<%s>, none of which is", [concat(", ", sort([sprintf("%v", [x]) | some x in values]))])

# strictProvenance: every verified provenance statement must match.
_container_violations contains [c, msg] if {
	_strict_provenance
	some [c, _, v] in _answers
	some p in provenances(v)
	not provenance_matches(p)
	msg := sprintf(
		"container <%s> image <%s> has verified SLSA provenance %s that is not allowed (strictProvenance: every statement must match): %s",
		[c.name, c.image, _describe_provenance(p), concat("; ", _provenance_problems(p))],
	)
}

_provenance_problems(p) := [x |
	some x in [
		_source_problem(p),
		_builder_problem(p),
	]
	x != ""
]

_source_problem(p) := sprintf("source <%v> is not an allowed source repository (allowed: <%s>)", [object.get(p, "sourceUri", ""), concat(", ", _source_repos)]) if {
	not _source_ok(p)
} else := ""

_builder_problem(p) := sprintf("builder <%v> is not an allowed builder (allowed: <%s>)", [object.get(p, "builderId", ""), concat(", ", _builders)]) if {
	not _builder_ok(p)
} else := ""

_describe_provenance(p) := sprintf("<%v from %v, %v, authority %v>", [
	object.get(p, "builderId", ""), object.get(p, "sourceUri", ""),
	object.get(p, "predicateType", ""), object.get(p, "authority", ""),
])

# normalize_source turns a source URI into host/path for comparison: lower case, without
# "git+", "https://", the "@ref", "?query" or "#fragment" suffix, ".git" and trailing "/".
# Other schemes are kept, so http:// or ssh:// sources never match an https repository.
normalize_source(s) := trim_suffix(trim_suffix(trim_right(cut, "/"), ".git"), "/") if {
	no_scheme := trim_prefix(trim_prefix(lower(s), "git+"), "https://")
	cut := split(split(split(no_scheme, "@")[0], "#")[0], "?")[0]
}

_source_allowed(source) if {
	is_string(source)
	source != ""
	some entry in _source_repos
	regex.match(exempt.glob_to_regex(normalize_source(entry)), normalize_source(source))
}

_builder_allowed(builder) if {
	is_string(builder)
	builder != ""
	some entry in _builders
	regex.match(exempt.glob_to_regex(entry), builder)
}

# ---------------------------------------------------------------------------------------
# Attestations by predicate type.

# verified_predicate_types is the set of predicate types of verified attestations in v.
verified_predicate_types(v) := {a.predicateType |
	reads_attestations(v)
	some a in object.get(v, "attestations", [])
	is_object(a)
	object.get(a, "verified", true) == true
	is_string(a.authority)
	a.authority != ""
	is_string(a.predicateType)
}

_container_violations contains [c, msg] if {
	some [c, _, v] in _answers
	some pt in _strings("requiredPredicateTypes")
	not pt in verified_predicate_types(v)
	msg := sprintf(
		"container <%s> image <%s> has no verified attestation of predicate type <%s>; found %s",
		[c.name, c.image, pt, _describe_attestations(v)],
	)
}

_describe_attestations(v) := sprintf("verified attestations <%s>", [concat(", ", sort(verified_predicate_types(v)))]) if {
	count(verified_predicate_types(v)) > 0
} else := sprintf("no verified attestation (rejected: %s)", [concat("; ", _rejections(v, "attestation"))]) if {
	count(_rejections(v, "attestation")) > 0
} else := "no verified attestation"

# ---------------------------------------------------------------------------------------
# Platforms.

# platform_strings is the set of "os/architecture[/variant]" of the platforms in v.
platform_strings(v) := {_platform_string(p) |
	some p in object.get(v, "platforms", [])
	is_object(p)
}

_platform_string(p) := concat("/", [lower(p.os), lower(p.architecture), lower(p.variant)]) if {
	is_string(p.variant)
	p.variant != ""
} else := concat("/", [lower(object.get(p, "os", "")), lower(object.get(p, "architecture", ""))])

# has_platform: required "os/arch" matches any variant; "os/arch/variant" only that variant.
has_platform(v, required) if {
	parts := split(lower(required), "/")
	count(parts) == 2
	some p in object.get(v, "platforms", [])
	lower(object.get(p, "os", "")) == parts[0]
	lower(object.get(p, "architecture", "")) == parts[1]
}

has_platform(v, required) if {
	parts := split(lower(required), "/")
	count(parts) == 3
	some p in object.get(v, "platforms", [])
	lower(object.get(p, "os", "")) == parts[0]
	lower(object.get(p, "architecture", "")) == parts[1]
	lower(object.get(p, "variant", "")) == parts[2]
}

_container_violations contains [c, msg] if {
	some [c, _, v] in _answers
	some required in _strings("requiredPlatforms")
	not has_platform(v, required)
	msg := sprintf(
		"container <%s> image <%s> does not provide platform <%s>; found %s",
		[c.name, c.image, required, _describe_platforms(v)],
	)
}

# A truncated list (the provider lists at most lookup.maxPlatforms platforms) proves only the
# platforms it lists: one it does not list is denied, saying so.
_describe_platforms(v) := sprintf(
	"only the first %d of its %d platforms, <%s>: the provider's platform list is truncated, so the platform cannot be proven; raise the provider's lookup.maxPlatforms",
	[count(v.platforms), v.platformsTotal, concat(", ", sort(platform_strings(v)))],
) if {
	object.get(v, "platformsTruncated", false) == true
} else := sprintf("<%s>", [concat(", ", sort(platform_strings(v)))]) if {
	count(platform_strings(v)) > 0
} else := "no platform list (a single-platform image, not a multi-arch index)"

# ---------------------------------------------------------------------------------------
# Tag drift: for name:tag@digest the node pulls the digest; the tag must still point at it.

_container_violations contains [c, msg] if {
	_deny_tag_drift
	some [c, ref, v] in _answers
	ref.tag != ""
	ref.digest != ""
	tag_digest := object.get(v, "tagDigest", "")
	tag_digest != ""
	tag_digest != ref.digest
	msg := sprintf(
		"container <%s> image <%s> pins <%s> but tag <%s> now points at <%s>; update the reference",
		[c.name, c.image, ref.digest, ref.tag, tag_digest],
	)
}

_container_violations contains [c, msg] if {
	_deny_tag_drift
	some [c, ref, v] in _answers
	ref.tag != ""
	ref.digest != ""
	object.get(v, "tagDigest", "") == ""
	msg := sprintf(
		"container <%s> image <%s> pins <%s> but tag <%s> could not be resolved (%v); denyTagDrift needs the tag to still point at the digest",
		[c.name, c.image, ref.digest, ref.tag, object.get(v, "tagError", "no tagDigest in the answer")],
	)
}

# ---------------------------------------------------------------------------------------
# What is wrong with the parameters: every object with containers is denied, naming it.

_list_params := [
	"authorities", "anyOf", "sbomFormats", "allowedSourceRepos", "allowedBuilders",
	"requiredPredicateTypes", "requiredPlatforms",
]

_bool_params := ["requireSBOM", "requireProvenance", "strictProvenance", "denyTagDrift", "failOpen", "denyStale"]

config_problems contains sprintf("%s must be a list of strings, got <%v>", [name, _params[name]]) if {
	some name in _list_params
	not is_array(_params[name])
	_params[name] != null
}

config_problems contains sprintf("%s[%d] must be a non-empty string, got <%v>", [name, i, s]) if {
	some name in _list_params
	some i, s in _params[name]
	not _non_empty_string(s)
}

config_problems contains sprintf("%s must be a boolean, got <%v>", [name, _params[name]]) if {
	some name in _bool_params
	not is_boolean(_params[name])
	_params[name] != null
}

config_problems contains sprintf("threshold must be an integer of at least 1, got <%v>", [t]) if {
	t := _params.threshold
	not _positive_integer(t)
}

config_problems contains "strictProvenance is true but neither allowedSourceRepos nor allowedBuilders is set; set the sources or builders every provenance statement must name" if {
	_strict_provenance
	count(_source_repos) == 0
	count(_builders) == 0
}

config_problems contains "threshold is set but anyOf is empty; set anyOf to the authorities to count" if {
	_params.threshold
	count(_any_of) == 0
}

config_problems contains sprintf("threshold <%v> exceeds the %d authorities in anyOf", [_threshold, count(_any_of)]) if {
	count(_any_of) > 0
	_threshold > count(_any_of)
}

config_problems contains sprintf("requiredPlatforms[%d] <%s> must be os/architecture or os/architecture/variant", [i, s]) if {
	some i, s in _strings("requiredPlatforms")
	not count(split(s, "/")) in {2, 3}
}

config_problems contains sprintf("requiredPlatforms[%d] <%s> must be os/architecture or os/architecture/variant", [i, s]) if {
	some i, s in _strings("requiredPlatforms")
	some part in split(s, "/")
	part == ""
}

_non_empty_string(s) if {
	is_string(s)
	s != ""
}

_positive_integer(t) if {
	is_number(t)
	t >= 1
	round(t) == t
}
