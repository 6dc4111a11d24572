// Package provider has no code: deps_tmp.go keeps the modules the provider is built from in
// go.mod until every one of them is imported by a real package.
package provider

import (
	// Blank imports: they only pin these modules in go.mod (see the package comment).
	_ "github.com/distribution/reference"
	_ "github.com/google/go-containerregistry/pkg/authn/kubernetes"
	_ "github.com/google/go-containerregistry/pkg/registry"
	_ "github.com/google/go-containerregistry/pkg/v1/random"
	_ "github.com/google/go-containerregistry/pkg/v1/remote"
	_ "github.com/open-policy-agent/frameworks/constraint/pkg/client"
	_ "github.com/open-policy-agent/frameworks/constraint/pkg/client/drivers/rego"
	_ "github.com/open-policy-agent/frameworks/constraint/pkg/externaldata"
	_ "github.com/open-policy-agent/gatekeeper/v3/apis"
	_ "github.com/open-policy-agent/gatekeeper/v3/pkg/gator/verify"
	_ "github.com/open-policy-agent/gatekeeper/v3/pkg/target"
	_ "github.com/open-policy-agent/opa/v1/rego"
	_ "github.com/prometheus/client_golang/prometheus/promhttp"
	_ "github.com/sigstore/cosign/v2/pkg/cosign"
	_ "github.com/sigstore/cosign/v2/pkg/cosign/attestation"
	_ "github.com/sigstore/cosign/v2/pkg/oci/mutate"
	_ "github.com/sigstore/cosign/v2/pkg/oci/remote"
	_ "github.com/sigstore/cosign/v2/pkg/oci/static"
	_ "github.com/sigstore/sigstore-go/pkg/testing/ca"
	_ "github.com/sigstore/sigstore-go/pkg/verify"
	_ "github.com/sigstore/sigstore/pkg/signature"
	_ "github.com/sigstore/sigstore/pkg/signature/kms"
	_ "golang.org/x/sync/singleflight"
	_ "k8s.io/client-go/kubernetes/fake"
	_ "sigs.k8s.io/controller-runtime/pkg/certwatcher"
	_ "sigs.k8s.io/yaml"
)
