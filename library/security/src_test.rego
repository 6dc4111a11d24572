package k8simagevulnerabilities_test

import data.k8simagevulnerabilities

d_a := "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

d_b := "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

counts0 := {"CRITICAL": 0, "HIGH": 0, "MEDIUM": 0, "LOW": 0, "UNKNOWN": 0}

recent := time.format(time.now_ns() - (((2 * 60) * 60) * 1000000000))

old := "2020-01-01T00:00:00Z"

# Finding rows (answer form 2): [id, severity, package, installedVersion, fixedVersion, purl,
# aliases, status, vex], empty columns at the end left out.
f_high := ["CVE-2024-0001", "HIGH", "openssl", "3.0.1", "3.0.2", "pkg:deb/debian/", ["GHSA-aaaa-bbbb-cccc"]]

f_crit_unfixed := ["CVE-2024-0002", "CRITICAL", "bash", "5.1", "", "pkg:deb/debian/bash@", [], "affected"]

f_medium := ["CVE-2024-0003", "MEDIUM", "zlib", "1.2", "1.3"]

f_low_unfixed := ["CVE-2024-0004", "LOW", "tar", "1.34", "", "", [], "will_not_fix"]

# A purl the row does not shorten (its name is not the package) and a fix known only by status.
f_maven := ["CVE-2021-44228", "CRITICAL", "org.apache.logging.log4j:log4j-core", "2.14.1", "", "pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1", [], "fixed"]

scan(findings) := {
	"form": 2, "image": "r.io/x@sha256:aaaa", "digest": d_a, "scanned": true, "source": "attestation", "format": "cosign-vuln/trivy",
	"authority": "ci-trivy", "signed": true, "scanner": {"name": "trivy", "version": "0.74.0", "db": {"version": ""}},
	"scannedAt": recent, "scansConsidered": 1, "counts": counts0, "fixableCounts": counts0,
	"findings": findings, "findingsTotal": count(findings), "findingsTruncated": false,
}

clean := scan([])

values := {
	"r.io/clean:1": clean,
	"r.io/high:1": scan([f_high]),
	"r.io/medium:1": scan([f_medium]),
	"r.io/crit-unfixed:1": scan([f_crit_unfixed]),
	"r.io/low-unfixed:1": scan([f_low_unfixed]),
	"r.io/old:1": object.union(clean, {"scannedAt": old}),
	"r.io/no-time:1": object.union(clean, {"scannedAt": ""}),
	"r.io/none:1": {"form": 2, "image": "r.io/none:1", "digest": d_a, "scanned": false, "reason": "no-scan", "signed": false, "findings": [], "counts": counts0},
	"r.io/untrusted:1": {
		"form": 2, "image": "r.io/untrusted:1", "digest": d_a, "scanned": false, "reason": "no-trusted-scan", "signed": false, "findings": [], "counts": counts0,
		"rejected": [{"kind": "attestation", "reason": "no configured authority verified it"}],
	},
	"r.io/other-scanner:1": object.union(clean, {"authority": "someone"}),
	"r.io/operator:1": object.union(clean, {"authority": "trivy-operator", "signed": false, "source": "trivy-operator"}),
	"r.io/vex:1": scan([array.concat(f_high, ["", {"status": "not_affected", "justification": "vulnerable_code_not_in_execute_path", "authority": "vendor"}])]),
	"r.io/vex-untrusted:1": scan([array.concat(f_high, ["", {"status": "not_affected", "authority": "stranger"}])]),
	"r.io/vex-investigating:1": scan([array.concat(f_high, ["", {"status": "under_investigation", "authority": "vendor"}])]),
	"r.io/truncated:1": object.union(scan([f_medium]), {"counts": object.union(counts0, {"MEDIUM": 1, "HIGH": 3}), "findingsTotal": 4, "findingsTruncated": true}),
	"r.io/truncated-ok:1": object.union(scan([f_high]), {"counts": object.union(counts0, {"HIGH": 1, "LOW": 7}), "findingsTotal": 8, "findingsTruncated": true}),
	"r.io/weird:1": scan([["CVE-2024-0003", "SEVERE", "zlib", "1.2", "1.3"]]),
	"r.io/index:1": object.union(clean, {"platforms": [
		object.union(clean, {"platform": "linux/amd64"}),
		object.union(clean, {"platform": "linux/arm64", "authority": "someone"}),
	]}),
	"r.io/maven:1": scan([f_maven]),
	"r.io/form-1:1": object.union(object.remove(scan([]), {"form"}), {"findings": [{"id": "CVE-2024-0001", "severity": "HIGH"}]}),
	"r.io/bad-row:1": scan([["CVE-2024-0001"], "CVE-2024-0002"]),
	concat("", ["r.io/pinned@", d_b]): clean,
	"r.io/garbage:1": "nope",
}

