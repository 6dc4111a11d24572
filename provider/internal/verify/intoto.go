package verify

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// In-toto and predicate types the summaries understand.
const (
	intotoPayloadType   = "application/vnd.in-toto+json"
	statementV01        = "https://in-toto.io/Statement/v0.1"
	statementV1         = "https://in-toto.io/Statement/v1"
	cosignSignPredicate = "https://sigstore.dev/cosign/sign/v1"
	slsaV02             = "https://slsa.dev/provenance/v0.2"
	slsaV1              = "https://slsa.dev/provenance/v1"
)

// dsseEnvelope is a DSSE envelope as JSON (payload and signatures base64).
type dsseEnvelope struct {
	PayloadType string `json:"payloadType"`
	Payload     string `json:"payload"`
	Signatures  []struct {
		KeyID string `json:"keyid"`
		Sig   string `json:"sig"`
	} `json:"signatures"`
	// text is the payload's base64 text in the envelope's bytes, when scanEnvelope read it
	// (Payload is then empty: payloadText reads either).
	text []byte
}

// pae is DSSE's pre-authentication encoding, what the signature covers, as a message: the
// header ("DSSEv1 <len> <type> <len> ") and the payload where it lies, not copied after it.
func pae(payloadType string, payload []byte) message {
	h := make([]byte, 0, len(payloadType)+48)
	h = append(h, "DSSEv1 "...)
	h = strconv.AppendInt(h, int64(len(payloadType)), 10)
	h = append(h, ' ')
	h = append(h, payloadType...)
	h = append(h, ' ')
	h = strconv.AppendInt(h, int64(len(payload)), 10)
	h = append(h, ' ')
	return message{head: h, body: payload}
}

// message is the bytes a key signature signs, in two parts read in turn: head then body (a
// simple-signing payload is all body). A verifier hashes each where it lies.
type message struct{ head, body []byte }

// reader reads the message: Read for verifiers that read it whole (ed25519), WriteTo for those
// that hash it (io.Copy into the hash writes both parts without a buffer).
func (m message) reader() *messageReader { return &messageReader{m: m} }

type messageReader struct {
	m   message
	off int
}

func (r *messageReader) Read(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		part, at := r.m.head, r.off
		if at >= len(r.m.head) {
			part, at = r.m.body, r.off-len(r.m.head)
			if at >= len(part) {
				break
			}
		}
		c := copy(p, part[at:])
		p, n, r.off = p[c:], n+c, r.off+c
	}
	if n == 0 && len(p) > 0 {
		return 0, io.EOF
	}
	return n, nil
}

func (r *messageReader) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for _, part := range [][]byte{r.m.head, r.m.body} {
		if r.off >= len(part) {
			r.off -= len(part)
			continue
		}
		n, err := w.Write(part[r.off:])
		total += int64(n)
		r.off = 0
		if err != nil {
			return total, err
		}
	}
	r.off = len(r.m.head) + len(r.m.body)
	return total, nil
}

// parseEnvelope reads a DSSE envelope: scanEnvelope's one pass for an envelope as signers
// write it, encoding/json otherwise; the payload and signatures base64-decoded once.
//
// The payload is decoded into dst's memory when it fits (dst may be nil).
func parseEnvelope(raw, dst []byte) (*dsseEnvelope, []byte, [][]byte, error) {
	env, text, ok := scanEnvelope(raw)
	if !ok {
		env = &dsseEnvelope{}
		if err := json.Unmarshal(raw, env); err != nil {
			return nil, nil, nil, fmt.Errorf("malformed DSSE envelope: %w", err)
		}
		text = []byte(env.Payload)
	}
	if env.PayloadType != intotoPayloadType {
		return nil, nil, nil, fmt.Errorf("DSSE payload type %q is not %s", env.PayloadType, intotoPayloadType)
	}
	var payload []byte
	if n := base64.StdEncoding.DecodedLen(len(text)); n <= cap(dst) {
		payload = dst[:n]
	} else {
		payload = make([]byte, n)
	}
	n, err := base64.StdEncoding.Decode(payload, text)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("malformed DSSE payload: %w", err)
	}
	payload = payload[:n]
	if len(env.Signatures) == 0 {
		return nil, nil, nil, fmt.Errorf("DSSE envelope has no signatures")
	}
	sigs := make([][]byte, 0, len(env.Signatures))
	for _, s := range env.Signatures {
		b, err := base64.StdEncoding.DecodeString(s.Sig)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("malformed DSSE signature: %w", err)
		}
		sigs = append(sigs, b)
	}
	return env, payload, sigs, nil
}

// statement is an in-toto Statement v0.1 or v1.
type statement struct {
	Type          string             `json:"_type"`
	PredicateType string             `json:"predicateType"`
	Subject       []statementSubject `json:"subject"`
	Predicate     json.RawMessage    `json:"predicate"`
	// decoded is the predicate decoded into what PredicateTargets chose, in the statement's
	// own json.Unmarshal (Predicate is then nil and payload is kept to read it raw again).
	decoded any
	payload []byte
}

type statementSubject struct {
	Name   string            `json:"name"`
	Digest map[string]string `json:"digest"`
}

