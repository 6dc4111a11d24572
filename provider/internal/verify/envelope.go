package verify

// scanEnvelope reads a DSSE envelope in the form signers write it — one JSON object whose
// keys are exactly "payloadType", "payload" and "signatures" (objects of "keyid" and "sig"),
// each at most once, every string printable ASCII without escapes — in one pass without
// encoding/json, and returns it with the payload's base64 text as a slice of raw. ok is false
// for anything else (other keys or spellings, escapes, nulls, repeated keys, malformed JSON),
// and the caller decodes with encoding/json as before: an envelope read here is exactly what
// json.Unmarshal reads from it (FuzzScanEnvelope), only without validating and unquoting its
// ~27 KB base64 string twice.
func scanEnvelope(raw []byte) (env *dsseEnvelope, payload []byte, ok bool) {
	s := envScanner{b: raw}
	env = &dsseEnvelope{}
	var seenType, seenPayload, seenSigs bool
	ok = s.object(func(key []byte) bool {
		switch string(key) {
		case "payloadType":
			v, ok := s.str()
			if !ok || seenType {
				return false
			}
			env.PayloadType, seenType = string(v), true
		case "payload":
			v, ok := s.str()
			if !ok || seenPayload {
				return false
			}
			env.Payload, payload, seenPayload = string(v), v, true
		case "signatures":
			if seenSigs {
				return false
			}
			seenSigs = true
			return s.signatures(env)
		default:
			return false
		}
		return true
	})
	if !ok || !s.end() {
		return nil, nil, false
	}
	return env, payload, true
}

// envScanner is a position in a JSON text, for scanEnvelope's strict subset only.
type envScanner struct {
	b []byte
	i int
}

func (s *envScanner) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// next skips space and consumes c.
func (s *envScanner) next(c byte) bool {
	s.space()
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// peek skips space and reports whether c comes next, without consuming it.
func (s *envScanner) peek(c byte) bool {
	s.space()
	return s.i < len(s.b) && s.b[s.i] == c
}

// end reports whether only space is left.
func (s *envScanner) end() bool {
	s.space()
	return s.i == len(s.b)
}

// str reads a string of printable ASCII without escapes and returns its content.
func (s *envScanner) str() ([]byte, bool) {
	if !s.next('"') {
		return nil, false
	}
	start := s.i
	for ; s.i < len(s.b); s.i++ {
		switch c := s.b[s.i]; {
		case c == '"':
			v := s.b[start:s.i]
			s.i++
			return v, true
		case c < 0x20 || c >= 0x7f || c == '\\':
			return nil, false
		}
	}
	return nil, false
}

// object reads {"key": value, ...}; member reads each value after its key and colon.
func (s *envScanner) object(member func(key []byte) bool) bool {
	if !s.next('{') {
		return false
	}
	if s.next('}') {
		return true
	}
	for {
		key, ok := s.str()
		if !ok || !s.next(':') || !member(key) {
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

// signatures reads the signatures array: objects of "keyid" and "sig", each at most once.
func (s *envScanner) signatures(env *dsseEnvelope) bool {
	if !s.next('[') {
		return false
	}
	if s.next(']') {
		return true
	}
	for {
		if !s.peek('{') {
			return false
		}
		var sig struct {
			KeyID string `json:"keyid"`
			Sig   string `json:"sig"`
		}
		var seenKey, seenSig bool
		ok := s.object(func(key []byte) bool {
			v, ok := s.str()
			switch {
			case !ok:
				return false
			case string(key) == "keyid" && !seenKey:
				sig.KeyID, seenKey = string(v), true
			case string(key) == "sig" && !seenSig:
				sig.Sig, seenSig = string(v), true
			default:
				return false
			}
			return true
		})
		if !ok {
			return false
		}
		env.Signatures = append(env.Signatures, sig)
		if s.next(']') {
			return true
		}
		if !s.next(',') {
			return false
		}
	}
}
