// Package wire holds the external-data protocol types the provider speaks: Gatekeeper's
// ProviderRequest and ProviderResponse. They are field-for-field and tag-for-tag the types of
// frameworks/constraint pkg/externaldata (wire_test.go proves both directions), defined here so
// the provider binary does not link that package, which imports OPA's ast package (about 3 MB
// of resident memory at idle, measured; see the README's provider-lookup notes).
package wire

import "encoding/json"

// ProviderKind is the kind of an external-data message.
type ProviderKind string

// Kinds of the two messages.
const (
	ProviderRequestKind  ProviderKind = "ProviderRequest"
	ProviderResponseKind ProviderKind = "ProviderResponse"
)

// APIVersion is what Gatekeeper sends (frameworks NewProviderRequest) and what the provider
// answers with.
const APIVersion = "externaldata.gatekeeper.sh/v1beta1"

// ProviderRequest is what Gatekeeper POSTs to a provider.
type ProviderRequest struct {
	APIVersion string       `json:"apiVersion,omitempty"`
	Kind       ProviderKind `json:"kind,omitempty"`
	Request    Request      `json:"request,omitempty"`
}

// Request holds the keys of a ProviderRequest.
type Request struct {
	Keys []string `json:"keys,omitempty"`
}

// ProviderResponse is a provider's answer.
type ProviderResponse struct {
	APIVersion string       `json:"apiVersion,omitempty"`
	Kind       ProviderKind `json:"kind,omitempty"`
	Response   Response     `json:"response,omitempty"`
}

// Response holds the items of a ProviderResponse, or a systemError for the whole request.
type Response struct {
	Idempotent  bool   `json:"idempotent,omitempty"`
	Items       []Item `json:"items,omitempty"`
	SystemError string `json:"systemError,omitempty"`
}

// Item is the answer for one key: a value or an error.
type Item struct {
	Key   string `json:"key,omitempty"`
	Value any    `json:"value,omitempty"`
	Error string `json:"error,omitempty"`
}

// Encoded is a value that encoding/json (or an encoder tested byte for byte against it) has
// already produced. The provider's response encoder copies it as is; json.RawMessage values from
// anywhere else are checked with json.Valid first.
type Encoded []byte

// MarshalJSON returns e itself, so encoding/json writes an Encoded value unchanged.
func (e Encoded) MarshalJSON() ([]byte, error) {
	if e == nil {
		return []byte("null"), nil
	}
	return e, nil
}

// Appender is a value that writes its own JSON into the response, without an intermediate
// copy. AppendJSON appends to b exactly the bytes encoding/json produces for the value (its
// MarshalJSON, which returns the same bytes, is what encoding/json calls), and Len is how many
// bytes AppendJSON appends, so the encoder sizes its buffer once. An Appender's bytes must not
// change after it is handed out (it may be written while the cache that holds it is read).
type Appender interface {
	json.Marshaler
	AppendJSON(b []byte) []byte
	Len() int
}
