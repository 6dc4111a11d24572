// Package e2e holds the end-to-end test (build tag e2e, `make e2e`): a real etcd,
// kube-apiserver and Gatekeeper manager started on loopback with a generated PKI, the imagetrust
// provider built from this repository, and an in-memory OCI registry, driven with kubectl and
// client-go. The tools it runs are pinned in the nested modules under tools/ and built by
// tools/build.sh into ~/.cache/imagetrust/tools.
//
// Without the tag only the static checks of manifests/ run (manifests_test.go).
package e2e
