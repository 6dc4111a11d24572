package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"

	"sigs.k8s.io/yaml"
)

// Load reads, strictly decodes, defaults and validates the configuration file at path.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	c, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

// Parse strictly decodes YAML (or JSON) configuration, fills in defaults and validates it.
// Unknown fields, duplicate keys and wrongly typed values are errors that name the field path
// (`registries[2].mirrors[0].hosst: unknown field`).
func Parse(data []byte) (*Config, error) {
	c, err := Decode(data)
	if err != nil {
		return nil, err
	}
	c.ApplyDefaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// Decode strictly decodes YAML (or JSON) configuration without defaults or validation.
func Decode(data []byte) (*Config, error) {
	js, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		return nil, fmt.Errorf("parsing YAML: %w", err)
	}
	var doc any
	if err := json.Unmarshal(js, &doc); err != nil {
		return nil, fmt.Errorf("parsing YAML: %w", err)
	}
	if doc != nil {
		if err := checkShape(doc, reflect.TypeFor[Config](), ""); err != nil {
			return nil, err
		}
	}
	var c Config
	if err := yaml.UnmarshalStrict(data, &c); err != nil {
		return nil, fmt.Errorf("decoding config: %w", err)
	}
	return &c, nil
}

// FieldError is a problem with one configuration field.
type FieldError struct {
	// Field is the path of the field: "server.tls.certFile", "registries[2].mirrors[0].host".
	Field   string
	Problem string
}

func (e *FieldError) Error() string {
	if e.Field == "" {
		return e.Problem
	}
	return e.Field + ": " + e.Problem
}

func fieldErr(field, format string, args ...any) error {
	return &FieldError{Field: field, Problem: fmt.Sprintf(format, args...)}
}

var unmarshalerType = reflect.TypeFor[json.Unmarshaler]()

// checkShape walks a decoded JSON document against the Go type it will be decoded into and
// reports the first unknown field or mistyped value with its path. Field names match exactly
// (encoding/json alone would accept "Host" for "host").
func checkShape(v any, t reflect.Type, path string) error {
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		raw, err := json.Marshal(v)
		if err != nil {
			return fieldErr(path, "%v", err)
		}
		u := reflect.New(t).Interface().(json.Unmarshaler)
		if err := u.UnmarshalJSON(raw); err != nil {
			return fieldErr(path, "%v", err)
		}
		return nil
	}
	if v == nil {
		return nil // null leaves the zero value
	}
	switch t.Kind() {
	case reflect.Pointer:
		return checkShape(v, t.Elem(), path)
	case reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			return fieldErr(path, "expected an object, got %s", jsonKind(v))
		}
		fields := jsonFields(t)
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			f, ok := fields[k]
			if !ok {
				known := make([]string, 0, len(fields))
				for name := range fields {
					known = append(known, name)
				}
				sort.Strings(known)
				return fieldErr(join(path, k), "unknown field (known fields here: %s)", strings.Join(known, ", "))
			}
			if err := checkShape(m[k], f, join(path, k)); err != nil {
				return err
			}
		}
		return nil
	case reflect.Slice:
		s, ok := v.([]any)
		if !ok {
			return fieldErr(path, "expected a list, got %s", jsonKind(v))
		}
		for i, e := range s {
			if err := checkShape(e, t.Elem(), path+"["+strconv.Itoa(i)+"]"); err != nil {
				return err
			}
		}
		return nil
	case reflect.Map:
		m, ok := v.(map[string]any)
		if !ok {
			return fieldErr(path, "expected an object, got %s", jsonKind(v))
		}
		for k, e := range m {
			if err := checkShape(e, t.Elem(), join(path, k)); err != nil {
				return err
			}
		}
		return nil
	case reflect.String:
		if _, ok := v.(string); !ok {
			return fieldErr(path, "expected a string, got %s", jsonKind(v))
		}
	case reflect.Bool:
		if _, ok := v.(bool); !ok {
			return fieldErr(path, "expected true or false, got %s", jsonKind(v))
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		f, ok := v.(float64)
		if !ok || f != math.Trunc(f) || reflect.Zero(t).OverflowInt(int64(f)) || math.Abs(f) > 1<<53 {
			return fieldErr(path, "expected an integer, got %s", jsonKind(v))
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		f, ok := v.(float64)
		if !ok || f != math.Trunc(f) || f < 0 || f > 1<<53 || reflect.Zero(t).OverflowUint(uint64(f)) {
			return fieldErr(path, "expected a non-negative integer, got %s", jsonKind(v))
		}
	case reflect.Float32, reflect.Float64:
		if _, ok := v.(float64); !ok {
			return fieldErr(path, "expected a number, got %s", jsonKind(v))
		}
	}
	return nil
}

// jsonFields maps the JSON names of a struct's fields (including embedded structs) to their types.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for f := range t.Fields() {
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				for k, v := range jsonFields(ft) {
					out[k] = v
				}
				continue
			}
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f.Type
	}
	return out
}

func jsonKind(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		return strconv.Quote(x)
	case bool, float64:
		return fmt.Sprint(x)
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// Marshal renders the configuration as YAML (defaults included once applied).
func (c *Config) Marshal() ([]byte, error) {
	js, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	return yaml.JSONToYAML(js)
}

// FieldErrors unpacks the per-field problems of an error returned by Validate or Parse.
func FieldErrors(err error) []*FieldError {
	var out []*FieldError
	var walk func(error)
	walk = func(e error) {
		if e == nil {
			return
		}
		var fe *FieldError
		if errors.As(e, &fe) && fe == e { //nolint:errorlint // e itself is the FieldError; wrapped ones are unpacked below
			out = append(out, fe)
			return
		}
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, x := range j.Unwrap() {
				walk(x)
			}
			return
		}
		if fe != nil {
			out = append(out, fe)
		}
	}
	walk(err)
	return slices.Clip(out)
}
