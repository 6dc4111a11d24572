package server

import (
	"bytes"

	"github.com/imagetrust/imagetrust/provider/internal/wire"
)

// decodeCanonical decodes the ProviderRequest Gatekeeper sends — one object with the fields
// "apiVersion", "kind" and "request" (itself holding only "keys": an array of strings), each at
// most once, in any order, whitespace between tokens — without reflection. Every string must
// be printable ASCII without escapes (every image reference is). ok is false for anything
// else, and the caller then decodes with encoding/json, so both accept the same requests and
// read them alike (FuzzDecodeCanonicalMatchesEncodingJSON).
func decodeCanonical(body []byte) (req wire.ProviderRequest, ok bool) {
	d := canonical{b: body}
	if !d.byte('{') {
		return req, false
	}
	var seenAPI, seenKind, seenRequest bool
	for first := true; ; first = false {
		if d.byte('}') {
			break
		}
		if !first && !d.byte(',') {
			return req, false
		}
		field, ok := d.str()
		if !ok || !d.byte(':') {
			return req, false
		}
		switch {
		case field == "apiVersion" && !seenAPI:
			seenAPI = true
			if req.APIVersion, ok = d.str(); !ok {
				return req, false
			}
		case field == "kind" && !seenKind:
			seenKind = true
			k, ok := d.str()
			if !ok {
				return req, false
			}
			req.Kind = wire.ProviderKind(k)
		case field == "request" && !seenRequest:
			seenRequest = true
			if req.Request.Keys, ok = d.request(); !ok {
				return req, false
			}
		default:
			return req, false // unknown or repeated field: encoding/json decides
		}
	}
	d.space()
	return req, d.i == len(d.b)
}

// canonical is the reader of decodeCanonical.
type canonical struct {
	b []byte
	i int
}

func (d *canonical) space() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// byte consumes c after optional whitespace.
func (d *canonical) byte(c byte) bool {
	d.space()
	if d.i < len(d.b) && d.b[d.i] == c {
		d.i++
		return true
	}
	return false
}

// str reads a string of printable ASCII without escapes.
func (d *canonical) str() (string, bool) {
	if !d.byte('"') {
		return "", false
	}
	start := d.i
	for ; d.i < len(d.b); d.i++ {
		switch c := d.b[d.i]; {
		case c == '"':
			s := string(d.b[start:d.i])
			d.i++
			return s, true
		case c < 0x20 || c >= 0x7f || c == '\\':
			return "", false
		}
	}
	return "", false
}

// request reads {"keys":[...]}.
func (d *canonical) request() ([]string, bool) {
	if !d.byte('{') {
		return nil, false
	}
	if field, ok := d.str(); !ok || field != "keys" || !d.byte(':') || !d.byte('[') {
		return nil, false
	}
	keys := make([]string, 0, bytes.Count(d.b[d.i:], []byte{'"'})/2)
	if !d.byte(']') {
		for {
			k, ok := d.str()
			if !ok {
				return nil, false
			}
			keys = append(keys, k)
			if d.byte(']') {
				break
			}
			if !d.byte(',') {
				return nil, false
			}
		}
	}
	return keys, d.byte('}')
}
