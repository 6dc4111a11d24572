package report

import (
	"errors"
	"fmt"
	"net"
	"net/url"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
)

// UnreachableError says the API server could not be reached.
type UnreachableError struct {
	Server string
	Err    error
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("API server %s is unreachable: %v", e.Server, e.Err)
}

func (e *UnreachableError) Unwrap() error { return e.Err }

// MissingCRDError says a resource the report needs is not served by the API server.
type MissingCRDError struct {
	// Resource is resource.group, for example constrainttemplates.templates.gatekeeper.sh.
	Resource string
	// Needed says what needs it ("Gatekeeper", "--apply -format openreports").
	Needed string
}

func (e *MissingCRDError) Error() string {
	return fmt.Sprintf("the API server does not serve %s: its CustomResourceDefinition is not installed (needed by %s)", e.Resource, e.Needed)
}

// ForbiddenError says RBAC denied a request; it names the verb and resource to grant.
type ForbiddenError struct {
	Verb      string
	Resource  string // resource.group
	Namespace string // "" for cluster scope
	Err       error
}

func (e *ForbiddenError) Error() string {
	scope := "at cluster scope"
	if e.Namespace != "" {
		scope = "in namespace " + e.Namespace
	}
	return fmt.Sprintf("forbidden: cannot %s %s %s (grant it with the ClusterRole in manifests/components/report): %v", e.Verb, e.Resource, scope, e.Err)
}

func (e *ForbiddenError) Unwrap() error { return e.Err }

// apiError turns a client error into one of the typed errors above where it is one.
func apiError(err error, server, verb, resource, namespace, needed string) error {
	if err == nil {
		return nil
	}
	var ue *url.Error
	var ne net.Error
	var nm *meta.NoKindMatchError
	var nr *meta.NoResourceMatchError
	switch {
	case apierrors.IsForbidden(err):
		return &ForbiddenError{Verb: verb, Resource: resource, Namespace: namespace, Err: err}
	case errors.As(err, &nm), errors.As(err, &nr):
		return &MissingCRDError{Resource: resource, Needed: needed}
	case apierrors.IsNotFound(err) && namespace == "":
		return &MissingCRDError{Resource: resource, Needed: needed}
	case errors.As(err, &ue), errors.As(err, &ne):
		return &UnreachableError{Server: server, Err: err}
	}
	return fmt.Errorf("%s %s: %w", verb, resource, err)
}

func isMissingCRD(err error) bool {
	var m *MissingCRDError
	return errors.As(err, &m)
}
