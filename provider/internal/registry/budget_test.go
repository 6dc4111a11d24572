package registry_test

import (
	"context"
	"errors"
	"testing"

	"github.com/imagetrust/imagetrust/provider/internal/config"
	"github.com/imagetrust/imagetrust/provider/internal/registry"
)

// TestNestedRequestBudgets: a budget set under another (a verification inside a scan, an
// endpoint's own budget inside the pipeline's) spends from both, so the inner one never widens
// the outer one; requests over a budget fail before they leave, with the exhausted budget named.
func TestNestedRequestBudgets(t *testing.T) {
	reg := startRegistry(t)
	push(t, reg.Host, "team/app:v1")
	c := newClient(t, registry.Options{Registries: []config.Registry{{Host: reg.Host, Insecure: true}}})
	ref := mustParse(t, reg.Host+"/team/app:v1")
	if _, err := c.Head(context.Background(), ref); err != nil { // ping remembered from now on
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name         string
		outer, inner int64
		wantOK       int
		wantMax      int64
	}{
		{"inner wider than outer", 3, 100, 3, 3},
		{"inner tighter than outer", 100, 2, 2, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := registry.WithRequestBudget(registry.WithRequestBudget(context.Background(), tc.outer), tc.inner)
			reg.ResetCounts()
			ok := 0
			var err error
			for range 10 {
				if _, err = c.Head(ctx, ref); err != nil {
					break
				}
				ok++
			}
			var be *registry.BudgetError
			if ok != tc.wantOK || !errors.As(err, &be) || be.Max != tc.wantMax {
				t.Errorf("HEADs under budgets %d then %d: %d answered, then %v; want %d, then a BudgetError of %d", tc.outer, tc.inner, ok, err, tc.wantOK, tc.wantMax)
			}
			if n := reg.Total(); n != tc.wantOK {
				t.Errorf("requests at the registry = %d, want %d (none past the budget)", n, tc.wantOK)
			}
		})
	}
}
