# METADATA
# title: Trusted image source
# description: >-
#   Images must come from allowed registries (host[:port][/path] on the normalised
#   reference), name their registry explicitly, avoid banned tags and match an
#   optional tag pattern. Invalid references are denied.
package k8strustedimagesource

import data.lib.imagetrust.containers
import data.lib.imagetrust.reference
import data.lib.imagetrust.registries
import data.lib.imagetrust.review

default_banned_tags := ["latest", "stable", "main", "master", "dev", "develop"]

_params := review.params

_allow_implicit if _params.allowImplicitRegistry == true

_banned := b if {
	b := _params.bannedTags
	is_array(b)
} else := default_banned_tags

# The banned tags, lowercased; malformed entries (config_problems) are left out. The default
# list, given or implied, is the literal (already lowercase), without a step per entry.
_banned_lower := default_banned_tags if {
	_banned == default_banned_tags
} else := [lower(t) | some t in _banned; is_string(t); t != ""]

# A rule, so that "not" sees an absent bannedTags as not checked here.
_banned_tags_well_formed if {
	b := _params.bannedTags
	is_array(b)
	count(_banned_lower) == count(b)
}

_tag_pattern := p if {
	p := _params.tagPattern
	is_string(p)
	p != ""
	regex.is_valid(p)
}

# The tag pattern, implicitly anchored.
_tag_regex := concat("", ["^(?:", _tag_pattern, ")$"])

# Invalid references and a misconfigured constraint.
violation contains {"msg": msg} if {
	some msg in review.violations_of(_review, config_problems)
}

# The rules below check every container whose image parses, is not exempt and is not settled.
violation contains {"msg": msg} if {
	some msg in review.messages_of(_review, _container_violations)
}

# The review of the containers whose image is not settled below, found in one pass over the
# containers.
_review := review.of_containers(containers.unsettled(_settle_pattern, 134)) # review.of_unsettled, one call fewer

# _settled are images that pass every rule below, found from the reference as written with one
# match, without parsing it: the common case of a compliant image. _settle_pattern accepts
# only valid references that name their registry host (reference.dotted_host, never implicit)
# under an allowed entry (its lowercase host, then a path below the entry's path),
# with a digest (no tag rule applies) or a version tag (digit or v + digit first) when no banned
# tag has that form and there is no tagPattern; 134 characters at most, so that the path and
# tag are within their length limits. Anything else, Docker Hub and localhost entries among
# them, goes the full way; settling never changes a decision (TestSettledImagesKeepEveryDecision).
# The review leaves them out in its container pass (containers.unsettled); this set, the same
# test (containers.settles), names them for the tests.
_settled contains image if {
	some image in containers.images
	containers.settles(_settle_pattern, 134, image)
}

# Without a name to settle nothing is settled.
_settle_pattern := concat("", ["^(?:", _settle_name, ")(?:", _settle_tail, ")$"]) if {
	_settle_name != ""
} else := containers.settle_nothing

# Host and path of the references that pass the registry rules: without an allow-list any
# dotted host, else the well-formed entries with a dotted host other than Docker Hub's, as
# their prefixes (lowercase host, then "/" or "/path/", see registries.parse_entries) followed
# by at least one more path component. An image written with an uppercase host or naming an
# entry's path exactly is not settled here and goes the full way. One replace over the
# prefixes, one per line, drops the others ("" when none is left).
_settle_name := concat("", [reference.dotted_host, "/", reference.remote_name]) if {
	not _has_allow_list
} else := concat("", ["(?:", concat("|", split(_quote_dots(trim_suffix(names, "\n")), "\n")), ")", reference.remote_name]) if {
	count(_allowed_prefixes) > 0
	names := regex.replace(concat("", [concat("\n", _allowed_prefixes), "\n"]), `(?m)^(?:docker\.io/|[^./\n]*/).*\n`, "")
	names != ""
} else := ""

# A rule, so that "not" sees an absent allowedRegistries as no allow-list.
_has_allow_list if is_array(_params.allowedRegistries)

# _quote_dots escapes the "." of hosts and paths for a pattern (split and concat: replace
# builds a strings.Replacer on every call).
_quote_dots(s) := concat(`\.`, split(s, "."))

# Tag and digest of the references that pass the tag rules: with the default banned tags and
# no tagPattern, the alternation of both _settle_tails as a literal (test_settle_tail_literal).
_settle_tail := `(?::[\w][\w.-]*)?@(?:sha256:[a-f0-9]{64}|sha384:[a-f0-9]{96}|sha512:[a-f0-9]{128})|:[vV]?[0-9][\w.-]*` if {
	_banned_lower == default_banned_tags
	not _params.tagPattern
} else := concat("|", _settle_tails)

_settle_tails contains concat("", [`(?::[\w][\w.-]*)?@`, reference.accepted_digest])

_settle_tails contains `:[vV]?[0-9][\w.-]*` if {
	not _params.tagPattern
	not regex.match(`(?:^|\n)v?[0-9]`, concat("\n", _banned_lower))
}

