package report

import (
	"encoding/json"
	"os"
	"path/filepath"
)

// WriteJSON writes v, indented, to path, making its directory: written whole
// and renamed, so a killed run leaves the previous file.
func WriteJSON(path string, v any) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(data, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
