package scan

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// OpenVEX statuses.
const (
	vexNotAffected        = "not_affected"
	vexAffected           = "affected"
	vexFixed              = "fixed"
	vexUnderInvestigation = "under_investigation"
)

// VEXDocument is an OpenVEX document from a trusted VEX authority about one image.
type VEXDocument struct {
	Authority  string
	Statements []VEXStatement
}

// VEXStatement is one OpenVEX statement, normalised over v0.0.x and v0.2.0.
type VEXStatement struct {
	Vulnerabilities []string // name, @id and aliases
	Products        []VEXProduct
	Status          string
	Justification   string
	Timestamp       time.Time
}

// VEXProduct is a product and its subcomponents (purls or image references).
type VEXProduct struct {
	ID            string
	Subcomponents []string
}

type vexDocJSON struct {
	Context    string        `json:"@context"`
	Timestamp  flexTime      `json:"timestamp"`
	Statements []vexStmtJSON `json:"statements"`
}

type vexStmtJSON struct {
	Vulnerability json.RawMessage   `json:"vulnerability"`
	Products      []json.RawMessage `json:"products"`
	Subcomponents []json.RawMessage `json:"subcomponents"`
	Status        string            `json:"status"`
	Justification string            `json:"justification"`
	Timestamp     flexTime          `json:"timestamp"`
}

// DecodeOpenVEX reads an OpenVEX document (v0.0.x or v0.2.0). signedAt is the signature's
// log time, used for statements that carry no timestamp of their own (zero: none).
func DecodeOpenVEX(raw []byte, authority string, signedAt time.Time, lim Limits) (*VEXDocument, error) {
	const format = "openvex"
	lim = lim.withDefaults()
	if int64(len(raw)) > lim.ReportBytes {
		return nil, &TooLargeError{What: "OpenVEX document", Size: int64(len(raw)), Limit: lim.ReportBytes}
	}
	var d vexDocJSON
	if err := strictish(raw, &d); err != nil {
		return nil, malformed(format, "", err)
	}
	return openVEXDocument(&d, authority, signedAt, lim)
}

// openVEXDocument checks and normalises a decoded OpenVEX document (decoded by DecodeOpenVEX
// or in its statement's own decode, see Service.predicateTarget). lim has its defaults.
func openVEXDocument(d *vexDocJSON, authority string, signedAt time.Time, lim Limits) (*VEXDocument, error) {
	const format = "openvex"
	if !strings.HasPrefix(d.Context, PredicateOpenVEX) {
		return nil, malformedf(format, "@context", "is %q, not %s…", d.Context, PredicateOpenVEX)
	}
	if len(d.Statements) > lim.ReportFindings {
		return nil, &TooLargeError{What: "OpenVEX statements", Size: int64(len(d.Statements)), Limit: int64(lim.ReportFindings)}
	}
	out := &VEXDocument{Authority: authority}
	for i := range d.Statements {
		s := &d.Statements[i]
		field := fmt.Sprintf("statements[%d]", i)
		st := VEXStatement{Status: s.Status, Justification: s.Justification, Timestamp: s.Timestamp.Time}
		if st.Timestamp.IsZero() {
			st.Timestamp = d.Timestamp.Time
		}
		if st.Timestamp.IsZero() {
			st.Timestamp = signedAt
		}
		switch s.Status {
		case vexNotAffected, vexAffected, vexFixed, vexUnderInvestigation:
		default:
			return nil, malformedf(format, field+".status", "is %q; want not_affected, affected, fixed or under_investigation", s.Status)
		}
		vulns, err := vexVulnerability(s.Vulnerability)
		if err != nil {
			return nil, malformed(format, field+".vulnerability", err)
		}
		st.Vulnerabilities = vulns
		var stmtSubs []string
		for j, raw := range s.Subcomponents {
			id, _, err := vexComponent(raw)
			if err != nil {
				return nil, malformed(format, fmt.Sprintf("%s.subcomponents[%d]", field, j), err)
			}
			stmtSubs = append(stmtSubs, id)
		}
		for j, raw := range s.Products {
			id, subs, err := vexComponent(raw)
			if err != nil {
				return nil, malformed(format, fmt.Sprintf("%s.products[%d]", field, j), err)
			}
			st.Products = append(st.Products, VEXProduct{ID: id, Subcomponents: append(subs, stmtSubs...)})
		}
		if len(st.Products) == 0 {
			return nil, malformedf(format, field+".products", "is empty")
		}
		out.Statements = append(out.Statements, st)
	}
	return out, nil
}

