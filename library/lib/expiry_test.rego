package lib.imagetrust.expiry_test

import data.lib.imagetrust.expiry

# 2026-06-15T12:00:00Z
now := 1781524800000000000

test_date_applies_through_that_day if {
	expiry.end_ns("2026-06-15") == 1781568000000000000 # 2026-06-16T00:00:00Z
	not expiry.has_passed("2026-06-15") with time.now_ns as now
	expiry.has_passed("2026-06-14") with time.now_ns as now
	not expiry.has_passed("2026-06-16") with time.now_ns as now
}

test_date_time_applies_until_that_instant if {
	expiry.end_ns("2026-06-15T12:00:00Z") == now
	expiry.has_passed("2026-06-15T12:00:00Z") with time.now_ns as now
	not expiry.has_passed("2026-06-15T12:00:01Z") with time.now_ns as now
	expiry.has_passed("2026-06-15T13:00:00+02:00") with time.now_ns as now
	not expiry.has_passed("2026-06-15T11:30:00-01:00") with time.now_ns as now
}

test_malformed_dates if {
	every s in [
		"", "2026-6-15", "15/06/2026", "2026-02-30", "2026-13-01", "2026-06-15T12:00:00",
		"2026-06-15 12:00:00Z", "tomorrow", 20260615, null, true,
	] {
		not expiry.is_valid(s)
		not expiry.has_passed(s) with time.now_ns as now
	}
	expiry.is_valid("2026-06-15")
	expiry.is_valid("2026-06-15T12:00:00.5Z")
}

test_dates_beyond_nanoseconds if {
	expiry.is_valid("2999-12-31")
	not expiry.has_passed("2999-12-31") with time.now_ns as now
	expiry.is_valid("2999-12-31T23:59:59Z")
	not expiry.has_passed("2999-12-31T23:59:59Z") with time.now_ns as now
	expiry.is_valid("2400-02-29")
	not expiry.is_valid("2999-02-29")
	not expiry.is_valid("2999-13-01")
	expiry.is_valid("1500-01-01")
	expiry.has_passed("1500-01-01") with time.now_ns as now
}

test_note if {
	expiry.note("exemption", "ghcr.io/org/*", "2026-06-14", "debugging tool") == "exemption for <ghcr.io/org/*> expired on <2026-06-14> (<debugging tool>)"
}
