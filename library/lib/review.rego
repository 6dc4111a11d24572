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

# of(settled) is the review of the containers whose image is not in the set settled: images
# the template has found, from the reference as written, to be valid references its rules have
# nothing to say about, so that none of them is parsed, matched against exemptions or checked
# again. of_unsettled(pattern, max) is the same for the images settled by one pattern
# (containers.unsettled), found in the same pass that reads the containers. A template calls
# one of them once per review, as a rule; the rules below are of(set()), every container.
#   "parsed":        image -> its parse result (reference.parse)
#   "exempt_images": images an exemption in force exempts
#   "checked":       [container, parsed reference] for every container of those images
#   "invalid":       messages for the containers whose image is not a valid reference
#   "expired_notes": image -> what its violations say about expired exemptions
of(settled) := of_containers(containers.of_images(containers.image_values - settled))

of_unsettled(pattern, max) := of_containers(containers.unsettled(pattern, max))

# of_containers(listed) is the review of the containers listed ({name, image, field} objects).
of_containers(listed) := _nothing if {
	count(listed) == 0 # every image settled: nothing to parse, exempt or check
} else := {
	# No exemptImages (absent or []): nothing to match, expire or report; every valid image
	# is checked and no note is added.
	"parsed": parsed_,
	"exempt_images": set(),
	"checked": {[c, ref] | some c in listed; ref := parsed_[c.image]; ref.valid},
	"invalid": {reference.invalid_message(c, ref) | some c in listed; ref := parsed_[c.image]; not ref.valid},
	"expired_notes": {},
	"suffixes": {},
} if {
	not _has_exemptions
	parsed_ := {image: reference.parse(image) | some c in listed; image := c.image}
} else := _review(parsed_, listed, exempt_images_, refs, _expired_notes(refs)) if {
	parsed_ := {image: reference.parse(image) | some c in listed; image := c.image}
	exempt_images_ := _exempt_images(parsed_)
	refs := _checked_refs(parsed_, exempt_images_)
}

_nothing := {
	"parsed": {},
	"exempt_images": set(),
	"checked": set(),
	"invalid": set(),
	"expired_notes": {},
	"suffixes": {},
}

# _review is the object of_containers returns, from its parts (listed: the containers of the
# images of parsed_).
_review(parsed_, listed, exempt_images_, refs, notes) := {
	"parsed": parsed_,
	"exempt_images": exempt_images_,
	"checked": {[c, ref] | some c in listed; ref := refs[c.image]},
	"invalid": _invalid(parsed_, listed),
	"expired_notes": notes,
	"suffixes": {image: concat("", ["; ", note]) | some image, note in notes},
}

# A rule, so that "not" sees an absent exemptImages as none. Anything but [] (false, null, a
# list with entries) goes the full way, where exempt.problems names what is wrong with it.
_has_exemptions if params.exemptImages != []

_all := of_containers(containers.containers)

# parsed maps every distinct image as written to its parse result (reference.parse).
parsed := _all.parsed

# exempt_images is the set of images an exemption in force exempts (no glob is evaluated
# when there is none).
exempt_images := _all.exempt_images

# checked_refs maps every image that parses and is not exempt to its parse result.
checked_refs := {c.image: ref | some [c, ref] in checked}

# checked contains [container, parsed reference] for every container whose image parses and
# is not exempt: what the template's rules check.
checked := _all.checked

# expired_notes maps every checked image that an expired exemption would have exempted to
# what its violations say about it ("exemption for <glob> expired on <date> (<reason>)").
expired_notes := _all.expired_notes

# invalid contains the message for every container whose image is not a valid reference.
invalid := _all.invalid

_exempt_images(parsed_) := {image |
	count(exempt.active) > 0
	some image, ref in parsed_
	some e in exempt.active
	exempt.matches(ref, e)
}

_checked_refs(parsed_, exempt_images_) := {image: ref |
	some image, ref in parsed_
	ref.valid
} if {
	count(exempt_images_) == 0
} else := {image: ref |
	some image, ref in parsed_
	ref.valid
	not exempt_images_[image]
}

_expired_notes(refs) := {image: concat("; ", notes) |
	count(exempt.expired) > 0
	some image, ref in refs
	notes := [exempt.expired_note(e) | some e in exempt.expired; exempt.matches(ref, e)]
	count(notes) > 0
}

_invalid(parsed_, listed) := {reference.invalid_message(c, ref) |
	count(invalid_refs) > 0
	some c in listed
	ref := invalid_refs[c.image]
} if {
	invalid_refs := {image: ref | some image, ref in parsed_; not ref.valid}
}

# messages returns the messages of the [container, message] pairs a template's rules give,
# each followed by the note on the expired exemptions of its container's image, if any. One
# call per review: nothing is added when no exemption has expired.
messages(pairs) := messages_of(_all, pairs)

# messages_of is messages for the review r (of(settled)).
messages_of(r, pairs) := {msg | some [_, msg] in pairs} if {
	count(r.suffixes) == 0
} else := {concat("", [msg, object.get(r.suffixes, c.image, "")]) | some [c, msg] in pairs}

# violations(problems) is the set of messages every template denies with, given the
# template's own configuration problems: one per container whose image does not parse, and,
# for an object with containers, one per configuration problem (the template's and the
# exemptions').
violations(problems) := violations_of(_all, problems)

# violations_of is violations for the review r (of(settled)).
violations_of(r, problems) := r.invalid | {_misconfigured(p) |
	some p in (problems | _exemption_problems)
	containers.present
}

_exemption_problems := exempt.problems if _has_exemptions

else := set()

_misconfigured(problem) := sprintf("constraint is misconfigured: %s; every image is denied until it is fixed", [problem])
