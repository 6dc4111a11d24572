package export

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"slices"
	"sort"
	"strings"
)

// Authority is a provider authority as node policy needs it.
type Authority struct {
	Name string
	// Images are the authority's image globs ("registry.bank.internal/**"); empty: every image.
	Images []string
	// PublicKeyPEM is the authority's public key (PEM). Nil for keyless authorities, which node
	// policy does not export.
	PublicKeyPEM []byte
}

// Options are the inputs of an export.
type Options struct {
	// Sources are the enforced K8sTrustedImageSource constraints (required, at least one).
	Sources []TrustedSource
	// Authorities are the provider's authorities (optional).
	Authorities []Authority
	// ExtraRegistries are scopes always allowed at the node, for images Gatekeeper never
	// sees: the platform's own (OpenShift release and operator registries) (optional).
	ExtraRegistries []string
}

// Scope is one scope of the node policy and the authorities whose keys it requires.
type Scope struct {
	Scope string
	// Authorities whose key signs images here (any one suffices in policy.json), by name.
	Authorities []string
	keys        [][]byte
}

// Policy is the node policy computed from the constraints and authorities.
type Policy struct {
	// Allowed is the registry allow-list (no entry covered by another).
	Allowed []string
	// Scopes are the allowed scopes and the narrower authority scopes inside them, sorted.
	Scopes []Scope
	// Warnings say where node policy is weaker than admission (unsigned scopes, keyless
	// authorities, skipped constraints).
	Warnings []string
	// authorities with keys, by name, and the scopes each signs.
	keyed map[string]*keyedAuthority
}

type keyedAuthority struct {
	key    []byte
	scopes []string
}

// OptionsError names what is wrong with the inputs.
type OptionsError struct{ Problem string }

func (e *OptionsError) Error() string { return "export: " + e.Problem }

// Compute works out the node policy.
func Compute(o Options) (*Policy, error) {
	if len(o.Sources) == 0 {
		return nil, &OptionsError{"no K8sTrustedImageSource constraint given"}
	}
	var allowed []string
	for _, s := range o.Sources {
		for _, r := range s.AllowedRegistries {
			allowed = append(allowed, normalizeScope(r))
		}
		for _, g := range s.Exempt {
			p, _, err := globPrefix(g)
			if err != nil {
				return nil, &OptionsError{fmt.Sprintf("%s: %s %s: exemptImages: %v", s.File, TrustedSourceKind, s.Name, err)}
			}
			allowed = append(allowed, p)
		}
	}
	for _, r := range o.ExtraRegistries {
		if err := checkRegistryEntry(r); err != nil {
			return nil, &OptionsError{fmt.Sprintf("extra registry %q: %v", r, err)}
		}
		allowed = append(allowed, normalizeScope(r))
	}
	p := &Policy{Allowed: minimal(allowed), keyed: map[string]*keyedAuthority{}}

	// Authority scopes.
	authScopes := map[string][]string{}
	var names []string
	for i, a := range o.Authorities {
		if a.Name == "" {
			return nil, &OptionsError{fmt.Sprintf("authorities[%d]: no name", i)}
		}
		if a.PublicKeyPEM == nil {
			p.Warnings = append(p.Warnings, fmt.Sprintf("authority %s is keyless: node policy checks only key authorities, so its images are checked at admission only", a.Name))
			continue
		}
		if err := checkPublicKey(a.PublicKeyPEM); err != nil {
			return nil, &OptionsError{fmt.Sprintf("authority %s: %v", a.Name, err)}
		}
		var scopes []string
		if len(a.Images) == 0 {
			scopes = p.Allowed
		}
		for j, g := range a.Images {
			pre, whole, err := globPrefix(g)
			if err != nil {
				return nil, &OptionsError{fmt.Sprintf("authority %s: images[%d]: %v", a.Name, j, err)}
			}
			if !whole {
				return nil, &OptionsError{fmt.Sprintf("authority %s: images[%d] %q: node policy scopes are whole repositories or namespaces; write it as host[/path]/** or export without this authority", a.Name, j, g)}
			}
			scopes = append(scopes, pre)
		}
		authScopes[a.Name] = scopes
		p.keyed[a.Name] = &keyedAuthority{key: a.PublicKeyPEM}
		names = append(names, a.Name)
	}

	// Policy scopes: allowed scopes, plus authority scopes inside an allowed scope.
	set := map[string]bool{}
	for _, s := range p.Allowed {
		set[s] = true
	}
	for _, scopes := range authScopes {
		for _, a := range scopes {
			for _, s := range p.Allowed {
				if covers(s, a) {
					set[a] = true
				}
			}
		}
	}
	all := make([]string, 0, len(set))
	for s := range set {
		all = append(all, s)
	}
	sort.Strings(all)
	for _, s := range all {
		sc := Scope{Scope: s}
		for _, n := range names {
			for _, a := range authScopes[n] {
				if covers(a, s) {
					sc.Authorities = append(sc.Authorities, n)
					sc.keys = append(sc.keys, p.keyed[n].key)
					p.keyed[n].scopes = append(p.keyed[n].scopes, s)
					break
				}
			}
		}
		switch len(sc.Authorities) {
		case 0:
			p.Warnings = append(p.Warnings, fmt.Sprintf("scope %s: no key authority covers it, so the node accepts its images unsigned (admission still checks them)", s))
		case 1:
		default:
			p.Warnings = append(p.Warnings, fmt.Sprintf("scope %s: keys of %s; policy.json accepts a signature by any of them, OpenShift ClusterImagePolicies on one scope require all of them", s, strings.Join(sc.Authorities, ", ")))
		}
		p.Scopes = append(p.Scopes, sc)
	}
	return p, nil
}

// minimal sorts and de-duplicates scopes and drops those another scope covers.
func minimal(scopes []string) []string {
	sort.Strings(scopes)
	scopes = slices.Compact(scopes)
	var out []string
	for _, s := range scopes {
		redundant := false
		for _, a := range scopes {
			if a != s && covers(a, s) {
				redundant = true
				break
			}
		}
		if !redundant {
			out = append(out, s)
		}
	}
	return out
}

func checkPublicKey(b []byte) error {
	blk, _ := pem.Decode(b)
	if blk == nil {
		return fmt.Errorf("public key is not PEM")
	}
	if _, err := x509.ParsePKIXPublicKey(blk.Bytes); err != nil {
		return fmt.Errorf("public key: %w", err)
	}
	return nil
}