key_errors := {
	"r.io/down:1": "unavailable: registry r.io returned 503",
	"r.io/notfound:1": "not found: manifest unknown",
}

# mock answers every key with its image's whole answer, whatever the key's query: the rules
# must decide the same on the whole list as on the findings the query asks for (the provider's
# filter is tested against the template in provider/internal/scan).
mock(req) := {
	"responses": [[k, values[image(k)]] | some k in req.keys; values[image(k)]],
	"errors": [[k, key_errors[image(k)]] | some k in req.keys; key_errors[image(k)]],
	"status_code": 200,
	"system_error": "",
}

image(k) := split(k, "#")[0]

mock_system_error(_) := {"responses": null, "errors": null, "status_code": 500, "system_error": "connection refused"}

# The provider answers only when asked for exactly these keys, in one call.
mock_strict(req) := mock(req) if {
	req == {"provider": "imagetrust-scan", "keys": ["r.io/clean:1#above=MEDIUM", "r.io/high:1#above=MEDIUM"]}
} else := {"responses": [], "errors": [], "status_code": 200, "system_error": sprintf("unexpected request %v", [req])}

pod(images) := {"review": {
	"kind": {"kind": "Pod"},
	"object": {"kind": "Pod", "spec": {"containers": [{"name": sprintf("c%d", [i]), "image": img} | some i, img in images]}},
}}

msgs(images, params) := m if {
	m := {v.msg | some v in k8simagevulnerabilities.violation} with input as object.union(pod(images), {"parameters": params})
		with external_data as mock
}

bank := {"scannerAuthorities": ["ci-trivy"], "maxSeverity": "MEDIUM"}

high_msg := "container <c0> image <r.io/high:1> has <CVE-2024-0001> (<HIGH>) in package <openssl> <3.0.1>, fixed in <3.0.2>; fixable findings are allowed up to <MEDIUM>"

test_clean_admitted if {
	msgs(["r.io/clean:1", "r.io/medium:1"], bank) == set()
}

test_high_denied_with_cve if {
	msgs(["r.io/high:1"], bank) == {high_msg}
}

test_one_batched_call if {
	m := {v.msg | some v in k8simagevulnerabilities.violation} with input as object.union(pod(["r.io/high:1", "r.io/clean:1", "r.io/high:1"]), {"parameters": bank})
		with external_data as mock_strict
	m == {high_msg, replace(high_msg, "<c0>", "<c2>")}
}

test_default_max_severity_is_medium if {
	msgs(["r.io/high:1", "r.io/medium:1"], {}) == {high_msg}
}

test_unfixed_threshold if {
	msgs(["r.io/crit-unfixed:1"], bank) == {"container <c0> image <r.io/crit-unfixed:1> has <CVE-2024-0002> (<CRITICAL>) in package <bash> <5.1>, no fix available; unfixed findings are allowed up to <MEDIUM>"}
	msgs(["r.io/high:1", "r.io/crit-unfixed:1"], object.union(bank, {"maxUnfixedSeverity": "CRITICAL"})) == {high_msg}
	msgs(["r.io/low-unfixed:1"], object.union(bank, {"maxUnfixedSeverity": "NONE"})) == {"container <c0> image <r.io/low-unfixed:1> has <CVE-2024-0004> (<LOW>) in package <tar> <1.34>, no fix available; unfixed findings are allowed up to <NONE>"}
}

