//go:build tools

// Package tools pins etcd (built with `go build go.etcd.io/etcd/server/v3`, whose root is
// package main) for the end-to-end test.
package tools

import _ "go.etcd.io/etcd/server/v3"
