# METADATA
# title: Image digest
# description: >-
#   Images must be pinned by a digest of an allowed algorithm; optionally the
#   tag+digest form is refused. Invalid references are denied.
package k8simagedigest

import data.lib.imagetrust.containers
import data.lib.imagetrust.exempt
import data.lib.imagetrust.reference

default_allowed_algorithms := ["sha256"]

_params := p if {
	p := input.parameters
	is_object(p)
} else := {}

_exemptions := e if {
	e := _params.exemptImages
	is_array(e)
} else := []

_algorithms := a if {
	a := _params.allowedAlgorithms
	is_array(a)
} else := default_allowed_algorithms

_allow_tag_with_digest if not _params.allowTagWithDigest == false

# Every distinct image as written -> its parse result, parsed once per review and looked up
# by image in the rules below.
_parsed := {image: reference.parse(image) | some c in containers.containers; image := c.image}

# The images that parse and are not exempt -> parse result.
_checked_refs := {image: ref |
	some image, ref in _parsed
	ref.valid
	not _exempt_images[image]
}

# The images exemptImages exempts (no glob is evaluated when there are no exemptions).
_exempt_images := {image |
	count(_exemptions) > 0
	some image, ref in _parsed
	exempt.is_exempt(ref, _exemptions)
}

# Every container whose image parses and is not exempt: [container, parsed reference].
_checked contains [c, ref] if {
	some c in containers.containers
	ref := _checked_refs[c.image]
}

violation contains {"msg": msg} if {
	some c in containers.containers
	ref := _parsed[c.image]
	not ref.valid
	msg := reference.invalid_message(c, ref)
}

violation contains {"msg": msg} if {
	some [c, ref] in _checked
	ref.digest == ""
	msg := sprintf(
		"container <%s> image <%s> is not pinned by digest; reference it as <%s@%s:<hex>> (allowed algorithms: %s)",
		[c.name, ref.normalized, ref.repository, _first_algorithm, _algorithms_description],
	)
}

_first_algorithm := "sha256" if {
	"sha256" in _algorithms
} else := a if {
	a := _algorithms[0]
} else := "sha256"

violation contains {"msg": msg} if {
	some [c, ref] in _checked
	ref.digest != ""
	algorithm := split(ref.digest, ":")[0]
	not algorithm in _algorithms
	msg := sprintf(
		"container <%s> image <%s> uses digest algorithm <%s>; allowed: %s",
		[c.name, ref.normalized, algorithm, _algorithms_description],
	)
}

violation contains {"msg": msg} if {
	not _allow_tag_with_digest
	some [c, ref] in _checked
	ref.digest != ""
	ref.tag != ""
	msg := sprintf(
		"container <%s> image <%s> has both tag <%s> and a digest; the node pulls <%s> and ignores the tag, so remove the tag",
		[c.name, ref.normalized, ref.tag, ref.pull],
	)
}

_algorithms_description := concat(", ", [sprintf("<%v>", [x]) | some x in _algorithms])

# A broken constraint denies every object with containers, loudly.
violation contains {"msg": msg} if {
	count(containers.containers) > 0
	some problem in config_problems
	msg := sprintf("constraint is misconfigured: %s; every image is denied until it is fixed", [problem])
}

config_problems contains sprintf("allowedAlgorithms must be a non-empty list, got <%v>", [a]) if {
	a := _params.allowedAlgorithms
	not _non_empty_array(a)
}

config_problems contains sprintf("allowedAlgorithms[%d] <%v> is not one of sha256, sha384, sha512", [i, a]) if {
	some i, a in _params.allowedAlgorithms
	not reference.digest_hex_lengths[a]
}

config_problems contains sprintf("allowTagWithDigest must be a boolean, got <%v>", [v]) if {
	v := _params.allowTagWithDigest
	not is_boolean(v)
}

config_problems contains problem if {
	some problem in exempt.problems
}

_non_empty_array(a) if {
	is_array(a)
	count(a) > 0
}
