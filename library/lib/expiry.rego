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

# has_passed is true when the expiry s is valid and now is at or after its end.
has_passed(s) if time.now_ns() >= end_ns(s)

# note is what a message says about an entry that no longer applies: what it was for
# ("exemption", "ignore"), the subject (a glob, a CVE id), the date as written and the reason.
note(what, subject, s, reason) := sprintf("%s for <%s> expired on <%s> (<%s>)", [what, subject, s, reason])
