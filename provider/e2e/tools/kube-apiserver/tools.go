//go:build tools

// Package tools pins kube-apiserver and kubectl (with its embedded kustomize) for the
// end-to-end test and the manifest check, at the same Kubernetes version.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