// vexVulnerability reads "CVE-…" (v0.0.x) or {"@id","name","aliases"} (v0.2.0).
func vexVulnerability(raw json.RawMessage) ([]string, error) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		if s == "" {
			return nil, fmt.Errorf("is empty")
		}
		return []string{s}, nil
	}
	var v struct {
		ID      string   `json:"@id"`
		Name    string   `json:"name"`
		Aliases []string `json:"aliases"`
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, err
	}
	var out []string
	for _, x := range append([]string{v.Name, v.ID}, v.Aliases...) {
		if x != "" {
			out = append(out, x)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("names no vulnerability")
	}
	return out, nil
}

// vexComponent reads a product or subcomponent: a string, or {"@id", "identifiers":{"purl"},
// "subcomponents":[…]}.
func vexComponent(raw json.RawMessage) (string, []string, error) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		if s == "" {
			return "", nil, fmt.Errorf("is empty")
		}
		return s, nil, nil
	}
	var c struct {
		ID          string `json:"@id"`
		Identifiers struct {
			PURL string `json:"purl"`
		} `json:"identifiers"`
		Subcomponents []json.RawMessage `json:"subcomponents"`
	}
	if err := json.Unmarshal(raw, &c); err != nil {
		return "", nil, err
	}
	id := c.ID
	if c.Identifiers.PURL != "" {
		id = c.Identifiers.PURL
	}
	if id == "" {
		return "", nil, fmt.Errorf("has neither @id nor identifiers.purl")
	}
	var subs []string
	for _, r := range c.Subcomponents {
		sid, _, err := vexComponent(r)
		if err != nil {
			return "", nil, fmt.Errorf("subcomponent: %w", err)
		}
		subs = append(subs, sid)
	}
	return id, subs, nil
}

// Subject is the image a scan and its VEX statements are about.
type Subject struct {
	// Repository is the normalised repository ("docker.io/library/nginx").
	Repository string
	// Digest is "sha256:<hex>".
	Digest string
}

// ApplyVEX records on each finding the latest statement, among docs, that is about this
// image and this package. Statements are matched by vulnerability id or alias; a product
// matches when it is this image (pkg:oci/<name>@<digest> with an optional repository_url,
// or <repository>@<digest>), optionally narrowed by subcomponents to the package, or when it
// is the package's own purl. The latest statement wins; of two at the same time the one that
// does not suppress wins.
func ApplyVEX(findings []Finding, subject Subject, docs []*VEXDocument) {
	if len(docs) == 0 {
		return
	}
	for i := range findings {
		f := &findings[i]
		var best *VEXStatement
		var bestAuth string
		for _, d := range docs {
			for j := range d.Statements {
				s := &d.Statements[j]
				if !s.namesVuln(f) || !s.aboutPackage(subject, f) {
					continue
				}
				if best == nil || s.Timestamp.After(best.Timestamp) ||
					(s.Timestamp.Equal(best.Timestamp) && !suppresses(s.Status) && suppresses(best.Status)) {
					best, bestAuth = s, d.Authority
				}
			}
		}
		if best == nil {
			continue
		}
		n := &VEXNote{Status: best.Status, Justification: best.Justification, Authority: bestAuth}
		if !best.Timestamp.IsZero() {
			n.Timestamp = best.Timestamp.UTC().Format(time.RFC3339)
		}
		f.VEX = n
	}
}

func suppresses(status string) bool { return status == vexNotAffected || status == vexFixed }

func (s *VEXStatement) namesVuln(f *Finding) bool {
	for _, v := range s.Vulnerabilities {
		if strings.EqualFold(v, f.ID) {
			return true
		}
		for _, a := range f.Aliases {
			if strings.EqualFold(v, a) {
				return true
			}
		}
	}
	return false
}

