// Package jsonpass reads a JSON text in one pass, for decoders that read one known form
// themselves and leave every other form to encoding/json.
//
// Everything a Scanner accepts is valid JSON as encoding/json defines it, and every value it
// returns is what json.Unmarshal decodes from the same text. Where that would take more than
// a plain read it answers false instead, and the caller decodes with encoding/json: a key of
// an object the caller reads that is not printable ASCII without escapes (the keys of a value
// skipped whole may be any string), nesting deeper than maxDepth, a number
// that is not an integer where one is asked for. A caller matches keys with Unknown, which
// also answers false for a key encoding/json would match to a field only case-insensitively.
package jsonpass

import (
	"encoding/binary"
	"encoding/json"
	"strconv"
)

// maxDepth bounds nesting, far below encoding/json's own limit (10,000): deeper texts are
// left to encoding/json.
const maxDepth = 1000

// Scanner is a position in a JSON text.
type Scanner struct {
	b     []byte
	i     int
	depth int
}

// New starts a Scanner at the beginning of b.
func New(b []byte) *Scanner { return &Scanner{b: b} }

func (s *Scanner) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// Peek skips space and returns the next byte without consuming it (0 at the end).
func (s *Scanner) Peek() byte {
	s.space()
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

// next skips space and consumes c.
func (s *Scanner) next(c byte) bool {
	if s.Peek() == c && s.i < len(s.b) {
		s.i++
		return true
	}
	return false
}

// End reports whether only space is left.
func (s *Scanner) End() bool {
	s.space()
	return s.i == len(s.b)
}

// Null consumes a null literal if one comes next.
func (s *Scanner) Null() bool {
	s.space()
	if len(s.b)-s.i >= 4 && string(s.b[s.i:s.i+4]) == "null" {
		s.i += 4
		return true
	}
	return false
}

// Object reads an object, calling member with each key (its bytes between the quotes) after
// the key and its colon; member reads the value. It answers false when no object comes next,
// the object is malformed, a key is not printable ASCII without escapes, or member answers
// false.
func (s *Scanner) Object(member func(key []byte) bool) bool {
	return s.object(s.key, member)
}

// object reads an object whose keys key reads.
func (s *Scanner) object(key func() ([]byte, bool), member func(key []byte) bool) bool {
	if !s.next('{') {
		return false
	}
	if s.depth++; s.depth > maxDepth {
		return false
	}
	defer func() { s.depth-- }()
	if s.next('}') {
		return true
	}
	for {
		k, ok := key()
		if !ok || !s.next(':') || !member(k) {
			return false
		}
		if s.next('}') {
			return true
		}
		if !s.next(',') {
			return false
		}
	}
}

// key reads an object key of printable ASCII without escapes.
func (s *Scanner) key() ([]byte, bool) {
	if !s.next('"') {
		return nil, false
	}
	start := s.i
	for ; s.i < len(s.b); s.i++ {
		switch c := s.b[s.i]; {
		case c == '"':
			k := s.b[start:s.i]
			s.i++
			return k, true
		case c < 0x20 || c >= 0x7f || c == '\\':
			return nil, false
		}
	}
	return nil, false
}

// anyKey reads an object key of any valid string, returning its bytes as they stand in the
// text (for skipping: the key is not compared).
func (s *Scanner) anyKey() ([]byte, bool) {
	s.space()
	start := s.i
	if _, ok := s.str(); !ok {
		return nil, false
	}
	return s.b[start+1 : s.i-1], true
}

// Array reads an array, calling elem for each element; elem reads it. It answers false when
// no array comes next, the array is malformed or elem answers false.
func (s *Scanner) Array(elem func() bool) bool {
	if !s.next('[') {
		return false
	}
	if s.depth++; s.depth > maxDepth {
		return false
	}
	defer func() { s.depth-- }()
	if s.next(']') {
		return true
	}
	for {
		if !elem() {
			return false
		}
		if s.next(']') {
			return true
		}
		if !s.next(',') {
			return false
		}
	}
}

// String reads a string and returns its value as json.Unmarshal decodes it.
func (s *Scanner) String() (string, bool) {
	s.space()
	start := s.i
	plain, ok := s.str()
	if !ok {
		return "", false
	}
	raw := s.b[start+1 : s.i-1]
	if plain {
		return string(raw), true
	}
	var buf [64]byte
	if out, ok := appendUnescapedASCII(buf[:0], raw); ok {
		return string(out), true
	}
	var v string
	if json.Unmarshal(s.b[start:s.i], &v) != nil {
		return "", false
	}
	return v, true
}

// AppendString reads a string and appends its value, as json.Unmarshal decodes it, to b. A
// reader that keeps many strings appends them to one buffer instead of allocating each. When
// it answers false, b's contents up to its length are as they were.
func (s *Scanner) AppendString(b []byte) ([]byte, bool) {
	s.space()
	start := s.i
	plain, ok := s.str()
	if !ok {
		return b, false
	}
	raw := s.b[start+1 : s.i-1]
	if plain {
		return append(b, raw...), true
	}
	if out, ok := appendUnescapedASCII(b, raw); ok {
		return out, true
	}
	var v string
	if json.Unmarshal(s.b[start:s.i], &v) != nil {
		return b, false
	}
	return append(b, v...), true
}

// Plain reads a string whose content is printable ASCII without escapes and returns its bytes
// as they stand in the text, not copied (they are its value). It answers false for any other
// string, whose value is then left to String or encoding/json.
func (s *Scanner) Plain() ([]byte, bool) {
	s.space()
	start := s.i
	if plain, ok := s.str(); !ok || !plain {
		return nil, false
	}
	return s.b[start+1 : s.i-1], true
}

// appendUnescapedASCII appends the content of a valid string whose bytes are all ASCII and
// whose escapes all stand for ASCII characters (encoding/json writes "&" as \u0026): for
// those, every decoder gives the same bytes. ok is false for anything else (surrogates, other
// \u escapes, bytes beyond ASCII: encoding/json's own rules decide those).
func appendUnescapedASCII(out, raw []byte) ([]byte, bool) {
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c >= 0x80 {
			return out, false
		}
		if c != '\\' {
			out = append(out, c)
			continue
		}
		i++
		switch raw[i] {
		case '"', '\\', '/':
			out = append(out, raw[i])
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			// str checked the four hex digits.
			r := hexVal(raw[i+1])<<12 | hexVal(raw[i+2])<<8 | hexVal(raw[i+3])<<4 | hexVal(raw[i+4])
			if r >= 0x80 {
				return out, false
			}
			out = append(out, byte(r))
			i += 4
		}
	}
	return out, true
}