test_max_severity_none if {
	msgs(["r.io/medium:1"], {"maxSeverity": "none"}) == {"container <c0> image <r.io/medium:1> has <CVE-2024-0003> (<MEDIUM>) in package <zlib> <1.2>, fixed in <1.3>; fixable findings are allowed up to <NONE>"}
}

test_unknown_severity_word_is_worst if {
	msgs(["r.io/weird:1"], {"maxSeverity": "HIGH"}) == {"container <c0> image <r.io/weird:1> has <CVE-2024-0003> (<SEVERE>) in package <zlib> <1.2>, fixed in <1.3>; fixable findings are allowed up to <HIGH>"}
	msgs(["r.io/weird:1"], {"maxSeverity": "CRITICAL"}) == set()
}

test_no_scan if {
	msgs(["r.io/none:1"], bank) == {"container <c0> image <r.io/none:1> has no trusted vulnerability scan (<no-scan>); requireScan is true"}
	msgs(["r.io/untrusted:1"], bank) == {"container <c0> image <r.io/untrusted:1> has no trusted vulnerability scan (<no-trusted-scan>): <no configured authority verified it>; requireScan is true"}
	msgs(["r.io/none:1"], object.union(bank, {"requireScan": false})) == set()
}

test_scanner_authority if {
	msgs(["r.io/other-scanner:1"], bank) == {"container <c0> image <r.io/other-scanner:1> was scanned by <someone>, not one of the allowed scanner authorities <ci-trivy>"}
	msgs(["r.io/other-scanner:1"], {}) == set()
}

test_operator_only_when_named if {
	msgs(["r.io/operator:1"], {}) == {"container <c0> image <r.io/operator:1> has only an unsigned scan from <trivy-operator>; name it in scannerAuthorities to accept it"}
	msgs(["r.io/operator:1"], {"scannerAuthorities": ["trivy-operator"]}) == set()
}

test_platforms_checked_each if {
	msgs(["r.io/index:1"], bank) == {"container <c0> image <r.io/index:1> (platform <linux/arm64>) was scanned by <someone>, not one of the allowed scanner authorities <ci-trivy>"}
}

test_scan_age if {
	msgs(["r.io/old:1", "r.io/clean:1"], object.union(bank, {"maxScanAge": "168h"})) == {"container <c0> image <r.io/old:1> was last scanned at <2020-01-01T00:00:00Z> by <ci-trivy>, older than maxScanAge <168h>"}
	msgs(["r.io/no-time:1"], object.union(bank, {"maxScanAge": "168h"})) == {"container <c0> image <r.io/no-time:1> has a scan from <ci-trivy> with no scan time; maxScanAge is <168h>"}
	msgs(["r.io/old:1"], bank) == set()
}

test_blocked_ids if {
	msgs(["r.io/medium:1"], object.union(bank, {"blockedIds": ["cve-2024-0003"]})) == {"container <c0> image <r.io/medium:1> has <CVE-2024-0003> (<MEDIUM>) in package <zlib> <1.2>, fixed in <1.3>; <CVE-2024-0003> is in blockedIds"}
	msgs(["r.io/vex:1"], object.union(bank, {"vexAuthorities": ["vendor"], "blockedIds": ["GHSA-aaaa-bbbb-cccc"]})) == {"container <c0> image <r.io/vex:1> has <CVE-2024-0001> (<HIGH>) in package <openssl> <3.0.1>, fixed in <3.0.2>; <GHSA-AAAA-BBBB-CCCC> is in blockedIds"}
}

test_vex if {
	msgs(["r.io/vex:1"], object.union(bank, {"vexAuthorities": ["vendor"]})) == set()
	count(msgs(["r.io/vex:1"], bank)) == 1
	count(msgs(["r.io/vex-untrusted:1"], object.union(bank, {"vexAuthorities": ["vendor"]}))) == 1
	count(msgs(["r.io/vex-investigating:1"], object.union(bank, {"vexAuthorities": ["vendor"]}))) == 1
}

