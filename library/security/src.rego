# METADATA
# title: Image vulnerabilities
# description: >-
#   Images must have a vulnerability scan signed by an allowed scanner authority, not older
#   than maxScanAge, with no finding above maxSeverity (fixable) or maxUnfixedSeverity
#   (unfixed) unless a trusted VEX statement or an ignore entry (with reason and expiry)
#   covers it, and no finding in blockedIds. The scan comes from one batched external_data
#   call to the imagetrust-scan provider. Lookup errors deny unless failOpen; invalid
#   references are denied.
package k8simagevulnerabilities

import data.lib.imagetrust.exempt
import data.lib.imagetrust.expiry
import data.lib.imagetrust.externaldata
import data.lib.imagetrust.review

# provider is the Gatekeeper Provider object the template calls.
provider := "imagetrust-scan"

_params := review.params

_fail_open := object.get(_params, "failOpen", false) == true

_require_scan := object.get(_params, "requireScan", true) != false

_strings(name) := [s | some s in _params[name]; is_string(s)] if {
	is_array(_params[name])
} else := []

_scanner_authorities := _strings("scannerAuthorities")

_vex_authorities := _strings("vexAuthorities")

_blocked := {upper(s) | some s in _strings("blockedIds")}

# Severity ranks, as the provider normalises them; NONE allows no finding at all.
_rank := {"CRITICAL": 4, "HIGH": 3, "MEDIUM": 2, "LOW": 1, "UNKNOWN": 0, "NONE": -1}

_max_severity := upper(s) if {
	s := _params.maxSeverity
	is_string(s)
} else := "MEDIUM"

_max_unfixed := upper(s) if {
	s := _params.maxUnfixedSeverity
	is_string(s)
} else := _max_severity

_max_age_ns := time.parse_duration_ns(_params.maxScanAge) if is_string(_params.maxScanAge)

# The one batched call for the images of the checked containers (lib/externaldata.rego).
_lookup := externaldata.lookup_query(provider, review.checked, findings_query)

# findings_query asks the provider to list only the findings this constraint can deny: those
# above the lower of maxSeverity and maxUnfixedSeverity, and those in blockedIds. Counts,
# totals and truncation still cover every finding, so the rules below decide and word their
# messages exactly as over the whole list; the answer is smaller, and so is the work of
# reading it. Without a severity floor (NONE), with more blockedIds than the provider takes,
# or with one it could not be asked for, the whole list is asked for ("").
findings_query := concat("", ["above=", _names[_floor], _ids_query]) if {
	_floor >= 0
	count(_blocked) <= max_query_ids
	every id in _blocked {
		regex.match(`^[A-Z0-9][A-Z0-9._:/+-]*$`, id)
	}
} else := ""

_names := {r: s | some s, r in _rank}

# max_query_ids is the most ids a query may carry (the provider's scan.MaxFilterIDs, which
# TestTemplateQueryIDsBound holds it to).
max_query_ids := 64

# _floor is the rank at or below which no finding denies (unless blocked): the lower of the
# two limits.
_floor := min({_rank[_max_severity], _rank[_max_unfixed]})

_ids_query := "" if {
	count(_blocked) == 0
} else := concat("", [";ids=", concat(",", sort(_blocked))])

# Invalid references and a misconfigured constraint.
violation contains {"msg": msg} if {
	some msg in review.violations(config_problems)
}

violation contains {"msg": msg} if {
	some msg in review.messages(_container_violations)
}

_container_violations contains [c, msg] if {
	some [c, msg] in externaldata.violations(_lookup, _fail_open, "checked for vulnerabilities")
}

# The provider must have answered for the digest the node will pull.
_container_violations contains [c, msg] if {
	some [c, ref, v] in _lookup.values
	ref.digest != ""
	object.get(v, "digest", "") != ref.digest
	msg := sprintf("container <%s> image <%s> pins <%s> but the provider scanned <%v>", [c.name, c.image, ref.digest, object.get(v, "digest", "")])
}

