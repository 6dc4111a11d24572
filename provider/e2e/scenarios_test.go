//go:build e2e

package e2e

import "testing"

func (s *stack) applyPolicies()                    {}
func (s *stack) scenarios(t *testing.T)            {}
func (s *stack) auditScenario(t *testing.T)        {}
func (s *stack) providerDownScenario(t *testing.T) {}
