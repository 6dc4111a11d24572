# METADATA
# title: External-data lookups
# description: >-
#   One batched external_data call per review and what its answer means per container:
#   whole-batch errors (no response, system error, HTTP status), per-key errors split into
#   transient ones (failOpen may admit them) and definite ones (always deny), missing
#   answers, and the values. Any template that asks an imagetrust provider uses this.
package lib.imagetrust.externaldata

# transient_classes are the per-key error classes (the provider's first words before ": ";
# provider/internal/wire Class values with Transient) that mean "could not look it up right
# now". Only these, a whole-batch error or a missing answer are lookup failures that failOpen
# may admit; every other per-key error is a definite answer and denies.
transient_classes := {"unavailable", "timed out"}

# is_transient is true for a per-key error message of a transient class.
is_transient(msg) if {
	is_string(msg)
	some class in transient_classes
	startswith(msg, concat("", [class, ": "]))
}

# lookup asks provider, in one call, about the images of the checked containers (a set of
# [container, parsed reference], as review.checked) and returns, per container:
#   "failures": [container, reason]      lookups that failed for availability reasons;
#   "errors":   [container, message]     definite per-key errors;
#   "invalid":  [container, value]       answers that are not objects;
#   "values":   [container, ref, value]  answers (objects).
# It also holds "provider" and "batch_error" (why the whole call failed, or "").
lookup(provider, checked) := lookup_query(provider, checked, "")

# lookup_query is lookup with query on every key: the key of an image is key(image, query).
# The provider loads and caches the image alone; the query shapes its answer (for the scan
# provider, which findings it lists: docs/scan.md, "Asking for less").
lookup_query(provider, checked, query) := _classify(provider, checked, query, _call(provider, keys_query(checked, query)))

# keys are the images of the checked containers as written, de-duplicated and sorted: the
# keys of the call.
keys(checked) := keys_query(checked, "")

# keys_query are the keys of the checked containers' images with query.
keys_query(checked, query) := sort({key(c.image, query) | some [c, _] in checked})

# key is the key of image with query: "<image>#<query>" ('#' is never part of a reference),
# the image alone when query is empty.
key(image, "") := image

key(image, query) := concat("#", [image, query]) if query != ""

_call(provider, images) := {"batch_error": "", "errors": [], "responses": []} if {
	count(images) == 0
} else := _read(provider, r) if {
	r := external_data({"provider": provider, "keys": images})
} else := _failed(sprintf("provider <%s> gave no response", [provider]))

_read(provider, r) := _failed(e) if {
	e := _batch_error(provider, r)
} else := {"batch_error": "", "errors": _list(r, "errors"), "responses": _list(r, "responses")}

_failed(why) := {"batch_error": why, "errors": [], "responses": []}

_batch_error(provider, r) := sprintf("provider <%s> system error: %s", [provider, s]) if {
	s := r.system_error
	is_string(s)
	s != ""
} else := sprintf("provider <%s> answered with HTTP status <%v>", [provider, code]) if {
	code := r.status_code
	not code in {0, 200} # 0: every key came from Gatekeeper's response cache
}

_list(r, name) := l if {
	l := r[name]
	is_array(l)
} else := []

_classify(provider, checked, query, call) := {
	"provider": provider,
	"batch_error": call.batch_error,
	"failures": _failures(provider, checked, query, call.batch_error, errs, object.keys(errors) | object.keys(responses)),
	"errors": {[c, e] | some [c, e] in errs; not is_transient(e)},
	"invalid": {[c, v] | some [c, _, v] in vals; not is_object(v)},
	"values": {[c, ref, v] | some [c, ref, v] in vals; is_object(v)},
} if {
	errors := _by_key(call.errors)
	responses := _by_key(call.responses)
	errs := {[c, e] | some [c, _] in checked; some e in object.get(errors, key(c.image, query), [])}
	vals := {[c, ref, v] | some [c, ref] in checked; some v in object.get(responses, key(c.image, query), [])}
}

# _by_key maps each key of the [key, value] pairs to its values, in one pass when every key
# appears once (the provider's answer), else grouping (a repeated key cannot conflict).
_by_key(pairs) := {k: [v] | some [k, v] in pairs} if {
	count({k | some [k, _] in pairs}) == count(pairs)
} else := {k: [v | some [k2, v] in pairs; k2 == k] | some k in {k | some [k, _] in pairs}}

# _failures: the whole batch failed, or per-key transient errors and keys without an answer.
_failures(provider, checked, query, batch_error, errs, answered) := {[c, batch_error] | some [c, _] in checked} if {
	batch_error != ""
} else := _answered(provider, checked, query, errs, answered)

_answered(provider, checked, query, errs, answered) := transient | missing if {
	transient := {[c, sprintf("provider <%s> error: %s", [provider, e])] | some [c, e] in errs; is_transient(e)}
	missing := {[c, sprintf("provider <%s> returned no answer for this image", [provider])] |
		some [c, _] in checked
		not key(c.image, query) in answered
	}
}

# violations returns [container, message] for what denies in a lookup result: failures
# unless fail_open (a boolean), definite errors and answers that are not objects. verb says
# what the lookup establishes ("verified").
violations(result, fail_open, verb) := (_failure_violations(result, fail_open, verb) | errors) | invalid if {
	errors := {[c, msg] |
		some [c, e] in result.errors
		msg := sprintf("container <%s> image <%s> was not %s: provider <%s> error: %s", [c.name, c.image, verb, result.provider, e])
	}
	invalid := {[c, msg] |
		some [c, v] in result.invalid
		msg := sprintf("container <%s> image <%s> was not %s: provider <%s> answered <%v>, not an object", [c.name, c.image, verb, result.provider, v])
	}
}

_failure_violations(_, true, _) := set()

_failure_violations(result, false, verb) := {[c, msg] |
	some [c, reason] in result.failures
	msg := sprintf("container <%s> image <%s> could not be %s: %s; lookup errors deny (failOpen is false)", [c.name, c.image, verb, reason])
}
