# METADATA
# title: Image attestations (write-your-own example)
# description: >-
#   An example of a policy over decoded attestation content. Images must carry verified in-toto
#   statements that satisfy the constraint: SLSA v1 provenance whose
#   buildDefinition.externalParameters.source.uri names an allowed repository, and statements
#   of required predicate types whose fields hold allowed values. The statements come from one
#   batched external_data call to the imagetrust-attestations provider, which verifies every
#   signature against the authorities in its configuration. Lookup errors deny unless
#   failOpen; a truncated answer denies unless denyTruncated is false; invalid references are
#   denied.
package k8simageattestations

import data.lib.imagetrust.externaldata
import data.lib.imagetrust.review

# provider is the Gatekeeper Provider object the template calls.
provider := "imagetrust-attestations"

# SLSA provenance v1, the predicate type allowedSourceRepos reads.
slsa_v1 := "https://slsa.dev/provenance/v1"

_params := review.params

_fail_open := object.get(_params, "failOpen", false) == true

_deny_truncated := object.get(_params, "denyTruncated", true) != false

_strings(name) := [s | some s in _params[name]; is_string(s)] if {
	is_array(_params[name])
} else := []

_authorities := _strings("authorities")

_allowed_repos := {_repository(r) | some r in _strings("allowedSourceRepos")}

_required := [r | some r in _params.requiredPredicates; _well_formed_requirement(r)] if {
	is_array(_params.requiredPredicates)
} else := []

# The one batched call for the images of the checked containers (lib/externaldata.rego).
_lookup := externaldata.lookup(provider, review.checked)

# Invalid references and a misconfigured constraint.
violation contains {"msg": msg} if {
	some msg in review.violations(config_problems)
}

violation contains {"msg": msg} if {
	some msg in review.messages(_container_violations)
}

_container_violations contains [c, msg] if {
	some [c, msg] in externaldata.violations(_lookup, _fail_open, "checked for attestations")
}

# The provider must have answered for the digest the node will pull.
_container_violations contains [c, msg] if {
	some [c, ref, v] in _lookup.values
	ref.digest != ""
	object.get(v, "digest", "") != ref.digest
	msg := sprintf("container <%s> image <%s> pins <%s> but the provider read the attestations of <%v>", [c.name, c.image, ref.digest, object.get(v, "digest", "")])
}

# A truncated answer may lack the statement a rule looks for, or hide one that denies.
_container_violations contains [c, msg] if {
	_deny_truncated
	some [c, _, v] in _lookup.values
	v.truncated == true
	msg := sprintf("container <%s> image <%s> has more verified attestation content than the provider reports (<%v> statements, some without their predicates); raise the provider's attestations limits or set denyTruncated to false", [c.name, c.image, object.get(v, "statementsTotal", "?")])
}

# _statements contains [container, value, statement] for every reported statement of an
# authority the constraint accepts (any configured authority when authorities is empty).
_statements contains [c, v, s] if {
	some [c, _, v] in _lookup.values
	some s in object.get(v, "statements", [])
	is_object(s)
	_accepted(s)
}

_accepted(_) if count(_authorities) == 0

_accepted(s) if s.authority in _authorities

_from := "any configured authority" if {
	count(_authorities) == 0
} else := sprintf("authorities <%s>", [concat(", ", sort(_authorities))])

# _rejections says what the provider found but could not verify, when it found anything.
_rejections(v) := sprintf(" (not verified: %s)", [concat("; ", rs)]) if {
	rs := [sprintf("<%v>", [r.reason]) | some r in object.get(v, "rejected", []); is_object(r)]
	count(rs) > 0
} else := ""

# ---------------------------------------------------------------------------------------
# SLSA source repository (seed 003): every verified SLSA v1 provenance names an allowed
# repository in predicate.buildDefinition.externalParameters.source.uri, and there is one.

_provenance contains [c, v, s] if {
	count(_allowed_repos) > 0
	some [c, v, s] in _statements
	s.predicateType == slsa_v1
}

_container_violations contains [c, msg] if {
	count(_allowed_repos) > 0
	some [c, _, v] in _lookup.values
	not _has_provenance(c)
	msg := sprintf("container <%s> image <%s> has no verified SLSA provenance <%s> from %s%s; allowedSourceRepos requires one", [c.name, c.image, slsa_v1, _from, _rejections(v)])
}

_has_provenance(c) if {
	some [c2, _, _] in _provenance
	c2 == c
}

_container_violations contains [c, msg] if {
	some [c, _, s] in _provenance
	uri := _source_uri(s)
	not _repository(uri) in _allowed_repos
	msg := sprintf("container <%s> image <%s> was built from source <%s> (SLSA provenance of <%s>), not one of the allowed repositories <%s>", [c.name, c.image, uri, s.authority, concat(", ", sort(_strings("allowedSourceRepos")))])
}

_container_violations contains [c, msg] if {
	some [c, _, s] in _provenance
	not _source_uri(s)
	msg := sprintf("container <%s> image <%s> has SLSA provenance of <%s> without a string buildDefinition.externalParameters.source.uri; allowedSourceRepos requires it", [c.name, c.image, s.authority])
}

