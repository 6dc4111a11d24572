package scan

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Filter is what a /v1/scan key may ask after its image: "<image>#above=<SEVERITY>" lists only
// the findings ranked above that severity, and ";ids=<ID>,<ID>…" also every finding with one
// of those ids or aliases (case-insensitive). It is how K8sImageVulnerabilities asks for the
// findings it can deny and no others: a finding at or below both its maxSeverity and
// maxUnfixedSeverity and not in its blockedIds denies nothing, so it is left out of the
// answer (docs/scan.md, "Asking for less"). Everything else in the answer — counts, fixable
// counts, findingsTotal, findingsTruncated, platforms — still covers every finding, so a
// filtered answer decides exactly as the whole one does. A finding whose severity is not one
// of the five is always listed.
//
// The cache keeps the whole answer, once per image: keys with different filters share it.
// A query is written with characters JSON writes as they are (';', not '&', which
// encoding/json, Gatekeeper's encoder, escapes as \u0026 and every reader must unescape).
type Filter struct {
	// above is the rank a finding must exceed to be listed (Severity.Rank).
	above int
	// ids are the ids to list whatever their severity.
	ids idSet
}

// idSet is a set of upper-cased ids with idBit of each or'ed into bits, so that two sets
// most often tell they share no id without comparing a string.
type idSet struct {
	ids  []string
	bits uint64
}

// add adds id, upper-cased.
func (s *idSet) add(id string) {
	id = strings.ToUpper(id)
	s.ids = append(s.ids, id)
	s.bits |= idBit(id)
}

// meets reports whether s and o share an id.
func (s *idSet) meets(o *idSet) bool {
	if s.bits&o.bits == 0 {
		return false
	}
	for _, id := range s.ids {
		if slices.Contains(o.ids, id) {
			return true
		}
	}
	return false
}

// MaxFilterIDs bounds the ids of one filter. The template sends no filter when its
// blockedIds are more.
const MaxFilterIDs = 64

// unlistedRank is the rank of a finding whose severity is not one of the five: above every
// filter's.
const unlistedRank = 5

// filterQueryForm is how a query is written, for errors.
const filterQueryForm = "above=<CRITICAL|HIGH|MEDIUM|LOW|UNKNOWN>[;ids=<id>,<id>...]"

// ParseFilter parses a key's query. Every error names what is wrong and the form expected.
func ParseFilter(q string) (*Filter, error) {
	f, err := parseFilter(q)
	if err != nil {
		return nil, fmt.Errorf("%w; want %s", err, filterQueryForm)
	}
	return f, nil
}

func parseFilter(q string) (*Filter, error) {
	if q == "" {
		return nil, errors.New("empty query")
	}
	f := &Filter{above: -1}
	var haveIDs bool
	for part := range strings.SplitSeq(q, ";") {
		name, val, ok := strings.Cut(part, "=")
		if !ok {
			return nil, fmt.Errorf("parameter %q has no value", part)
		}
		switch name {
		case "above":
			if f.above >= 0 {
				return nil, errors.New("above given twice")
			}
			s := Severity(val)
			if !s.known() {
				return nil, fmt.Errorf("above=%q is not a severity", val)
			}
			f.above = s.Rank()
		case "ids":
			if haveIDs {
				return nil, errors.New("ids given twice")
			}
			haveIDs = true
			for id := range strings.SplitSeq(val, ",") {
				if id == "" || strings.ContainsFunc(id, invalidIDRune) {
					return nil, fmt.Errorf("ids: %q is not an id", id)
				}
				f.ids.add(id)
			}
			if n := len(f.ids.ids); n > MaxFilterIDs {
				return nil, fmt.Errorf("ids: %d ids, more than %d", n, MaxFilterIDs)
			}
		default:
			return nil, fmt.Errorf("unknown parameter %q", name)
		}
	}
	if f.above < 0 {
		return nil, errors.New("above is required")
	}
	return f, nil
}

// invalidIDRune: ids are printable ASCII without a space or the query's own punctuation.
func invalidIDRune(r rune) bool { return r <= ' ' || r >= 0x7f || strings.ContainsRune("#;&=,", r) }

// lists reports whether the filter lists r (a nil filter lists every finding).
func (f *Filter) lists(r *row) bool {
	return f == nil || r.rank > f.above || r.ids.meets(&f.ids)
}

// rowRank is the rank a filter compares: Severity.Rank, unlistedRank for a word that is not
// one of the five.
func rowRank(s Severity) int {
	if !s.known() {
		return unlistedRank
	}
	return s.Rank()
}

// FilterAnswer is a /v1/scan answer, as JSON, the way a key with query q gets it: its findings
// as Filter lists them, every other field as it is. Offline suites answer a key with a query
// from the fixture of its image with it. What is not an answer with a list of findings is
// returned unchanged, and so is a finding that is not a row: the template refuses both.
func FilterAnswer(q string, answer json.RawMessage) (json.RawMessage, error) {
	f, err := ParseFilter(q)
	if err != nil {
		return nil, err
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(answer, &obj) != nil || obj == nil {
		return answer, nil
	}
	var rows []json.RawMessage
	if json.Unmarshal(obj["findings"], &rows) != nil || rows == nil {
		return answer, nil
	}
	kept := make([]json.RawMessage, 0, len(rows))
	for _, r := range rows {
		var fd Finding
		if json.Unmarshal(r, &fd) != nil || f.lists(newRow("", &fd)) {
			kept = append(kept, r)
		}
	}
	if obj["findings"], err = json.Marshal(kept); err != nil {
		return nil, err
	}
	return json.Marshal(obj)
}

// idBit is the bit an upper-cased id sets in an idSet's bits (FNV-1a, modulo 64): a row none
// of whose bits a filter has cannot list by id, so most rows a filter does not list are passed
// over without comparing a string.
func idBit(id string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(id); i++ {
		h = (h ^ uint64(id[i])) * 1099511628211
	}
	return 1 << (h % 64)
}