# ---------------------------------------------------------------------------------------
# Presence, trust and age of the scan.

_container_violations contains [c, msg] if {
	_require_scan
	some [c, _, v] in _lookup.values
	v.scanned != true
	msg := sprintf("container <%s> image <%s> has no trusted vulnerability scan (<%v>)%s; requireScan is true", [c.name, c.image, object.get(v, "reason", "no-scan"), _rejections(v)])
}

_rejections(v) := sprintf(": %s", [concat("; ", rs)]) if {
	rs := [sprintf("<%v>", [r.reason]) | some r in object.get(v, "rejected", []); is_object(r)]
	count(rs) > 0
} else := ""

# _scans contains [container, value, scan] for every scan of a scanned image: its own, or
# each platform's for an index answered from its platforms.
_scans contains [c, v, s] if {
	some [c, _, v] in _lookup.values
	v.scanned == true
	some s in _parts(v)
}

_parts(v) := [v] if {
	count(object.get(v, "platforms", [])) == 0
} else := [p | some p in v.platforms; is_object(p)]

_where(s) := sprintf(" (platform <%s>)", [s.platform]) if {
	is_string(s.platform)
	s.platform != ""
} else := ""

_container_violations contains [c, msg] if {
	count(_scanner_authorities) > 0
	some [c, _, s] in _scans
	not object.get(s, "authority", "") in _scanner_authorities
	msg := sprintf("container <%s> image <%s>%s was scanned by <%v>, not one of the allowed scanner authorities <%s>", [c.name, c.image, _where(s), object.get(s, "authority", ""), concat(", ", sort(_scanner_authorities))])
}

# Without scannerAuthorities, any signed scan of a provider scanner authority counts (an
# unsigned operator report only when named).
_container_violations contains [c, msg] if {
	count(_scanner_authorities) == 0
	some [c, _, s] in _scans
	s.signed != true
	msg := sprintf("container <%s> image <%s>%s has only an unsigned scan from <%v>; name it in scannerAuthorities to accept it", [c.name, c.image, _where(s), object.get(s, "authority", "")])
}

_container_violations contains [c, msg] if {
	_max_age_ns
	some [c, _, s] in _scans
	not _scan_time(s)
	msg := sprintf("container <%s> image <%s>%s has a scan from <%v> with no scan time; maxScanAge is <%s>", [c.name, c.image, _where(s), object.get(s, "authority", ""), _params.maxScanAge])
}

_container_violations contains [c, msg] if {
	some [c, _, s] in _scans
	t := _scan_time(s)
	time.now_ns() - t > _max_age_ns
	msg := sprintf("container <%s> image <%s>%s was last scanned at <%s> by <%v>, older than maxScanAge <%s>", [c.name, c.image, _where(s), s.scannedAt, object.get(s, "authority", ""), _params.maxScanAge])
}

_scan_time(s) := time.parse_rfc3339_ns(s.scannedAt) if {
	is_string(s.scannedAt)
	s.scannedAt != ""
}

# ---------------------------------------------------------------------------------------
# Findings. The answer (form 2, docs/scan.md) lists each finding as a row:
#   [id, severity, package, installedVersion, fixedVersion, purl, aliases, status, vex]
# with the empty columns at its end left out.

# The answer form this template reads: an answer of any other form is denied, never misread.
answer_form := 2

_container_violations contains [c, msg] if {
	some [c, _, v] in _lookup.values
	object.get(v, "form", null) != answer_form
	msg := sprintf("container <%s> image <%s>: the provider answered in form <%v>, this template reads form <%d>; upgrade the provider or the template so that they match", [c.name, c.image, object.get(v, "form", null), answer_form])
}

_findings contains [c, ref, f] if {
	some [c, ref, v] in _lookup.values
	v.scanned == true
	some f in object.get(v, "findings", [])
	_is_row(f)
}

# _is_row: a finding row has at least its id and severity, both strings.
_is_row(f) if {
	is_array(f)
	is_string(f[0])
	is_string(f[1])
}