_source_uri(s) := uri if {
	uri := s.predicate.buildDefinition.externalParameters.source.uri
	is_string(uri)
	uri != ""
}

# _repository is a source URI without what names a revision in it: "git+" before the
# scheme, "@<ref>" after the path, "?query" and "#fragment", a trailing ".git" or "/", and
# with the host in lower case. git+https://github.com/bank/payments@refs/heads/main and
# https://github.com/bank/payments.git are both "https://github.com/bank/payments"; the
# repository must then be equal, never a prefix (github.com/bank/payments-fork is another).
_repository(uri) := concat("", [lower(scheme), "://", lower(host), path]) if {
	u := trim_prefix(uri, "git+")
	[scheme, rest] := split(u, "://")
	no_query := split(split(rest, "#")[0], "?")[0]
	parts := split(no_query, "/")
	host := parts[0]
	p := split(concat("/", array.slice(parts, 1, count(parts))), "@")[0]
	path := _path(trim_suffix(trim_suffix(p, "/"), ".git"))
} else := uri

_path(p) := "" if p == ""

_path(p) := concat("", ["/", p]) if p != ""

# ---------------------------------------------------------------------------------------
# Custom predicates: for each requiredPredicates entry, some verified statement of its
# predicate type whose field (a dot path into the predicate) holds one of allowedValues.

_container_violations contains [c, msg] if {
	some r in _required
	some [c, _, v] in _lookup.values
	not _satisfied(c, r)
	msg := _unsatisfied_message(c, v, r)
}

_satisfied(c, r) if {
	some [c2, _, s] in _statements
	c2 == c
	s.predicateType == r.predicateType
	_field_ok(s, r)
}

_field_ok(_, r) if not _has_field(r)

_field_ok(s, r) if {
	_has_field(r)
	_value_text(_field_value(s, r)) in r.allowedValues
}

_has_field(r) if {
	is_string(r.field)
	r.field != ""
}

_field_value(s, r) := object.get(s.predicate, split(r.field, "."), null) if is_object(s.predicate)

_value_text(x) := x if is_string(x)

_value_text(x) := sprintf("%v", [x]) if not is_string(x)

_unsatisfied_message(c, v, r) := sprintf("container <%s> image <%s> has no verified <%s> statement from %s%s%s", [c.name, c.image, r.predicateType, _from, _rejections(v), _requirement_note(r)]) if {
	not _has_type(c, r.predicateType)
} else := sprintf("container <%s> image <%s> has no verified <%s> statement with <%s> in <%s>; found <%s>%s", [c.name, c.image, r.predicateType, r.field, concat(", ", r.allowedValues), concat(", ", _found(c, r)), _requirement_note(r)])

_has_type(c, t) if {
	some [c2, _, s] in _statements
	c2 == c
	s.predicateType == t
}

_found(c, r) := sort({_value_text(x) |
	some [c2, _, s] in _statements
	c2 == c
	s.predicateType == r.predicateType
	x := _field_value(s, r)
})

_requirement_note(r) := sprintf(" (%s)", [r.description]) if {
	is_string(r.description)
	r.description != ""
} else := ""

# ---------------------------------------------------------------------------------------
# What is wrong with the parameters: every object with containers is denied, naming it.

_list_params := ["authorities", "allowedSourceRepos"]

_bool_params := ["denyTruncated", "failOpen"]

config_problems contains sprintf("%s must be a list of strings, got <%v>", [name, _params[name]]) if {
	some name in _list_params
	not is_array(_params[name])
	_params[name] != null
}

config_problems contains sprintf("%s[%d] must be a non-empty string, got <%v>", [name, i, s]) if {
	some name in _list_params
	some i, s in _params[name]
	not _non_empty_string(s)
}

config_problems contains sprintf("allowedSourceRepos[%d] must be a repository URL such as https://github.com/org/repo, got <%v>", [i, s]) if {
	some i, s in _params.allowedSourceRepos
	_non_empty_string(s)
	not contains(s, "://")
}

config_problems contains sprintf("%s must be a boolean, got <%v>", [name, _params[name]]) if {
	some name in _bool_params
	not is_boolean(_params[name])
	_params[name] != null
}

config_problems contains sprintf("requiredPredicates must be a list of entries, got <%v>", [_params.requiredPredicates]) if {
	_params.requiredPredicates != null
	not is_array(_params.requiredPredicates)
}

config_problems contains sprintf("requiredPredicates[%d] must have a non-empty predicateType, and allowedValues (a non-empty list of strings) exactly when it has a field, got <%v>", [i, r]) if {
	some i, r in _params.requiredPredicates
	not _well_formed_requirement(r)
}

_well_formed_requirement(r) if {
	is_object(r)
	_non_empty_string(r.predicateType)
	not _has_field(r)
	object.get(r, "allowedValues", null) == null
}

_well_formed_requirement(r) if {
	is_object(r)
	_non_empty_string(r.predicateType)
	_has_field(r)
	is_array(r.allowedValues)
	count(r.allowedValues) > 0
	every s in r.allowedValues {
		_non_empty_string(s)
	}
}

_non_empty_string(s) if {
	is_string(s)
	s != ""
}
