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
parse_entry(e) := {"valid": false, "error": "is not a string"} if {
	not is_string(e)
} else := {"valid": true, "host": _host(m[1]), "path": m[2]} if {
	m := regex.find_all_string_submatch_n(_entry_re, e, 1)[0]
} else := {"valid": false, "error": "is not host[:port][/path] (no scheme, no tag or digest, no trailing slash, lowercase path)"}

_host(h) := "docker.io" if lower(h) == "index.docker.io"

_host(h) := lower(h) if lower(h) != "index.docker.io"

# is_allowed is true when the valid reference ref comes from one of entries.
is_allowed(ref, entries) if {
	some e in entries
	p := parse_entry(e)
	p.valid
	_matches(ref, p)
}

_matches(ref, p) if {
	lower(ref.domain) == p.host
	p.path == ""
}

_matches(ref, p) if {
	lower(ref.domain) == p.host
	ref.path == p.path
}

_matches(ref, p) if {
	lower(ref.domain) == p.host
	p.path != ""
	startswith(ref.path, concat("", [p.path, "/"]))
}

# describe renders entries for messages: "<a>, <b>", or "none".
describe(entries) := "none" if count(entries) == 0

describe(entries) := concat(", ", [sprintf("<%v>", [e]) | some e in entries]) if count(entries) > 0