_container_violations contains [c, msg] if {
	not _allow_implicit
	some [c, ref] in _review.checked
	ref.implicit_registry
	msg := concat("", [
		"container <", c.name, "> image <", c.image, "> does not name its registry (the node would pull <",
		ref.pull, ">); write the registry explicitly", _allowed_hint,
	])
}

_allowed_hint := concat("", [", allowed: ", _allowed_description]) if {
	is_array(_params.allowedRegistries)
} else := ""

# registries.describe, in one step when every entry is a well-formed string.
_allowed_description := concat("", ["<", concat(">, <", _params.allowedRegistries), ">"]) if {
	_has_allow_list
	count(_allowed_prefixes) == count(_params.allowedRegistries)
	count(_allowed_prefixes) > 0
} else := registries.describe(_params.allowedRegistries)

# The well-formed allowedRegistries entries, parsed once per review.
_allowed_prefixes := registries.parse_entries(_params.allowedRegistries)

_container_violations contains [c, msg] if {
	is_array(_params.allowedRegistries)
	some [c, ref] in _review.checked
	not registries.allows(ref.domain, ref.path, _allowed_prefixes) # is_allowed_by, one call fewer
	msg := concat("", [
		"container <", c.name, "> image <", ref.normalized, "> comes from <", ref.repository,
		">, which is not an allowed registry; allowed: ", _allowed_description,
	])
}

_container_violations contains [c, msg] if {
	some [c, ref] in _review.checked
	ref.digest == ""
	lower(ref.effective_tag) in _banned_lower
	msg := concat("", [
		"container <", c.name, "> image <", ref.normalized, "> uses banned tag <", ref.effective_tag, ">",
		object.get({"": " (no tag given)"}, ref.tag, ""), "; pin a version or digest",
	])
}

_container_violations contains [c, msg] if {
	pattern := _tag_pattern
	some [c, ref] in _review.checked
	ref.digest == ""
	not regex.match(_tag_regex, ref.effective_tag)
	msg := sprintf(
		"container <%s> image <%s> has tag <%s>, which does not match the required pattern <%s>; use a matching tag or pin a digest",
		[c.name, ref.normalized, ref.effective_tag, pattern],
	)
}

# What is wrong with the parameters: every object with containers is denied, naming it. The
# common case, every parameter absent or well-formed, is found with one match of their JSON;
# only otherwise is each parameter looked at (_problems).
config_problems := set() if {
	regex.match(_well_formed_params_re, json.marshal(_params))
} else := _problems

# _well_formed_params_re matches the JSON of parameters (keys in json.marshal's order) that are
# absent or well-formed: allowImplicitRegistry a boolean, allowedRegistries a list of entries
# (the entry grammar has no character JSON escapes), bannedTags a list of non-empty strings
# JSON writes as they are. tagPattern, exemptImages or anything else goes the way of each
# check (test_well_formed_params_re_is_the_grammar, test_config_problems_gate_hides_nothing).
_well_formed_params_re := `^\{(?:"allowImplicitRegistry":(?:true|false),?)?(?:"allowedRegistries":\[(?:"(?:(?:(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*|\[(?:[a-fA-F0-9:]+)\])(?::[0-9]+)?)(?:/[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*)*)?"(?:,"(?:(?:(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*|\[(?:[a-fA-F0-9:]+)\])(?::[0-9]+)?)(?:/[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*)*)?")*)?\],?)?(?:"bannedTags":\[(?:"[^"\\]+"(?:,"[^"\\]+")*)?\])?\}$`

_problems contains sprintf("allowedRegistries must be a list of host[:port][/path] strings, got <%v>", [a]) if {
	a := _params.allowedRegistries
	not is_array(a)
}

_problems contains sprintf("allowedRegistries[%d] <%v> %s", [i, e, p.error]) if {
	count(_allowed_prefixes) != count(_params.allowedRegistries) # one count while every entry is well-formed
	some i, e in _params.allowedRegistries
	p := registries.parse_entry(e)
	not p.valid
}

_problems contains sprintf("allowImplicitRegistry must be a boolean, got <%v>", [v]) if {
	v := _params.allowImplicitRegistry
	not is_boolean(v)
}

_problems contains sprintf("bannedTags must be a list of strings, got <%v>", [v]) if {
	v := _params.bannedTags
	not is_array(v)
}

_problems contains sprintf("bannedTags[%d] must be a non-empty string, got <%v>", [i, t]) if {
	not _banned_tags_well_formed # one count instead of a look at every entry, in the common case
	some i, t in _params.bannedTags
	not is_string(t)
}

_problems contains sprintf("bannedTags[%d] must be a non-empty string, got <%v>", [i, t]) if {
	not _banned_tags_well_formed
	some i, t in _params.bannedTags
	t == ""
}

_problems contains sprintf("tagPattern must be a string, got <%v>", [p]) if {
	p := _params.tagPattern
	not is_string(p)
}

_problems contains sprintf("tagPattern <%s> is not a valid RE2 regular expression", [p]) if {
	p := _params.tagPattern
	is_string(p)
	not regex.is_valid(p)
}