ignore_high := {"id": "CVE-2024-0001", "reason": "debugging tool", "expires": "2099-12-31"}

test_ignore if {
	msgs(["r.io/high:1"], object.union(bank, {"ignore": [ignore_high]})) == set()
	msgs(["r.io/high:1"], object.union(bank, {"ignore": [object.union(ignore_high, {"id": "ghsa-aaaa-bbbb-cccc"})]})) == set()
	msgs(["r.io/high:1"], object.union(bank, {"ignore": [object.union(ignore_high, {"images": ["r.io/high:*"], "packages": ["pkg:deb/debian/openssl"]})]})) == set()
	msgs(["r.io/high:1"], object.union(bank, {"ignore": [object.union(ignore_high, {"packages": ["pkg:deb/debian/openssl@3.0.1"]})]})) == set()
}

test_ignore_scoped_elsewhere if {
	msgs(["r.io/high:1"], object.union(bank, {"ignore": [object.union(ignore_high, {"images": ["r.io/other:*"]})]})) == {high_msg}
	msgs(["r.io/high:1"], object.union(bank, {"ignore": [object.union(ignore_high, {"packages": ["pkg:deb/debian/openssl-dev"]})]})) == {high_msg}
	msgs(["r.io/high:1"], object.union(bank, {"ignore": [object.union(ignore_high, {"packages": ["pkg:deb/debian/openssl@3.0.0"]})]})) == {high_msg}
	msgs(["r.io/high:1"], object.union(bank, {"ignore": [object.union(ignore_high, {"packages": ["pkg:deb/debian/open"]})]})) == {high_msg}
}

test_ignore_expired_says_so if {
	msgs(["r.io/high:1"], object.union(bank, {"ignore": [object.union(ignore_high, {"expires": "2020-01-31"})]})) == {concat("", [high_msg, "; ignore for <CVE-2024-0001> expired on <2020-01-31> (<debugging tool>)"])}
}

test_truncated_fails_safe if {
	msgs(["r.io/truncated:1"], bank) == {"container <c0> image <r.io/truncated:1> has 3 <HIGH> findings but the provider listed 0 of them (its list of 4 findings is truncated); unlisted findings cannot be checked"}
	msgs(["r.io/truncated-ok:1"], {"maxSeverity": "HIGH"}) == set()
	msgs(["r.io/truncated-ok:1"], {"maxSeverity": "HIGH", "blockedIds": ["CVE-2024-9999"]}) == {"container <c0> image <r.io/truncated-ok:1>: the provider's list of 8 findings is truncated; the unlisted ones cannot be checked against blockedIds"}
	msgs(["r.io/high:1"], {"maxSeverity": "HIGH", "blockedIds": ["CVE-2024-9999"]}) == set()
}

test_digest_pinned_mismatch if {
	img := concat("", ["r.io/pinned@", d_b])
	msgs([img], bank) == {sprintf("container <c0> image <%s> pins <%s> but the provider scanned <%s>", [img, d_b, d_a])}
}

test_lookup_errors if {
	msgs(["r.io/down:1"], bank) == {"container <c0> image <r.io/down:1> could not be checked for vulnerabilities: provider <imagetrust-scan> error: unavailable: registry r.io returned 503; lookup errors deny (failOpen is false)"}
	msgs(["r.io/down:1"], object.union(bank, {"failOpen": true})) == set()
	msgs(["r.io/notfound:1"], object.union(bank, {"failOpen": true})) == {"container <c0> image <r.io/notfound:1> was not checked for vulnerabilities: provider <imagetrust-scan> error: not found: manifest unknown"}
	msgs(["r.io/garbage:1"], bank) == {"container <c0> image <r.io/garbage:1> was not checked for vulnerabilities: provider <imagetrust-scan> answered <nope>, not an object"}
}

