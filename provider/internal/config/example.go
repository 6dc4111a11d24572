package config

import _ "embed"

//go:embed example.yaml
var example []byte

// Example returns the documented example configuration (YAML). It parses and validates.
func Example() []byte { return append([]byte(nil), example...) }
