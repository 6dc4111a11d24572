// Package e2e holds the end-to-end test (build tag e2e, `make e2e`): a real etcd,
// kube-apiserver and Gatekeeper manager started on loopback with a generated PKI, the imagetrust
// provider built from this repository, and an in-memory OCI registry, driven with kubectl and
// client-go. The tools it runs are pinned in the nested modules under tools/ and built by
// tools/build.sh into ~/.cache/imagetrust/tools (make e2e-tools).
//
// Environment: TOOLS (tool cache directory), E2E_REPORT (file collecting what kubectl printed
// per scenario, timings and admission latencies), E2E_KEEP_LOGS (directory that receives the
// process logs of a failed run), KUBECTL (another kubectl binary, for debugging).
//
// Every process runs in its own process group and is stopped at test cleanup; the test fails if
// any member of a group survives. Without the tag only the static checks of manifests/ run
// (manifests_test.go).
package e2e
