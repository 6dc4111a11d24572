# METADATA
# title: Expiry dates
# description: >-
#   Entries that stop applying after a date (exemptImages[].expires, CVE ignores): an RFC 3339
#   date (2026-12-31, in force through that day, UTC) or date-time (2026-12-31T18:00:00Z, in
#   force until that instant). A malformed date never applies and is reported.
package lib.imagetrust.expiry

_date_re := `^[0-9]{4}-[0-9]{2}-[0-9]{2}$`

_day_ns := ((24 * 60) * 60) * 1000000000

# expected describes the accepted forms, for messages about a malformed date.
expected := "an RFC 3339 date (2026-12-31) or date-time (2026-12-31T18:00:00Z)"

# end_ns is the instant (nanoseconds since the epoch) from which an entry expiring on s no
# longer applies: the start of the next day (UTC) for a date, the instant for a date-time.
# Undefined when s is neither.
end_ns(s) := time.parse_ns("2006-01-02", s) + _day_ns if {
	is_string(s)
	regex.match(_date_re, s)
} else := time.parse_rfc3339_ns(s) if {
	is_string(s)
}

# is_valid is true when s is an RFC 3339 date or date-time.
is_valid(s) if end_ns(s)

is_valid(s) if {
	not end_ns(s)
	_valid_beyond_range(s)
}

# has_passed is true when the expiry s is valid and now is at or after its end.
has_passed(s) if time.now_ns() >= end_ns(s)

has_passed(s) if {
	not end_ns(s)
	_valid_beyond_range(s)
	to_number(substring(s, 0, 4)) < 1970
}

# Nanoseconds since the epoch cover 1678 to 2262 only. A date outside that range is checked
# in a year of that range with the same calendar (the Gregorian calendar repeats every 400
# years): "2999-12-31" is valid and far in the future, "2999-02-29" is not a date.
_valid_beyond_range(s) if {
	is_string(s)
	regex.match(`^[0-9]{4}-`, s)
	end_ns(concat("", [format_int(_same_calendar(to_number(substring(s, 0, 4))), 10), substring(s, 4, -1)]))
}

_same_calendar(year) := 2000 + (year % 400) if {
	year % 400 < 200
} else := 1600 + (year % 400)

# note is what a message says about an entry that no longer applies: what it was for
# ("exemption", "ignore"), the subject (a glob, a CVE id), the date as written and the reason.
note(what, subject, s, reason) := sprintf("%s for <%s> expired on <%s> (<%s>)", [what, subject, s, reason])