test_system_error if {
	m := {v.msg | some v in k8simagevulnerabilities.violation} with input as object.union(pod(["r.io/clean:1"]), {"parameters": bank})
		with external_data as mock_system_error
	m == {"container <c0> image <r.io/clean:1> could not be checked for vulnerabilities: provider <imagetrust-scan> system error: connection refused; lookup errors deny (failOpen is false)"}
}

test_exempt_images if {
	msgs(["r.io/high:1"], object.union(bank, {"exemptImages": [{"image": "r.io/high:*", "reason": "debugging tool"}]})) == set()
}

test_config_problems if {
	msgs(["r.io/clean:1"], {"maxSeverity": "SEVERE"}) == {"constraint is misconfigured: maxSeverity must be one of CRITICAL, HIGH, MEDIUM, LOW, UNKNOWN, NONE, got <SEVERE>; every image is denied until it is fixed"}
	msgs(["r.io/clean:1"], {"maxScanAge": "a week"}) == {"constraint is misconfigured: maxScanAge must be a duration such as 168h, got <a week>; every image is denied until it is fixed"}
	msgs(["r.io/clean:1"], {"ignore": [{"id": "CVE-1", "reason": "x"}]}) == {`constraint is misconfigured: ignore[0] must have a non-empty id and reason and an expires date (an RFC 3339 date (2026-12-31) or date-time (2026-12-31T18:00:00Z)), got <{"id": "CVE-1", "reason": "x"}>; every image is denied until it is fixed`}
	msgs(["r.io/clean:1"], {"ignore": [object.union(ignore_high, {"packages": "pkg:deb/x"})]}) == {`constraint is misconfigured: ignore[0].packages must be a list of strings, got <pkg:deb/x>; every image is denied until it is fixed`}
	msgs(["r.io/clean:1"], {"scannerAuthorities": "ci"}) == {"constraint is misconfigured: scannerAuthorities must be a list of strings, got <ci>; every image is denied until it is fixed"}
	msgs(["r.io/clean:1"], {"requireScan": "yes"}) == {"constraint is misconfigured: requireScan must be a boolean, got <yes>; every image is denied until it is fixed"}
	msgs(["r.io/clean:1"], {"ignore": "CVE-1"}) == {"constraint is misconfigured: ignore must be a list of entries, got <CVE-1>; every image is denied until it is fixed"}
	msgs(["r.io/clean:1"], {"blockedIds": [""]}) == {`constraint is misconfigured: blockedIds[0] must be a non-empty string, got <>; every image is denied until it is fixed`}
}

test_purl_columns_expand if {
	crit := object.union(bank, {"maxUnfixedSeverity": "CRITICAL"})
	msgs(["r.io/crit-unfixed:1"], object.union(crit, {"maxUnfixedSeverity": "HIGH", "ignore": [{"id": "CVE-2024-0002", "reason": "r", "expires": "2099-12-31", "packages": ["pkg:deb/debian/bash@5.1"]}]})) == set()
	msgs(["r.io/crit-unfixed:1"], object.union(crit, {"maxUnfixedSeverity": "HIGH", "ignore": [{"id": "CVE-2024-0002", "reason": "r", "expires": "2099-12-31", "packages": ["pkg:deb/debian/bash@5.0"]}]})) != set()
	ignore_log4j := {"id": "CVE-2021-44228", "reason": "r", "expires": "2099-12-31"}
	msgs(["r.io/maven:1"], object.union(bank, {"ignore": [object.union(ignore_log4j, {"packages": ["pkg:maven/org.apache.logging.log4j/log4j-core"]})]})) == set()
	msgs(["r.io/maven:1"], object.union(bank, {"ignore": [object.union(ignore_log4j, {"packages": ["pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1"]})]})) == set()
}

test_fix_known_only_by_status if {
	msgs(["r.io/maven:1"], bank) == {"container <c0> image <r.io/maven:1> has <CVE-2021-44228> (<CRITICAL>) in package <org.apache.logging.log4j:log4j-core> <2.14.1>, fixed (the scanner names no version); fixable findings are allowed up to <MEDIUM>"}
}