// hexVal is the value of a hex digit.
func hexVal(c byte) uint16 {
	switch {
	case c >= '0' && c <= '9':
		return uint16(c - '0')
	case c >= 'a' && c <= 'f':
		return uint16(c - 'a' + 10)
	}
	return uint16(c - 'A' + 10)
}

// plainByte marks the bytes a string's content may hold without ending it or needing a
// decoder: printable ASCII other than '"' and '\\'.
var plainByte = func() (t [256]bool) {
	for c := 0x20; c < 0x7f; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// Eight bytes at a time: special8 reports whether any byte of x is not a plainByte (a control
// character, '"', '\\', DEL or beyond ASCII), by the carry tricks of "Bit Twiddling Hacks"
// (hasless, haszero of x XOR c), which are exact for whether any byte matches.
const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

func special8(x uint64) bool {
	q, bs, del := x^(ones*'"'), x^(ones*'\\'), x^(ones*0x7f)
	return ((x-ones*0x20)&^x|(q-ones)&^q|(bs-ones)&^bs|(del-ones)&^del|x)&highs != 0
}

// str consumes a valid string; plain reports that it has neither escapes nor bytes outside
// printable ASCII (its value is then its bytes).
func (s *Scanner) str() (plain, ok bool) {
	b := s.b
	if s.i >= len(b) || b[s.i] != '"' {
		return false, false
	}
	plain = true
	i := s.i + 1
	for {
		for i+8 <= len(b) && !special8(binary.LittleEndian.Uint64(b[i:])) {
			i += 8
		}
		for i < len(b) && plainByte[b[i]] {
			i++
		}
		if i >= len(b) {
			return false, false
		}
		switch c := b[i]; {
		case c == '"':
			s.i = i + 1
			return plain, true
		case c < 0x20:
			return false, false
		case c == '\\':
			plain = false
			i++
			if i >= len(b) {
				return false, false
			}
			switch b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i++
			case 'u':
				if len(b)-i < 5 || !hex4(b[i+1:i+5]) {
					return false, false
				}
				i += 5
			default:
				return false, false
			}
		default: // DEL and bytes beyond ASCII
			plain = false
			i++
		}
	}
}

