package main

import (
	"errors"
	"io/fs"
	"testing"
)

func TestGCDefaults(t *testing.T) {
	files := func(m map[string]string) func(string) ([]byte, error) {
		return func(name string) ([]byte, error) {
			if v, ok := m[name]; ok {
				return []byte(v), nil
			}
			return nil, fs.ErrNotExist
		}
	}
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	// defaults: GOGC and its headroom floor, no memory limit.
	defaults := gcSettings{gogc: DefaultGOGC, minHeadroom: DefaultMinHeadroom}
	withLimit := func(limit int64) gcSettings { s := defaults; s.limit = limit; return s }
	for _, tc := range []struct {
		name  string
		env   map[string]string
		files map[string]string
		want  gcSettings
	}{
		{"no cgroup limit file", nil, nil, defaults},
		{"cgroup v2 unlimited", nil, map[string]string{"/sys/fs/cgroup/memory.max": "max\n"}, defaults},
		{"cgroup v2 limit", nil, map[string]string{"/sys/fs/cgroup/memory.max": "268435456\n"}, withLimit(228170137)},
		{"cgroup v1 limit", nil, map[string]string{"/sys/fs/cgroup/memory/memory.limit_in_bytes": "134217728"}, withLimit(114085068)},
		{"cgroup v1 unlimited", nil, map[string]string{"/sys/fs/cgroup/memory/memory.limit_in_bytes": "9223372036854771712"}, defaults},
		{"operator GOGC and GOMEMLIMIT win", map[string]string{"GOGC": "200", "GOMEMLIMIT": "1GiB"},
			map[string]string{"/sys/fs/cgroup/memory.max": "268435456"}, gcSettings{}},
		{"operator GOGC only", map[string]string{"GOGC": "off"},
			map[string]string{"/sys/fs/cgroup/memory.max": "268435456"}, gcSettings{limit: 228170137}},
		{"garbage in memory.max", nil, map[string]string{"/sys/fs/cgroup/memory.max": "lots"}, defaults},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := gcDefaults(env(tc.env), files(tc.files)); got != tc.want {
				t.Errorf("gcDefaults() = %+v, want %+v", got, tc.want)
			}
		})
	}
	if got := gcDefaults(env(nil), func(string) ([]byte, error) { return nil, errors.New("permission denied") }); got != (defaults) {
		t.Errorf("gcDefaults(unreadable cgroup files) = %+v, want GOGC only", got)
	}
}
