// Package interop holds the interop suite (build tag interop, `make test-interop`): images
// signed and attested by the real cosign CLIs (v2 and v3, built by the Makefile at pinned
// versions) with every key type and signature format, pushed to go-containerregistry's registry
// on loopback with and without the OCI referrers API, and looked up through the real provider
// (app.StartLoopback: the wiring imagetrust-provider runs) over mTLS. /v1/verify and /v1/scan
// answers are asserted field by field, including transplanted signatures, wrong keys and
// unsigned images; the outcomes are the matrix in docs/cosign-interop.md, which the suite
// checks (INTEROP_WRITE_DOC=1 rewrites it).
//
// Environment: COSIGN_V2 and COSIGN_V3, the paths of the two cosign binaries (required; make
// test-interop sets them). The CLIs run with an empty HOME and a proxy that refuses every
// connection beyond loopback, so a CLI that tries to reach Sigstore's public services fails
// loudly instead of passing on the network.
package interop