func (s *VEXStatement) aboutPackage(subject Subject, f *Finding) bool {
	for _, p := range s.Products {
		if isImageProduct(p.ID, subject) {
			if len(p.Subcomponents) == 0 {
				return true
			}
			for _, sc := range p.Subcomponents {
				if packageMatches(sc, f) {
					return true
				}
			}
			continue
		}
		if packageMatches(p.ID, f) {
			return true
		}
	}
	return false
}

// isImageProduct reports whether id names the subject image: pkg:oci/<name>[@<digest>]
// [?repository_url=<repo>] with name the repository's last path segment, or the
// "<repository>@<digest>" reference. A pkg:oci product with another digest or repository is
// another image.
func isImageProduct(id string, subject Subject) bool {
	if id == subject.Repository+"@"+subject.Digest {
		return true
	}
	p, ok := parsePURL(id)
	if !ok || p.typ != "oci" {
		return false
	}
	last := subject.Repository[strings.LastIndex(subject.Repository, "/")+1:]
	if !strings.EqualFold(p.name, last) || p.namespace != "" {
		return false
	}
	if p.version != "" && !strings.EqualFold(p.version, subject.Digest) {
		return false
	}
	if ru := p.qualifiers.Get("repository_url"); ru != "" {
		ru = strings.TrimSuffix(strings.ToLower(ru), "/")
		repo := strings.ToLower(subject.Repository)
		if ru != repo && !dockerHubAlias(ru, repo) {
			return false
		}
	}
	return true
}

// dockerHubAlias reports whether the purl repository_url ru names the Docker Hub repository
// repo ("docker.io/…") in another spelling: index.docker.io/…, or without the registry (and
// without library/ for official images).
func dockerHubAlias(ru, repo string) bool {
	path, ok := strings.CutPrefix(repo, "docker.io/")
	if !ok {
		return false
	}
	return ru == "index.docker.io/"+path || ru == strings.TrimPrefix(path, "library/")
}

// packageMatches reports whether a purl (or a bare package name) names the finding's package:
// same type, namespace and name, and the same version when the purl gives one.
func packageMatches(id string, f *Finding) bool {
	want, ok := parsePURL(id)
	if !ok {
		return id != "" && id == f.Package
	}
	have, ok := parsePURL(f.PURL)
	if !ok {
		return false
	}
	if want.typ != have.typ || !strings.EqualFold(want.namespace, have.namespace) || want.name != have.name {
		return false
	}
	if want.version != "" {
		v := have.version
		if v == "" {
			v = f.InstalledVersion
		}
		return want.version == v
	}
	return true
}

type purl struct {
	typ, namespace, name, version string
	qualifiers                    url.Values
}

// parsePURL reads pkg:type/namespace/name@version?qualifiers#subpath (percent-decoded).
func parsePURL(s string) (purl, bool) {
	rest, ok := strings.CutPrefix(s, "pkg:")
	if !ok {
		return purl{}, false
	}
	rest, _, _ = strings.Cut(rest, "#")
	rest, q, _ := strings.Cut(rest, "?")
	var p purl
	p.qualifiers, _ = url.ParseQuery(q)
	if i := strings.LastIndex(rest, "@"); i >= 0 {
		v, err := url.PathUnescape(rest[i+1:])
		if err != nil {
			return purl{}, false
		}
		p.version, rest = v, rest[:i]
	}
	parts := strings.Split(strings.Trim(rest, "/"), "/")
	if len(parts) < 2 || parts[0] == "" {
		return purl{}, false
	}
	p.typ = strings.ToLower(parts[0])
	name, err := url.PathUnescape(parts[len(parts)-1])
	if err != nil || name == "" {
		return purl{}, false
	}
	p.name = name
	if len(parts) > 2 {
		ns, err := url.PathUnescape(strings.Join(parts[1:len(parts)-1], "/"))
		if err != nil {
			return purl{}, false
		}
		p.namespace = ns
	}
	return p, true
}
