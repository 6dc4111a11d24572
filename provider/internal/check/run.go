package check

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/open-policy-agent/gatekeeper/v3/pkg/gator/reader"

	"github.com/imagetrust/imagetrust/provider/internal/manifests"
)

// Options are one check.
type Options struct {
	// Policy is the loaded templates and constraints (required).
	Policy *Policy
	// Objects are the manifests to review (required; may be empty).
	Objects []manifests.Object
	// Providers answers external_data (optional; see EngineOptions).
	Providers *Providers
	Review    ReviewOptions
}

// Run reviews the objects and returns the report. A provider failure does not stop the
// review: the report lists it in Incomplete and Run returns it as an error that matches
// ErrIncomplete, next to the report.
func Run(ctx context.Context, o Options) (*Report, error) {
	if o.Policy == nil {
		return nil, errors.New("check: Options.Policy is required")
	}
	eo := EngineOptions{}
	if o.Providers != nil {
		eo.Providers = o.Providers.Cache
	}
	eng, err := NewEngine(ctx, o.Policy, eo)
	if err != nil {
		return nil, err
	}
	fs, err := eng.Review(ctx, o.Objects, o.Review)
	if err != nil {
		return nil, err
	}
	if o.Providers != nil {
		fs = o.Providers.Undecided(fs)
	}
	n := 0
	usage := map[string][]string{}
	for _, obj := range o.Objects {
		if reader.IsTemplate(obj.Object) || reader.IsConstraint(obj.Object) {
			continue
		}
		n++
		for _, im := range obj.Images {
			ref := obj.Ref()
			if l := usage[im.Value]; len(l) == 0 || l[len(l)-1] != ref {
				usage[im.Value] = append(l, ref)
			}
		}
	}
	for k := range usage {
		sort.Strings(usage[k])
	}
	rep := NewReport(n, fs, usage)
	if o.Providers == nil {
		if kinds := o.Policy.ExternalDataKinds(); len(kinds) > 0 {
			msg := fmt.Sprintf("no provider given, but constraints of %s call external_data: use --provider-config, --provider-url or --provider-fixtures", strings.Join(kinds, ", "))
			rep.Incomplete = []string{msg}
			return rep, &FailureError{Failures: rep.Incomplete}
		}
	}
	if o.Providers != nil {
		if ferr := o.Providers.Failures(); ferr != nil {
			var fe *FailureError
			if errors.As(ferr, &fe) {
				rep.Incomplete = fe.Failures
			} else {
				rep.Incomplete = []string{ferr.Error()}
			}
			return rep, fmt.Errorf("the check could not be completed: %w", ferr)
		}
	}
	return rep, nil
}
