# METADATA
# title: Image exemptions
# description: >-
#   exemptImages entries {image: <glob>, reason: <text>}: "*" matches within one path
#   segment, "**" across segments; matched against the normalised reference.
package lib.imagetrust.exempt

# is_exempt is true when the parsed reference ref matches one well-formed exemption.
is_exempt(ref, exemptions) if {
	ref.valid
	some e in exemptions
	is_well_formed(e)
	regex.match(glob_to_regex(e.image), ref.normalized)
}

# matching returns the exemption entries that match ref (for audit messages).
matching(ref, exemptions) := [e |
	ref.valid
	some e in exemptions
	is_well_formed(e)
	regex.match(glob_to_regex(e.image), ref.normalized)
]

# is_well_formed is true for an entry with a non-empty image glob and a non-empty reason.
is_well_formed(e) if {
	is_string(e.image)
	trim_space(e.image) != ""
	is_string(e.reason)
	trim_space(e.reason) != ""
}

# problems lists what is wrong with each malformed exemption entry.
problems contains msg if {
	some i, e in input.parameters.exemptImages
	not is_well_formed(e)
	msg := sprintf("exemptImages[%d] must have a non-empty image glob and a non-empty reason, got <%v>", [i, e])
}

problems contains msg if {
	e := input.parameters.exemptImages
	not is_array(e)
	msg := sprintf("exemptImages must be a list of {image, reason}, got <%v>", [e])
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