func hex4(b []byte) bool {
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9', c >= 'a' && c <= 'f', c >= 'A' && c <= 'F':
		default:
			return false
		}
	}
	return true
}

// Int reads a number that json.Unmarshal decodes into an int without error.
func (s *Scanner) Int() (int, bool) {
	s.space()
	start := s.i
	if !s.number() {
		return 0, false
	}
	n, err := strconv.ParseInt(string(s.b[start:s.i]), 10, strconv.IntSize)
	if err != nil {
		return 0, false
	}
	return int(n), true
}

// number consumes a number of JSON's grammar.
func (s *Scanner) number() bool {
	b, i := s.b, s.i
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	default:
		return false
	}
	if i < len(b) && b[i] == '.' {
		i++
		d := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == d {
			return false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		d := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == d {
			return false
		}
	}
	s.i = i
	return true
}

// Value reads any value, checking that it is valid JSON, and returns its bytes.
func (s *Scanner) Value() ([]byte, bool) {
	s.space()
	start := s.i
	if !s.skip() {
		return nil, false
	}
	return s.b[start:s.i], true
}

// skip consumes one value (space already skipped).
func (s *Scanner) skip() bool {
	if s.i >= len(s.b) {
		return false
	}
	switch c := s.b[s.i]; c {
	case '{':
		// Its keys are skipped too: any valid string is one.
		return s.object(s.anyKey, func([]byte) bool { s.space(); return s.skip() })
	case '[':
		return s.Array(func() bool { s.space(); return s.skip() })
	case '"':
		_, ok := s.str()
		return ok
	case 't':
		return s.literal("true")
	case 'f':
		return s.literal("false")
	case 'n':
		return s.literal("null")
	default:
		return s.number()
	}
}

func (s *Scanner) literal(l string) bool {
	if len(s.b)-s.i >= len(l) && string(s.b[s.i:s.i+len(l)]) == l {
		s.i += len(l)
		return true
	}
	return false
}

// Unknown skips the value of a key that is none of fields (the JSON names of the fields the
// caller reads, whose exact keys it handles itself). It answers false — leave the text to
// encoding/json — when key matches one of fields other than exactly (encoding/json matches
// keys to fields case-insensitively; here also ignoring '-' and '_', to be safe), or the
// value is malformed.
func (s *Scanner) Unknown(key []byte, fields []string) bool {
	for _, f := range fields {
		if looselyEqual(key, f) {
			return false
		}
	}
	_, ok := s.Value()
	return ok
}

// looselyEqual compares ASCII key and name ignoring case, '-' and '_'.
func looselyEqual(key []byte, name string) bool {
	i, j := 0, 0
	for {
		for i < len(key) && (key[i] == '-' || key[i] == '_') {
			i++
		}
		for j < len(name) && (name[j] == '-' || name[j] == '_') {
			j++
		}
		if i == len(key) || j == len(name) {
			return i == len(key) && j == len(name)
		}
		if lower(key[i]) != lower(name[j]) {
			return false
		}
		i++
		j++
	}
}

func lower(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// Once marks bit in seen and reports whether it was not yet marked: a key met a second time
// is left to encoding/json (which merges or replaces by the value's type).
func Once(seen *uint64, bit uint) bool {
	m := uint64(1) << bit
	if *seen&m != 0 {
		return false
	}
	*seen |= m
	return true
}
