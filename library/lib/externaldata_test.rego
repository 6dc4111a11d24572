package lib.imagetrust.externaldata_test

import data.lib.imagetrust.externaldata
import data.lib.imagetrust.reference

c(name, image) := [{"name": name, "image": image, "field": "containers"}, reference.parse(image)]

a := c("a", "r.io/a:1")

b := c("b", "r.io/b:1")

d := c("d", "r.io/down:1")

n := c("n", "r.io/notfound:1")

answers := {
	"r.io/a:1": {"digest": "sha256:aa"},
	"r.io/b:1": "garbage",
}

key_errors := {
	"r.io/down:1": "unavailable: registry r.io returned 503",
	"r.io/notfound:1": "not found: manifest unknown",
}

mock(req) := {
	"responses": [[k, answers[k]] | some k in req.keys; answers[k]],
	"errors": [[k, key_errors[k]] | some k in req.keys; key_errors[k]],
	"status_code": 200,
	"system_error": "",
}

mock_undefined(req) := x if {
	req.keys == ["none"]
	x := 1
}

mock_system_error(_) := {"responses": [], "errors": [], "status_code": 200, "system_error": "overloaded"}

mock_status(req) := object.union(mock(req), {"status_code": 503})

mock_cached(req) := object.union(mock(req), {"status_code": 0})

mock_repeats(req) := object.union(mock(req), {"responses": [["r.io/a:1", {"digest": "sha256:aa"}], ["r.io/a:1", {"digest": "sha256:bb"}]]})

mock_malformed(_) := {"responses": "x", "errors": [["r.io/a:1"]], "status_code": 200}

test_transient_classes if {
	externaldata.transient_classes == {"unavailable", "timed out"}
	externaldata.is_transient("unavailable: registry down")
	externaldata.is_transient("timed out: after 2s")
	not externaldata.is_transient("unavailable")
	not externaldata.is_transient("not found: unavailable: x")
	not externaldata.is_transient("denied: no")
	not externaldata.is_transient(7)
}

test_keys_sorted_and_deduplicated if {
	externaldata.keys({b, a, c("a2", "r.io/a:1")}) == ["r.io/a:1", "r.io/b:1"]
}

test_answers_per_container if {
	r := externaldata.lookup("p", {a, b, d, n, c("m", "r.io/missing:1")}) with external_data as mock
	r.provider == "p"
	r.batch_error == ""
	r.values == {[a[0], a[1], {"digest": "sha256:aa"}]}
	r.invalid == {[b[0], "garbage"]}
	r.errors == {[n[0], "not found: manifest unknown"]}
	r.failures == {
		[d[0], "provider <p> error: unavailable: registry r.io returned 503"],
		[{"name": "m", "image": "r.io/missing:1", "field": "containers"}, "provider <p> returned no answer for this image"],
	}
}

test_no_call_without_keys if {
	r := externaldata.lookup("p", set()) with external_data as mock_system_error
	r == {"provider": "p", "batch_error": "", "failures": set(), "errors": set(), "invalid": set(), "values": set()}
}

test_batch_errors if {
	none := externaldata.lookup("p", {a, n}) with external_data as mock_undefined
	none.batch_error == "provider <p> gave no response"
	down := externaldata.lookup("p", {a, n}) with external_data as mock_system_error
	down.batch_error == "provider <p> system error: overloaded"
	r := externaldata.lookup("p", {a, n}) with external_data as mock_status
	r.batch_error == "provider <p> answered with HTTP status <503>"
	r.failures == {[a[0], "provider <p> answered with HTTP status <503>"], [n[0], "provider <p> answered with HTTP status <503>"]}
	r.errors == set()
	r.values == set()
}

test_cached_answers_have_status_0 if {
	r := externaldata.lookup("p", {a}) with external_data as mock_cached
	r.batch_error == ""
	count(r.values) == 1
}

test_repeated_key_does_not_conflict if {
	r := externaldata.lookup("p", {a}) with external_data as mock_repeats
	count(r.values) == 2
}

test_malformed_answer_is_a_missing_answer if {
	r := externaldata.lookup("p", {a}) with external_data as mock_malformed
	r.failures == {[a[0], "provider <p> returned no answer for this image"]}
}

test_violations if {
	r := externaldata.lookup("p", {a, b, d, n}) with external_data as mock
	externaldata.violations(r, false, "checked") == {
		[d[0], "container <d> image <r.io/down:1> could not be checked: provider <p> error: unavailable: registry r.io returned 503; lookup errors deny (failOpen is false)"],
		[n[0], "container <n> image <r.io/notfound:1> was not checked: provider <p> error: not found: manifest unknown"],
		[b[0], "container <b> image <r.io/b:1> was not checked: provider <p> answered <garbage>, not an object"],
	}
	externaldata.violations(r, true, "checked") == {
		[n[0], "container <n> image <r.io/notfound:1> was not checked: provider <p> error: not found: manifest unknown"],
		[b[0], "container <b> image <r.io/b:1> was not checked: provider <p> answered <garbage>, not an object"],
	}
}
