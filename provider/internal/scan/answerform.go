package scan

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/imagetrust/imagetrust/provider/internal/jsonpass"
)

// AnswerForm is the version of the /v1/scan answer's form (docs/scan.md, "The /v1/scan
// value"): 2 lists findings as rows. Every answer says it in its "form" field, and the
// template denies an answer of any other form rather than misread it.
const AnswerForm = 2

// Form is the answer's "form" field: it always encodes as AnswerForm, and decoding any other
// form is an error.
type Form struct{}

var formJSON = []byte(strconv.Itoa(AnswerForm))

// MarshalJSON writes AnswerForm.
func (Form) MarshalJSON() ([]byte, error) { return formJSON, nil }

// UnmarshalJSON accepts AnswerForm only.
func (*Form) UnmarshalJSON(b []byte) error {
	if string(b) != string(formJSON) {
		return fmt.Errorf("scan answer form %s, want %d", b, AnswerForm)
	}
	return nil
}

// The columns of a finding's row, in order (docs/scan.md). A row always has the id and the
// severity, then as many columns as it needs: empty columns at its end are left out, an
// empty one before a filled one is "" ([] for aliases).
const (
	colID = iota
	colSeverity
	colPackage
	colInstalledVersion
	colFixedVersion
	// colPURL is the package URL without qualifiers and subpath, shortened by what the row
	// already says: ending in "/", the package, "@" and the installed version follow;
	// ending in "@", the installed version follows (rowPURL, expandPURL).
	colPURL
	colAliases
	colStatus
	// colVEX is the VEX statement, an object {status, justification, authority, timestamp}.
	colVEX
	numColumns
)

// lastColumn is the row's last non-empty column.
func (f *Finding) lastColumn() int {
	switch {
	case f.VEX != nil:
		return colVEX
	case f.Status != "":
		return colStatus
	case len(f.Aliases) > 0:
		return colAliases
	case f.PURL != "":
		return colPURL
	case f.FixedVersion != "":
		return colFixedVersion
	case f.InstalledVersion != "":
		return colInstalledVersion
	case f.Package != "":
		return colPackage
	}
	return colSeverity
}

// MarshalJSON writes the finding as its row.
func (f Finding) MarshalJSON() ([]byte, error) { return f.appendRow(nil) }

// appendRow appends the finding's row to b, as compact JSON with encoding/json's escaping.
func (f *Finding) appendRow(b []byte) ([]byte, error) {
	last := f.lastColumn()
	b = append(b, '[')
	b = jsonpass.AppendString(b, f.ID)
	b = append(b, ',')
	b = jsonpass.AppendString(b, string(f.Severity))
	for c := colPackage; c <= last; c++ {
		b = append(b, ',')
		switch c {
		case colPackage:
			b = jsonpass.AppendString(b, f.Package)
		case colInstalledVersion:
			b = jsonpass.AppendString(b, f.InstalledVersion)
		case colFixedVersion:
			b = jsonpass.AppendString(b, f.FixedVersion)
		case colPURL:
			b = jsonpass.AppendString(b, rowPURL(f.PURL, f.Package, f.InstalledVersion))
		case colAliases:
			b = append(b, '[')
			for i, a := range f.Aliases {
				if i > 0 {
					b = append(b, ',')
				}
				b = jsonpass.AppendString(b, a)
			}
			b = append(b, ']')
		case colStatus:
			b = jsonpass.AppendString(b, f.Status)
		case colVEX:
			raw, err := json.Marshal(f.VEX)
			if err != nil {
				return nil, err
			}
			b = append(b, raw...)
		}
	}
	return append(b, ']'), nil
}

// UnmarshalJSON reads a finding's row (for Go readers of the answer; the template reads the
// rows itself).
func (f *Finding) UnmarshalJSON(b []byte) error {
	var row []json.RawMessage
	if err := json.Unmarshal(b, &row); err != nil {
		return fmt.Errorf("finding row: %w", err)
	}
	if len(row) < colSeverity+1 || len(row) > numColumns {
		return fmt.Errorf("finding row %s has %d columns, want %d to %d", b, len(row), colSeverity+1, numColumns)
	}
	*f = Finding{}
	strs := [numColumns]*string{&f.ID, (*string)(&f.Severity), &f.Package, &f.InstalledVersion, &f.FixedVersion, &f.PURL, nil, &f.Status, nil}
	for c, raw := range row {
		var err error
		switch c {
		case colAliases:
			err = json.Unmarshal(raw, &f.Aliases)
		case colVEX:
			err = json.Unmarshal(raw, &f.VEX)
		default:
			err = json.Unmarshal(raw, strs[c])
		}
		if err != nil {
			return fmt.Errorf("finding row %s, column %d: %w", b, c, err)
		}
	}
	if len(f.Aliases) == 0 {
		f.Aliases = nil
	}
	f.PURL = expandPURL(f.PURL, f.Package, f.InstalledVersion)
	return nil
}

// rowPURL shortens purl by what the row says beside it: "…/" when it ends in
// "/<package>@<installed version>", "…@" when it ends in "@<installed version>". A purl that
// itself ends in "/" or "@" names no package and is left out, so that an ending always means
// what the row's reader appends.
func rowPURL(purl, pkg, ver string) string {
	if strings.HasSuffix(purl, "/") || strings.HasSuffix(purl, "@") {
		return ""
	}
	if ver == "" || !strings.HasSuffix(purl, ver) {
		return purl
	}
	p := purl[:len(purl)-len(ver)]
	if !strings.HasSuffix(p, "@") {
		return purl
	}
	if pkg != "" {
		if q := p[:len(p)-1]; strings.HasSuffix(q, pkg) && strings.HasSuffix(q[:len(q)-len(pkg)], "/") {
			return q[:len(q)-len(pkg)]
		}
	}
	return p
}

// expandPURL is rowPURL's inverse: what library/security's _purl reads.
func expandPURL(p, pkg, ver string) string {
	switch {
	case strings.HasSuffix(p, "/"):
		return p + pkg + "@" + ver
	case strings.HasSuffix(p, "@"):
		return p + ver
	}
	return p
}
