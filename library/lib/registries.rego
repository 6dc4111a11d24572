# METADATA
# title: Registry allow-lists
# description: >-
#   allowedRegistries entries host[:port][/path], matched against a parsed reference:
#   the normalised domain equals the host (case-insensitively) and the path equals
#   the entry's path or continues it at a "/" boundary. Never a string prefix.
package lib.imagetrust.registries

# ^(domain_and_port)(?:/(remote_name))?$, written out (checked in registries_test.rego).
_entry_re := `^((?:(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*|\[(?:[a-fA-F0-9:]+)\])(?::[0-9]+)?)(?:/([a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*)*))?$`

# parse_entry returns {"valid": true, "host", "path"} for a well-formed entry
# (host lowercased, index.docker.io read as docker.io), else {"valid": false, "error"}.
parse_entry(e) := {"valid": true, "host": object.get({"index.docker.io": "docker.io"}, host, host), "path": m[2]} if {
	is_string(e)
	m := regex.find_all_string_submatch_n(_entry_re, e, 1)[0]
	host := lower(m[1])
} else := {"valid": false, "error": "is not a string"} if {
	not is_string(e)
} else := {"valid": false, "error": "is not host[:port][/path] (no scheme, no tag or digest, no trailing slash, lowercase path)"}

# is_allowed is true when the valid reference ref comes from one of entries.
is_allowed(ref, entries) if is_allowed_by(ref, parse_entries(entries))

# parse_entries is the allow-list in the form is_allowed_by reads: one prefix per well-formed
# entry, "host/" followed by the entry's path and "/" when it has one (index.docker.io/x gives
# "docker.io/x/", registry.bank.internal gives "registry.bank.internal/"). A template computes
# it once per review instead of parsing every entry for every image.
parse_entries(entries) := split(regex.replace(lower(concat("", [concat("/\n", entries), "/"])), `(?m)^index\.docker\.io/`, "docker.io/"), "\n") if {
	# The common case, a non-empty list of well-formed entries, in two steps: one match of
	# the list's JSON (the entry grammar has no character JSON escapes, so every entry is
	# there as written), then every entry followed by "/" and lowercased at once (the path of
	# a well-formed entry is already lowercase).
	regex.match(_entry_list_re, json.marshal(entries))
} else := _parse_entries_each(entries)

# _entry_list_re matches the JSON of a non-empty list of entries that match _entry_re
# (checked in registries_test.rego).
_entry_list_re := `^\["(?:(?:(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*|\[(?:[a-fA-F0-9:]+)\])(?::[0-9]+)?)(?:/[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*)*)?"(?:,"(?:(?:(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*|\[(?:[a-fA-F0-9:]+)\])(?::[0-9]+)?)(?:/[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*)*)?")*\]$`

# _parse_entries_each is parse_entries one entry at a time, for lists with a malformed entry.
_parse_entries_each(entries) := [concat("", [p.host, "/", trim_prefix(concat("", [p.path, "/"]), "/")]) |
	some e in entries
	p := parse_entry(e)
	p.valid
]

# is_allowed_by is is_allowed with the entries already read by parse_entries: the host equals
# the entry's host (case-insensitively) and the path equals the entry's path or continues it
# at a "/" boundary. It compares "host/path/" of the parsed reference with the prefixes: a host
# holds no "/", so a prefix "host/" matches only that host, and the path's own "/" ends the
# entry's path at a segment boundary. A reference without a domain ("" in a few forms the
# walk accepts) gives "/path/", which no prefix starts.
is_allowed_by(ref, prefixes) if allows(ref.domain, ref.path, prefixes)

# allows is is_allowed_by for the domain and path of a reference.
allows(domain, path, prefixes) if strings.any_prefix_match(concat("/", [lower(domain), path, ""]), prefixes)

# describe renders entries for messages: "<a>, <b>", or "none".
describe(entries) := "none" if count(entries) == 0

describe(entries) := concat(", ", [sprintf("<%v>", [e]) | some e in entries]) if count(entries) > 0
