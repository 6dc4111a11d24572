# METADATA
# title: Image exemptions
# description: >-
#   exemptImages entries {image: <glob>, reason: <text>, expires: <date>}: "*" matches within
#   one path segment, "**" across segments; matched against the normalised reference. An entry
#   with expires applies through that RFC 3339 date (or until that date-time) and no longer
#   after it; the violations it would have exempted then say so.
package lib.imagetrust.exempt

import data.lib.imagetrust.expiry

# The exemptImages entries of the constraint ([] when absent or not a list).
_entries := e if {
	e := input.parameters.exemptImages
	is_array(e)
} else := []

# active lists the entries in force now, compiled: {"image", "reason", "regex"}.
active := [compile(e) |
	some e in _entries
	in_force(e)
]

# expired lists the well-formed entries whose expiry has passed, compiled, with "expires".
expired := [object.union(compile(e), {"expires": e.expires}) |
	some e in _entries
	is_well_formed(e)
	expiry.has_passed(e.expires)
]

# compile returns the entry e with its glob turned into an anchored pattern: {"image", "reason", "regex"}.
compile(e) := {"image": e.image, "reason": e.reason, "regex": glob_to_regex(e.image)}

# matches is true when the compiled entry e (of active or expired) matches the parsed reference ref.
matches(ref, e) if {
	ref.valid
	regex.match(e.regex, ref.normalized)
}

# in_force is true for a well-formed entry without expires, or whose expiry has not passed.
in_force(e) if {
	is_well_formed(e)
	not _has_expires(e)
}

in_force(e) if {
	is_well_formed(e)
	_has_expires(e)
	not expiry.has_passed(e.expires)
}

_has_expires(e) if object.get(e, "expires", null) != null

# is_exempt is true when the parsed reference ref matches one entry of exemptions in force.
is_exempt(ref, exemptions) if {
	some e in exemptions
	in_force(e)
	matches(ref, compile(e))
}

# expired_note is what a violation says about the expired entry e (one of expired).
expired_note(e) := expiry.note("exemption", e.image, e.expires, e.reason)

# is_well_formed is true for an entry with a non-empty image glob, a non-empty reason and,
# when it has expires, a valid date.
is_well_formed(e) if {
	_has_image_and_reason(e)
	_valid_expiry(e)
}

_valid_expiry(e) if not _has_expires(e)

_valid_expiry(e) if expiry.is_valid(e.expires)

# problems lists what is wrong with each malformed exemption entry.
problems contains msg if {
	some i, e in input.parameters.exemptImages
	not _has_image_and_reason(e)
	msg := sprintf("exemptImages[%d] must have a non-empty image glob and a non-empty reason, got <%v>", [i, e])
}

problems contains msg if {
	some i, e in input.parameters.exemptImages
	_has_image_and_reason(e)
	not _valid_expiry(e)
	msg := sprintf("exemptImages[%d] <%s> expires <%v>, which is not %s", [i, e.image, e.expires, expiry.expected])
}

problems contains msg if {
	e := input.parameters.exemptImages
	not is_array(e)
	msg := sprintf("exemptImages must be a list of {image, reason}, got <%v>", [e])
}

_has_image_and_reason(e) if {
	is_string(e.image)
	trim_space(e.image) != ""
	is_string(e.reason)
	trim_space(e.reason) != ""
}

# glob_to_regex turns an exemption glob into an anchored RE2 pattern:
# "**" -> ".*", "*" -> "[^/]*", everything else literal.
glob_to_regex(glob) := concat("", ["^", body, "$"]) if {
	body := concat(".*", [_segment_pattern(p) | some p in split(glob, "**")])
}

_segment_pattern(p) := concat("[^/]*", [_quote(q) | some q in split(p, "*")])

_quote(s) := concat("", [_quote_char(c) | some c in split(s, "")])

_quote_char(c) := concat("", ["\\", c]) if {
	c in {".", "+", "?", "(", ")", "[", "]", "{", "}", "|", "^", "$", "\\"}
} else := c
