# METADATA
# title: Image digest
# description: >-
#   Images must be pinned by a digest of an allowed algorithm; optionally the
#   tag+digest form is refused. Invalid references are denied.
package k8simagedigest

import data.lib.imagetrust.containers
import data.lib.imagetrust.reference
import data.lib.imagetrust.review

default_allowed_algorithms := ["sha256"]

_params := review.params

_algorithms := a if {
	a := _params.allowedAlgorithms
	is_array(a)
} else := default_allowed_algorithms

_allow_tag_with_digest if not _params.allowTagWithDigest == false

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
_review := review.of_containers(containers.unsettled(_settle_pattern, 206)) # review.of_unsettled, one call fewer

# _settled are images that pass every rule below, found from the reference as written with one
# match, without parsing it: the common case of a compliant image. _settle_pattern accepts only
# valid references that name their registry host (reference.dotted_host) and carry a digest of
# an allowed algorithm, without a tag unless allowTagWithDigest; 206 characters at most, so that
# the path and tag are within their length limits. Anything else goes the full way; settling
# never changes a decision (TestSettledImagesKeepEveryDecision). The review leaves them out in
# its container pass (containers.unsettled); this set, the same test (containers.settles),
# names them for the tests.
_settled contains image if {
	some image in containers.images
	containers.settles(_settle_pattern, 206, image)
}

# Without an allowed algorithm nothing is settled. With the default algorithm and tags beside
# digests allowed (the seed constraint's shape), the pattern is a literal
# (test_settle_pattern_literal).
_settle_pattern := `^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))+(?::[0-9]+)?/[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*)*(?::[\w][\w.-]*)?@(?:sha256:[a-f0-9]{64})$` if {
	_algorithms == default_allowed_algorithms
	_allow_tag_with_digest
} else := concat("", ["^", reference.dotted_host, "/", reference.remote_name, _settle_tag, "@(?:", concat("|", _settle_digests), ")$"]) if {
	count(_settle_digests) > 0
} else := containers.settle_nothing

_settle_tag := `(?::[\w][\w.-]*)?` if _allow_tag_with_digest

else := ""

_settle_digests := [`sha256:[a-f0-9]{64}`] if {
	_algorithms == default_allowed_algorithms # the default, given or implied: a literal
} else := [concat("", [a, ":[a-f0-9]{", format_int(n, 10), "}"]) |
	some a in _algorithms
	n := reference.digest_hex_lengths[a]
]

_container_violations contains [c, msg] if {
	some [c, ref] in _review.checked
	ref.digest == ""
	msg := concat("", [
		"container <", c.name, "> image <", ref.normalized, "> is not pinned by digest; reference it as <",
		ref.repository, "@", _first_algorithm, ":<hex>> (allowed algorithms: ", _algorithms_description, ")",
	])
}

_first_algorithm := "sha256" if {
	"sha256" in _algorithms
} else := sprintf("%s", [_algorithms[0]]) if {
	count(_algorithms) > 0
} else := "sha256"

# "<algorithm>:" of each allowed algorithm, which an allowed digest starts with.
_algorithm_prefixes := [concat("", [a, ":"]) | some a in _algorithms; is_string(a)]

_container_violations contains [c, msg] if {
	some [c, ref] in _review.checked
	ref.digest != ""
	not strings.any_prefix_match(ref.digest, _algorithm_prefixes)
	algorithm := split(ref.digest, ":")[0]
	msg := sprintf(
		"container <%s> image <%s> uses digest algorithm <%s>; allowed: %s",
		[c.name, ref.normalized, algorithm, _algorithms_description],
	)
}

_container_violations contains [c, msg] if {
	not _allow_tag_with_digest
	some [c, ref] in _review.checked
	ref.digest != ""
	ref.tag != ""
	msg := sprintf(
		"container <%s> image <%s> has both tag <%s> and a digest; the node pulls <%s> and ignores the tag, so remove the tag",
		[c.name, ref.normalized, ref.tag, ref.pull],
	)
}

_algorithms_description := "<sha256>" if {
	_algorithms == default_allowed_algorithms
} else := concat(", ", [sprintf("<%v>", [x]) | some x in _algorithms])

# What is wrong with the parameters: every object with containers is denied, naming it. The
# common case, the default algorithms (given or implied) and allowTagWithDigest absent or a
# boolean, is found in one body; only otherwise is each parameter looked at (_problems).
config_problems := set() if {
	object.get(_params, "allowedAlgorithms", default_allowed_algorithms) == default_allowed_algorithms
	is_boolean(object.get(_params, "allowTagWithDigest", true))
} else := _problems

_problems contains sprintf("allowedAlgorithms must be a non-empty list, got <%v>", [a]) if {
	a := _params.allowedAlgorithms
	not _non_empty_array(a)
}

_problems contains sprintf("allowedAlgorithms[%d] <%v> is not one of sha256, sha384, sha512", [i, a]) if {
	some i, a in _params.allowedAlgorithms
	not reference.digest_hex_lengths[a]
}

_problems contains sprintf("allowTagWithDigest must be a boolean, got <%v>", [v]) if {
	v := _params.allowTagWithDigest
	not is_boolean(v)
}

_non_empty_array(a) if {
	is_array(a)
	count(a) > 0
}