// parseStatement decodes a verified payload and checks that one subject is digest
// ("sha256:<hex>"). With targets, the predicate is decoded into the target chosen for its
// type in the same json.Unmarshal when that gives exactly what the raw decode would (see
// decodeStatementInto); otherwise it is kept raw.
func parseStatement(payload []byte, digest string, targets PredicateTargets) (*statement, error) {
	st, ok := decodeStatementInto(payload, targets)
	if !ok {
		st = &statement{}
		if err := json.Unmarshal(payload, st); err != nil {
			return nil, fmt.Errorf("malformed in-toto statement: %w", err)
		}
	}
	if st.Type != statementV01 && st.Type != statementV1 {
		return nil, fmt.Errorf("statement type %q is neither %s nor %s", st.Type, statementV01, statementV1)
	}
	if st.PredicateType == "" {
		return nil, fmt.Errorf("statement has no predicateType")
	}
	alg, hexd, _ := strings.Cut(digest, ":")
	var seen []string
	for _, s := range st.Subject {
		if v, ok := s.Digest[alg]; ok {
			if strings.EqualFold(v, hexd) {
				return st, nil
			}
			seen = append(seen, alg+":"+v)
		}
	}
	if len(seen) == 0 {
		return nil, fmt.Errorf("statement has no %s subject", alg)
	}
	return nil, fmt.Errorf("statement subject %s is %w (%s)", strings.Join(seen, ","), ErrOtherImage, digest)
}

// sbomFormat classifies an SBOM predicate type: "spdx", "cyclonedx" or "".
func sbomFormat(predicateType string) string {
	p := strings.ToLower(predicateType)
	switch {
	case strings.HasPrefix(p, "https://spdx.dev/document"), p == "https://cosign.sigstore.dev/attestation/spdx/v1":
		return "spdx"
	case strings.HasPrefix(p, "https://cyclonedx.org/bom"), p == "https://cosign.sigstore.dev/attestation/cyclonedx/v1":
		return "cyclonedx"
	}
	return ""
}

// sbomArtifactFormat classifies an OCI referrer artifact type, or the media type of an SBOM
// layer (text/spdx+json, application/vnd.cyclonedx+xml, application/vnd.syft+json), as an SBOM
// format.
func sbomArtifactFormat(artifactType string) string {
	a := strings.ToLower(artifactType)
	switch {
	case strings.Contains(a, "spdx"):
		return "spdx"
	case strings.Contains(a, "cyclonedx"):
		return "cyclonedx"
	case strings.Contains(a, "syft"):
		return "syft"
	}
	return ""
}

// summariseProvenance extracts builder, source and build type from SLSA v0.2 or v1.
func summariseProvenance(predicateType string, predicate json.RawMessage) (Provenance, bool) {
	p := Provenance{PredicateType: predicateType}
	switch {
	case predicateType == slsaV02 || strings.HasPrefix(predicateType, "https://slsa.dev/provenance/v0."):
		var v struct {
			Builder struct {
				ID string `json:"id"`
			} `json:"builder"`
			BuildType  string `json:"buildType"`
			Invocation struct {
				ConfigSource struct {
					URI string `json:"uri"`
				} `json:"configSource"`
			} `json:"invocation"`
			Materials []struct {
				URI string `json:"uri"`
			} `json:"materials"`
		}
		if err := json.Unmarshal(predicate, &v); err != nil {
			return Provenance{}, false
		}
		p.BuilderID, p.BuildType, p.SourceURI = v.Builder.ID, v.BuildType, v.Invocation.ConfigSource.URI
		if p.SourceURI == "" && len(v.Materials) > 0 {
			p.SourceURI = v.Materials[0].URI
		}
		return p, true
	case predicateType == slsaV1 || strings.HasPrefix(predicateType, "https://slsa.dev/provenance/v1"):
		var v struct {
			BuildDefinition struct {
				BuildType            string          `json:"buildType"`
				ExternalParameters   json.RawMessage `json:"externalParameters"`
				ResolvedDependencies []struct {
					URI string `json:"uri"`
				} `json:"resolvedDependencies"`
			} `json:"buildDefinition"`
			RunDetails struct {
				Builder struct {
					ID string `json:"id"`
				} `json:"builder"`
			} `json:"runDetails"`
		}
		if err := json.Unmarshal(predicate, &v); err != nil {
			return Provenance{}, false
		}
		p.BuilderID, p.BuildType = v.RunDetails.Builder.ID, v.BuildDefinition.BuildType
		p.SourceURI = sourceFromExternalParameters(v.BuildDefinition.ExternalParameters)
		if p.SourceURI == "" && len(v.BuildDefinition.ResolvedDependencies) > 0 {
			p.SourceURI = v.BuildDefinition.ResolvedDependencies[0].URI
		}
		return p, true
	}
	return Provenance{}, false
}

// sourceFromExternalParameters knows the common SLSA v1 shapes: GitHub Actions
// (workflow.repository), and a "source" given as a string or {uri}.
func sourceFromExternalParameters(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	var v struct {
		Workflow struct {
			Repository string `json:"repository"`
		} `json:"workflow"`
		Source     json.RawMessage `json:"source"`
		Repository string          `json:"repository"`
	}
	if json.Unmarshal(raw, &v) != nil {
		return ""
	}
	if v.Workflow.Repository != "" {
		return v.Workflow.Repository
	}
	if len(v.Source) > 0 {
		var s string
		if json.Unmarshal(v.Source, &s) == nil {
			return s
		}
		var o struct {
			URI string `json:"uri"`
		}
		if json.Unmarshal(v.Source, &o) == nil && o.URI != "" {
			return o.URI
		}
	}
	return v.Repository
}