_container_violations contains [c, msg] if {
	some [c, _, v] in _lookup.values
	v.scanned == true
	some f in object.get(v, "findings", [])
	not _is_row(f)
	msg := sprintf("container <%s> image <%s>: the provider listed the finding <%v>, which is not a row [id, severity, ...]; it cannot be checked", [c.name, c.image, f])
}

# Columns of a row: 0 id, 1 severity, 2 package, 3 installedVersion, 4 fixedVersion, 5 purl,
# 6 aliases, 7 status, 8 vex. A column left out is undefined (f[i]), which every test below
# reads as empty; the messages read them through _column.
_column(f, i) := x if {
	x := f[i]
} else := ""

# _purl is the row's package URL in full. The row shortens it by what it already says: ending
# in "/", the package, "@" and the installed version follow; ending in "@", the installed
# version follows.
_purl(f) := concat("", [p, _column(f, 2), "@", _column(f, 3)]) if {
	p := _column(f, 5)
	endswith(p, "/")
} else := concat("", [p, _column(f, 3)]) if {
	p := _column(f, 5)
	endswith(p, "@")
} else := _column(f, 5)

_ids(f) := {upper(f[0])} | {upper(x) | some x in f[6]; is_string(x)}

_fixable(f) if f[4] != ""

_fixable(f) if f[7] == "fixed"

_limit(f) := _max_severity if _fixable(f)

else := _max_unfixed

_over(f) if _rank[f[1]] > _rank[_limit(f)]

# An unknown severity word is treated as CRITICAL: never allowed by accident.
_over(f) if {
	not _rank[f[1]]
	_rank[_limit(f)] < 4
}

_vex_ok(f) if {
	f[8].status in {"not_affected", "fixed"}
	f[8].authority in _vex_authorities
}

_kind(f) := "fixable" if _fixable(f)

else := "unfixed"

_fix_text(f) := sprintf("fixed in <%s>", [f[4]]) if f[4] != ""

else := "fixed (the scanner names no version)" if _fixable(f)

else := "no fix available"

_describe(c, f) := sprintf("container <%s> image <%s> has <%s> (<%v>) in package <%v> <%v>, %s", [c.name, c.image, f[0], f[1], _column(f, 2), _column(f, 3), _fix_text(f)])

_container_violations contains [c, msg] if {
	some [c, ref, f] in _findings
	_over(f)
	not _vex_ok(f)
	not _ignored(ref, f)
	msg := sprintf("%s; %s findings are allowed up to <%s>%s", [_describe(c, f), _kind(f), _limit(f), _lapsed_note(ref, f)])
}

_container_violations contains [c, msg] if {
	count(_blocked) > 0
	some [c, _, f] in _findings
	some id in _ids(f)
	id in _blocked
	msg := sprintf("%s; <%s> is in blockedIds", [_describe(c, f), id])
}

# Findings the provider counted but did not list: when some of a severity that would deny are
# missing from the list, the image is denied (the unlisted ones cannot be ignored by name).
_container_violations contains [c, msg] if {
	some [c, _, v] in _lookup.values
	v.scanned == true
	v.findingsTruncated == true
	some sev, n in object.get(v, "counts", {})
	_rank[sev] > _floor
	listed := count([f | some f in v.findings; _is_row(f); f[1] == sev])
	n > listed
	msg := sprintf("container <%s> image <%s> has %d <%s> findings but the provider listed %d of them (its list of %d findings is truncated); unlisted findings cannot be checked", [c.name, c.image, n, sev, listed, v.findingsTotal])
}

# blockedIds name findings of any severity, so a truncated list cannot clear them: with
# blockedIds set, an image whose list the provider truncated is denied.
_container_violations contains [c, msg] if {
	count(_blocked) > 0
	some [c, _, v] in _lookup.values
	v.scanned == true
	v.findingsTruncated == true
	msg := sprintf("container <%s> image <%s>: the provider's list of %d findings is truncated; the unlisted ones cannot be checked against blockedIds", [c.name, c.image, v.findingsTotal])
}

