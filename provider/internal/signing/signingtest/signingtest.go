// Package signingtest gives tests a fresh signing key and the authority that trusts it.
package signingtest

import (
	"testing"

	"github.com/imagetrust/imagetrust/provider/internal/config"
	"github.com/imagetrust/imagetrust/provider/internal/signing"
)

// Key is a fresh ECDSA P-256 key (signing.NewKey) whose public key file lives in the test's
// temporary directory.
type Key struct{ *signing.Key }

// NewKey generates a key for t; failing to, it fails t.
func NewKey(t testing.TB) *Key {
	t.Helper()
	k, err := signing.NewKey(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return &Key{k}
}

// Authority is the provider's authority name that trusts k by its public key file.
func (k *Key) Authority(name string) config.Authority {
	return config.Authority{Name: name, Key: &config.Key{File: k.PublicFile}}
}
