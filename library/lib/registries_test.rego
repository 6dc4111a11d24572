package lib.imagetrust.registries_test

import data.lib.imagetrust.reference
import data.lib.imagetrust.registries

allowed(image, entries) if registries.is_allowed(reference.parse(image), entries)

test_parse_entry if {
	registries.parse_entry("Registry.Bank.Internal:5000/team/x") == {"valid": true, "host": "registry.bank.internal:5000", "path": "team/x"}
	registries.parse_entry("index.docker.io") == {"valid": true, "host": "docker.io", "path": ""}
	not registries.parse_entry("https://r.io").valid
	not registries.parse_entry("r.io/").valid
	not registries.parse_entry("r.io/Team").valid
	not registries.parse_entry("r.io/x:1").valid
	registries.parse_entry(7).error == "is not a string"
}

test_host_and_path_boundaries if {
	allowed("registry.bank.internal/app:1", ["registry.bank.internal"])
	allowed("REGISTRY.bank.internal/app:1", ["registry.bank.internal"])
	not allowed("registry.bank.internal.evil.io/app:1", ["registry.bank.internal"])
	not allowed("evilregistry.bank.internal/app:1", ["registry.bank.internal"])
	not allowed("registry.bank.internal:5000/app:1", ["registry.bank.internal"])
	allowed("quay.io/approved/app:1", ["quay.io/approved"])
	allowed("quay.io/approved/a/b:1", ["quay.io/approved"])
	not allowed("quay.io/approved-evil/app:1", ["quay.io/approved"])
	allowed("quay.io/approved:1", ["quay.io/approved"])
	allowed("nginx", ["docker.io/library"])
	not allowed("nginx", ["bad entry", "r.io"])
}

test_describe if {
	registries.describe([]) == "none"
	registries.describe(["a.io", "b.io/x"]) == "<a.io>, <b.io/x>"
}

test_entry_grammar_is_the_reference_grammar if {
	registries._entry_re == concat("", [`^(`, reference.domain_and_port, `)(?:/(`, reference.remote_name, `))?$`])
}

test_entry_list_grammar_is_the_entry_grammar if {
	entry := concat("", [`(?:`, reference.domain_and_port, `)(?:/`, reference.remote_name, `)?`])
	registries._entry_list_re == concat("", [`^\["`, entry, `"(?:,"`, entry, `")*\]$`])
}

# The two-step form of parse_entries gives what parsing each entry gives, for every list it
# takes (and only those: a malformed entry anywhere goes one entry at a time).
test_parse_entries_at_once_is_each if {
	lists := [
		["registry.bank.internal", "quay.io/redhat-openshift-approved"],
		["R.io/a/b", "index.docker.io", "Index.Docker.IO", "index.docker.io:443/x", "index.docker.io/library"],
		["r.io:5000", "[::1]:5000/a", "[FE80::1]", "localhost", "docker.io", "a-b.c.io/x__y/z.w"],
		["r.io"],
	]
	every l in lists {
		regex.match(registries._entry_list_re, json.marshal(l))
		registries.parse_entries(l) == registries._parse_entries_each(l)
	}
	every l in [[], ["r.io", "bad entry"], ["r.io", "c_d.io"], ["r.io", 7], ["r.io/"], ["r.io/A"], ["r.io", "x\"y"], ["r.io", "a\nb.io"], {"a": "r.io"}, "r.io", [["r.io"]]] {
		not regex.match(registries._entry_list_re, json.marshal(l))
	}
	registries.parse_entries(["r.io", "bad entry", "R.io/a"]) == ["r.io/", "r.io/a/"]
}

test_parse_entries_keeps_the_well_formed if {
	registries.parse_entries(["R.io/a/b", "bad entry", 7, "index.docker.io"]) == ["r.io/a/b/", "docker.io/"]
}

test_is_allowed_by if {
	parsed := registries.parse_entries(["registry.bank.internal", "quay.io/approved"])
	registries.is_allowed_by(reference.parse("Registry.Bank.Internal/app:1"), parsed)
	registries.is_allowed_by(reference.parse("quay.io/approved/a/b:1"), parsed)
	not registries.is_allowed_by(reference.parse("quay.io/approved-evil/a:1"), parsed)
	not registries.is_allowed_by(reference.parse("quay.io/app:1"), parsed)
	not registries.is_allowed_by(reference.parse("registry.bank.internal:5000/app:1"), parsed)
	not registries.is_allowed_by(reference.parse("r.io/app:1"), [])
	not registries.is_allowed_by(reference.parse("registry.bank.internal.evil.io/app:1"), parsed)
	registries.is_allowed_by(reference.parse("quay.io/approved:1"), parsed)
	not registries.is_allowed_by(reference.parse("quay.io/approvedx:1"), parsed)
}

# A reference the walk accepts without a domain (its first component has an underscore) is
# never allowed by a host, whatever its path starts with.
test_no_domain_is_never_allowed if {
	ref := reference.parse("r_x.io/registry.bank.internal/app:1")
	ref.valid
	ref.domain == ""
	not registries.is_allowed_by(ref, registries.parse_entries(["registry.bank.internal"]))
	not allowed("r_x.io/registry.bank.internal/app:1", ["registry.bank.internal"])
}
