# METADATA
# title: Review scaffold
# description: >-
#   What every template does before its own rules: read the parameters, parse each distinct
#   image once, apply exemptImages (with expiry), and deny invalid references and broken
#   constraints. A template adds its rules over `checked`, as [container, message] pairs, and
#   passes them through `messages`, so expired exemptions are named the same way everywhere.
package lib.imagetrust.review

import data.lib.imagetrust.containers
import data.lib.imagetrust.exempt
import data.lib.imagetrust.reference

# params is the constraint's parameters ({} when absent or not an object).
params := p if {
	p := input.parameters
	is_object(p)
} else := {}

# parsed maps every distinct image as written to its parse result (reference.parse).
parsed := {image: reference.parse(image) | some c in containers.containers; image := c.image}

# exempt_images is the set of images an exemption in force exempts (no glob is evaluated
# when there is none).
exempt_images := {image |
	count(exempt.active) > 0
	some image, ref in parsed
	some e in exempt.active
	exempt.matches(ref, e)
}

# checked_refs maps every image that parses and is not exempt to its parse result.
checked_refs := {image: ref |
	some image, ref in parsed
	ref.valid
} if {
	count(exempt_images) == 0
} else := {image: ref |
	some image, ref in parsed
	ref.valid
	not exempt_images[image]
}

# checked contains [container, parsed reference] for every container whose image parses and
# is not exempt: what the template's rules check.
checked contains [c, ref] if {
	some c in containers.containers
	ref := checked_refs[c.image]
}

# expired_notes maps every checked image that an expired exemption would have exempted to
# what its violations say about it ("exemption for <glob> expired on <date> (<reason>)").
expired_notes := {image: concat("; ", notes) |
	count(exempt.expired) > 0
	some image, ref in checked_refs
	notes := [exempt.expired_note(e) | some e in exempt.expired; exempt.matches(ref, e)]
	count(notes) > 0
}

_suffixes := {image: concat("", ["; ", note]) | some image, note in expired_notes}

# messages returns the messages of the [container, message] pairs a template's rules give,
# each followed by the note on the expired exemptions of its container's image, if any. One
# call per review: nothing is added when no exemption has expired.
messages(pairs) := {msg | some [_, msg] in pairs} if {
	count(_suffixes) == 0
} else := {concat("", [msg, object.get(_suffixes, c.image, "")]) | some [c, msg] in pairs}

# violations(problems) is the set of messages every template denies with, given the
# template's own configuration problems: one per container whose image does not parse, and,
# for an object with containers, one per configuration problem (the template's and the
# exemptions').
violations(problems) := invalid | {_misconfigured(p) |
	count(containers.containers) > 0
	some p in (problems | exempt.problems)
}

# invalid contains the message for every container whose image is not a valid reference.
invalid contains reference.invalid_message(c, ref) if {
	count(_invalid_refs) > 0
	some c in containers.containers
	ref := _invalid_refs[c.image]
}

_invalid_refs := {image: ref | some image, ref in parsed; not ref.valid}

_misconfigured(problem) := sprintf("constraint is misconfigured: %s; every image is denied until it is fixed", [problem])
