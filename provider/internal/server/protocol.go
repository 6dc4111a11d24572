package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"

	"github.com/imagetrust/imagetrust/provider/internal/jsonpass"
	"github.com/imagetrust/imagetrust/provider/internal/wire"
)

// API versions of externaldata.gatekeeper.sh requests the provider accepts. Gatekeeper sends
// v1beta1 (frameworks NewProviderRequest); v1alpha1 is the older spelling of the same format.
var acceptedAPIVersions = []string{
	"externaldata.gatekeeper.sh/v1beta1",
	"externaldata.gatekeeper.sh/v1alpha1",
}

// ResponseAPIVersion is the apiVersion of every response.
const ResponseAPIVersion = "externaldata.gatekeeper.sh/v1beta1"

// RequestError is a problem with a whole request: it is answered with a systemError and no items.
type RequestError struct {
	Status int    // HTTP status of the answer
	Msg    string // the systemError text
}

func (e *RequestError) Error() string { return e.Msg }

func badRequest(format string, args ...any) *RequestError {
	return &RequestError{Status: http.StatusBadRequest, Msg: fmt.Sprintf(format, args...)}
}

// DecodeRequest parses a ProviderRequest body and returns its keys. Every failure is a
// *RequestError whose message says what is wrong: empty or malformed JSON, trailing data, a wrong
// kind or apiVersion, or more than maxKeys keys (maxKeys <= 0: no cap).
func DecodeRequest(body []byte, maxKeys int) ([]string, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, badRequest("empty request body; expected a ProviderRequest (kind %q, apiVersion %q, request.keys)", wire.ProviderRequestKind, ResponseAPIVersion)
	}
	req, ok := decodeCanonical(body)
	if !ok {
		req = wire.ProviderRequest{} // nothing of the partial read
		if err := json.Unmarshal(body, &req); err != nil {
			return nil, badRequest("malformed ProviderRequest: %s", describeJSONError(err))
		}
	}
	if req.Kind != wire.ProviderRequestKind {
		return nil, badRequest("wrong kind %q; expected %q", req.Kind, wire.ProviderRequestKind)
	}
	ok = false
	for _, v := range acceptedAPIVersions {
		if req.APIVersion == v {
			ok = true
			break
		}
	}
	if !ok {
		return nil, badRequest("unsupported apiVersion %q; expected %q", req.APIVersion, ResponseAPIVersion)
	}
	if maxKeys > 0 && len(req.Request.Keys) > maxKeys {
		return nil, &RequestError{
			Status: http.StatusRequestEntityTooLarge,
			Msg:    fmt.Sprintf("request has %d keys; the limit is %d per request (server.maxKeys)", len(req.Request.Keys), maxKeys),
		}
	}
	return req.Request.Keys, nil
}

func describeJSONError(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("invalid JSON at byte %d: %v", se.Offset, se)
	case errors.As(err, &te):
		field := te.Field
		if field == "" {
			field = "(top level)"
		}
		return fmt.Sprintf("field %s must be %s, got JSON %s", field, jsonTypeName(te.Type.String()), te.Value)
	}
	return err.Error()
}

func jsonTypeName(goType string) string {
	switch goType {
	case "[]string":
		return "a list of strings"
	case "string", "wire.ProviderKind":
		return "a string"
	case "wire.Request", "wire.ProviderRequest":
		return "an object"
	}
	return goType
}

// EncodeResponse renders a ProviderResponse. The bytes are what encoding/json would produce for
// wire.ProviderResponse (HTML escaping aside), written without reflection: wire.Encoded values
// (the lookups pre-encode theirs with encoding/json or an encoder tested against it) are copied;
// wire.Appender values append their own JSON in place; json.RawMessage values are checked with
// json.Valid and copied; other values go through json.Marshal.
func EncodeResponse(items []wire.Item, idempotent bool, systemError string) ([]byte, error) {
	return appendResponse(nil, items, idempotent, systemError)
}

// appendResponse is EncodeResponse appending to b[:0] (grown as needed).
func appendResponse(b []byte, items []wire.Item, idempotent bool, systemError string) ([]byte, error) {
	size := 128 + len(systemError)
	for i := range items {
		size += 32 + len(items[i].Key) + len(items[i].Error)
		switch v := items[i].Value.(type) {
		case nil:
		case wire.Encoded:
			size += len(v)
		case json.RawMessage:
			size += len(v)
		case wire.Appender:
			size += v.Len()
		case string:
			size += len(v) + 12
		default:
			size += 64
		}
	}
	b = slices.Grow(b[:0], size)
	b = append(b, `{"apiVersion":"`+ResponseAPIVersion+`","kind":"`+string(wire.ProviderResponseKind)+`","response":{`...)
	comma := false
	if idempotent {
		b = append(b, `"idempotent":true`...)
		comma = true
	}
	if len(items) > 0 {
		if comma {
			b = append(b, ',')
		}
		b = append(b, `"items":[`...)
		for i := range items {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = appendItem(b, &items[i]); err != nil {
				return nil, fmt.Errorf("item %q: %w", items[i].Key, err)
			}
		}
		b = append(b, ']')
		comma = true
	}
	if systemError != "" {
		if comma {
			b = append(b, ',')
		}
		b = append(b, `"systemError":`...)
		b = jsonpass.AppendString(b, systemError)
	}
	return append(b, "}}"...), nil
}

func appendItem(b []byte, it *wire.Item) ([]byte, error) {
	b = append(b, '{')
	comma := false
	if it.Key != "" {
		b = append(b, `"key":`...)
		b = jsonpass.AppendString(b, it.Key)
		comma = true
	}
	if x, ok := it.Value.(string); ok { // /v1/mutate: the pinned reference, written in place
		if comma {
			b = append(b, ',')
		}
		b = append(b, `"value":`...)
		b = jsonpass.AppendString(b, x)
		comma = true
	} else if a, ok := it.Value.(wire.Appender); ok { // written in place, no copy in between
		mark := len(b)
		if comma {
			b = append(b, ',')
		}
		b = append(b, `"value":`...)
		v := len(b)
		if b = a.AppendJSON(b); string(b[v:]) == "null" {
			b = b[:mark] // as for an Encoded null: no value field
		} else {
			comma = true
		}
	} else if it.Value != nil {
		var v []byte
		switch x := it.Value.(type) {
		case wire.Encoded:
			v = x
		case json.RawMessage:
			if !json.Valid(x) {
				return nil, errors.New("value is not valid JSON")
			}
			v = x
		default:
			var err error
			if v, err = json.Marshal(x); err != nil {
				return nil, err
			}
		}
		if string(v) != "null" {
			if comma {
				b = append(b, ',')
			}
			b = append(b, `"value":`...)
			b = append(b, v...)
			comma = true
		}
	}
	if it.Error != "" {
		if comma {
			b = append(b, ',')
		}
		b = append(b, `"error":`...)
		b = jsonpass.AppendString(b, it.Error)
	}
	return append(b, '}'), nil
}