# ---------------------------------------------------------------------------------------
# Ignore entries: {id, reason, expires, images (globs), packages (purl prefixes)}.

_ignores := [e | some e in _params.ignore; is_object(e)] if is_array(_params.ignore)

else := []

_ignore_applies(ref, f, e) if {
	upper(e.id) in _ids(f)
	_ignore_images_match(ref, e)
	_ignore_packages_match(f, e)
}

_ignore_images_match(_, e) if count(object.get(e, "images", [])) == 0

_ignore_images_match(ref, e) if {
	some g in e.images
	exempt.matches(ref, {"regex": exempt.glob_to_regex(g)})
}

_ignore_packages_match(_, e) if count(object.get(e, "packages", [])) == 0

_ignore_packages_match(f, e) if {
	some p in e.packages
	_purl_prefix(p, _purl(f))
}

# _purl_prefix: p names the package of purl (any version) or, with "@version", exactly it.
_purl_prefix(p, purl) if {
	base := split(split(purl, "?")[0], "#")[0]
	{base == p, startswith(base, concat("", [p, "@"]))}[true]
}

_in_force(e) if {
	_well_formed_ignore(e)
	not expiry.has_passed(e.expires)
}

_ignored(ref, f) if {
	some e in _ignores
	_in_force(e)
	_ignore_applies(ref, f, e)
}

_lapsed_note(ref, f) := concat("", ["; ", concat("; ", notes)]) if {
	notes := [expiry.note("ignore", e.id, e.expires, e.reason) |
		some e in _ignores
		_well_formed_ignore(e)
		expiry.has_passed(e.expires)
		_ignore_applies(ref, f, e)
	]
	count(notes) > 0
} else := ""

_well_formed_ignore(e) if {
	_non_empty_string(e.id)
	_non_empty_string(e.reason)
	expiry.is_valid(e.expires)
}

# ---------------------------------------------------------------------------------------
# What is wrong with the parameters: every object with containers is denied, naming it.

_list_params := ["scannerAuthorities", "vexAuthorities", "blockedIds"]

_bool_params := ["requireScan", "failOpen"]

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

config_problems contains sprintf("%s must be a boolean, got <%v>", [name, _params[name]]) if {
	some name in _bool_params
	not is_boolean(_params[name])
	_params[name] != null
}

config_problems contains sprintf("%s must be one of CRITICAL, HIGH, MEDIUM, LOW, UNKNOWN, NONE, got <%v>", [name, _params[name]]) if {
	some name in ["maxSeverity", "maxUnfixedSeverity"]
	_params[name] != null
	not _valid_severity(_params[name])
}

_valid_severity(s) if {
	is_string(s)
	_rank[upper(s)]
}

config_problems contains sprintf("maxScanAge must be a duration such as 168h, got <%v>", [a]) if {
	a := _params.maxScanAge
	a != null
	not _positive_duration(a)
}

_positive_duration(a) if {
	is_string(a)
	time.parse_duration_ns(a) > 0
}

config_problems contains sprintf("ignore must be a list of entries, got <%v>", [_params.ignore]) if {
	_params.ignore != null
	not is_array(_params.ignore)
}

config_problems contains sprintf("ignore[%d] must have a non-empty id and reason and an expires date (%s), got <%v>", [i, expiry.expected, e]) if {
	some i, e in _params.ignore
	not _well_formed_ignore(e)
}

config_problems contains sprintf("ignore[%d].%s must be a list of strings, got <%v>", [i, name, e[name]]) if {
	some i, e in _params.ignore
	is_object(e)
	some name in ["images", "packages"]
	e[name] != null
	not _string_list(e[name])
}

_string_list(l) if {
	is_array(l)
	every s in l {
		_non_empty_string(s)
	}
}

_non_empty_string(s) if {
	is_string(s)
	s != ""
}