test_other_answer_form_denied if {
	msgs(["r.io/form-1:1"], bank) == {
		"container <c0> image <r.io/form-1:1>: the provider answered in form <null>, this template reads form <2>; upgrade the provider or the template so that they match",
		`container <c0> image <r.io/form-1:1>: the provider listed the finding <{"id": "CVE-2024-0001", "severity": "HIGH"}>, which is not a row [id, severity, ...]; it cannot be checked`,
	}
}

test_malformed_rows_denied if {
	msgs(["r.io/bad-row:1"], bank) == {
		`container <c0> image <r.io/bad-row:1>: the provider listed the finding <["CVE-2024-0001"]>, which is not a row [id, severity, ...]; it cannot be checked`,
		"container <c0> image <r.io/bad-row:1>: the provider listed the finding <CVE-2024-0002>, which is not a row [id, severity, ...]; it cannot be checked",
	}
}

# The query of the keys: the findings the constraint can deny, and no other.
test_findings_query if {
	query({}) == "above=MEDIUM"
	query(bank) == "above=MEDIUM"
	query({"maxSeverity": "high", "maxUnfixedSeverity": "LOW"}) == "above=LOW"
	query({"maxSeverity": "UNKNOWN"}) == "above=UNKNOWN"
	query({"maxSeverity": "CRITICAL", "blockedIds": ["cve-2021-44228", "GHSA-jfh8-c2jp-5v3q", "RHSA-2024:1234"]}) == "above=CRITICAL;ids=CVE-2021-44228,GHSA-JFH8-C2JP-5V3Q,RHSA-2024:1234"
	startswith(query({"blockedIds": [sprintf("CVE-2024-%d", [i]) | some i in numbers.range(1, k8simagevulnerabilities.max_query_ids)]}), "above=MEDIUM;ids=")
}

# The whole list: no severity floor, too many blockedIds for a key, an id that cannot be
# written in one, or a severity the template does not know.
test_findings_query_whole_list if {
	query({"maxSeverity": "NONE"}) == ""
	query({"maxSeverity": "HIGH", "maxUnfixedSeverity": "NONE"}) == ""
	query({"blockedIds": [sprintf("CVE-2024-%d", [i]) | some i in numbers.range(1, k8simagevulnerabilities.max_query_ids + 1)]}) == ""
	query({"blockedIds": ["CVE-1", "a,b"]}) == ""
	query({"blockedIds": ["CVE 1"]}) == ""
	query({"maxSeverity": "SEVERE"}) == ""
}

query(params) := q if {
	q := k8simagevulnerabilities.findings_query with input as object.union(pod(["r.io/clean:1"]), {"parameters": params})
}

# The call asks for each image with the query.
test_keys_carry_the_query if {
	m := {v.msg | some v in k8simagevulnerabilities.violation} with input as object.union(pod(["r.io/high:1", "r.io/clean:1"]), {"parameters": {"maxSeverity": "HIGH", "blockedIds": ["CVE-2024-0004"]}})
		with external_data as mock_echo
	some msg in m
	contains(msg, "system error: r.io/clean:1#above=HIGH;ids=CVE-2024-0004 r.io/high:1#above=HIGH;ids=CVE-2024-0004;")
}

mock_echo(req) := {"responses": [], "errors": [], "status_code": 200, "system_error": concat(" ", req.keys)}

# An image that carries a query of its own ("#above=CRITICAL" to hide its findings) is not a
# reference: it is denied as invalid and never sent to the provider.
test_image_with_a_query_is_invalid_and_never_asked if {
	m := {v.msg | some v in k8simagevulnerabilities.violation} with input as object.union(pod(["r.io/high:1#above=CRITICAL;ids=A"]), {"parameters": bank})
		with external_data as mock_echo
	m == {"container <c0> image <r.io/high:1#above=CRITICAL;ids=A> is not a valid image reference: contains a character outside the reference grammar [a-z0-9._-/:@]; write [registry/]repository[:tag][@digest] as the container runtime parses it"}
}
