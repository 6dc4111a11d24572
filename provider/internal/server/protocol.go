package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/open-policy-agent/frameworks/constraint/pkg/externaldata"
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
	if len(strings.TrimSpace(string(body))) == 0 {
		return nil, badRequest("empty request body; expected a ProviderRequest (kind %q, apiVersion %q, request.keys)", externaldata.ProviderRequestKind, ResponseAPIVersion)
	}
	var req externaldata.ProviderRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, badRequest("malformed ProviderRequest: %s", describeJSONError(err))
	}
	if req.Kind != externaldata.ProviderRequestKind {
		return nil, badRequest("wrong kind %q; expected %q", req.Kind, externaldata.ProviderRequestKind)
	}
	ok := false
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
	case "string", "externaldata.ProviderKind":
		return "a string"
	case "externaldata.Request", "externaldata.ProviderRequest":
		return "an object"
	}
	return goType
}

// Dedupe returns keys without repeats, in first-seen order. It returns keys itself when there is
// nothing to remove.
func Dedupe(keys []string) []string {
	if len(keys) < 2 {
		return keys
	}
	seen := make(map[string]struct{}, len(keys))
	var out []string // nil until the first duplicate
	for i, k := range keys {
		if _, dup := seen[k]; dup {
			if out == nil {
				out = append(make([]string, 0, len(keys)-1), keys[:i]...)
			}
			continue
		}
		seen[k] = struct{}{}
		if out != nil {
			out = append(out, k)
		}
	}
	if out == nil {
		return keys
	}
	return out
}

// EncodeResponse renders a ProviderResponse.
func EncodeResponse(items []externaldata.Item, idempotent bool, systemError string) ([]byte, error) {
	return json.Marshal(&externaldata.ProviderResponse{
		APIVersion: ResponseAPIVersion,
		Kind:       externaldata.ProviderResponseKind,
		Response: externaldata.Response{
			Idempotent:  idempotent,
			Items:       items,
			SystemError: systemError,
		},
	})
}
