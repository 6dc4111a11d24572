package export

import (
	"errors"
	"fmt"
	"strings"
)

// A scope is what containers-policy.json, registries.d and OpenShift call a scope: a registry
// host[:port], optionally followed by a repository namespace or repository ("quay.io/org").
// It matches itself and everything below it, per path segment.

// normalizeScope lower-cases the host (hosts compare case-insensitively; paths are lower case
// in valid references anyway).
func normalizeScope(s string) string {
	host, path, ok := strings.Cut(s, "/")
	if !ok {
		return strings.ToLower(host)
	}
	return strings.ToLower(host) + "/" + path
}

// checkRegistryEntry validates an allowedRegistries entry: host[:port][/path], no scheme,
// tag, digest or wildcard.
func checkRegistryEntry(r string) error {
	switch {
	case r == "":
		return errors.New("empty")
	case strings.Contains(r, "://"):
		return errors.New("has a scheme; write host[:port][/path]")
	case strings.ContainsAny(r, "@ \t"):
		return errors.New("has a digest or white space")
	case strings.ContainsAny(r, "*?["):
		return errors.New("has a wildcard")
	case strings.HasSuffix(r, "/"):
		return errors.New("ends with /")
	}
	if _, path, ok := strings.Cut(r, "/"); ok && strings.Contains(path, ":") {
		return errors.New("has a tag; write host[:port][/path]")
	}
	return nil
}

// covers reports whether scope a matches everything s matches.
func covers(a, s string) bool { return s == a || strings.HasPrefix(s, a+"/") }

// globPrefix splits an image glob over normalised references ("quay.io/org/**",
// "registry.k8s.io/pause:3.*") into its longest literal repository prefix and whether the glob
// is exactly that prefix and everything below it ("prefix/**").
func globPrefix(glob string) (prefix string, whole bool, err error) {
	name, _, hasDigest := strings.Cut(glob, "@")
	segs := strings.Split(name, "/")
	if len(segs) > 1 {
		last := segs[len(segs)-1]
		if i := strings.LastIndex(last, ":"); i >= 0 {
			segs[len(segs)-1] = last[:i]
		}
	}
	n := 0
	for n < len(segs) && !strings.ContainsAny(segs[n], "*?[") {
		n++
	}
	if n == 0 || segs[0] == "" {
		return "", false, fmt.Errorf("image glob %q: the registry host has a wildcard; node policy needs a literal host", glob)
	}
	prefix = normalizeScope(strings.Join(segs[:n], "/"))
	whole = !hasDigest && n == len(segs)-1 && segs[n] == "**" && !strings.Contains(strings.TrimPrefix(name, strings.Join(segs[:n], "/")), ":")
	return prefix, whole, nil
}
