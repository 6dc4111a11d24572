package templategen

import (
	"os"
	"path/filepath"
)

func mkdirWrite(p string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return os.WriteFile(p, b, 0o600)
}
