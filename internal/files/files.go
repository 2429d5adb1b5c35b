// Package files writes files whole or not at all and reads files that
// hold secrets only when nobody but their owner may read them.
package files

import (
	"fmt"
	"os"
)

// WriteAtomic writes data to path with mode: to a temporary file beside
// it, then renamed over it, so that a reader sees the old file or the new
// one, never half of one. The mode is set even when path existed with
// another.
func WriteAtomic(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Chmod(tmp, mode); err != nil { // a leftover temporary file kept its mode
		os.Remove(tmp)
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// ReadPrivate reads a file that holds secrets, refusing one that its
// group or others may read.
func ReadPrivate(path string) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("%s has mode %04o: it holds secrets, make it 0600", path, perm)
	}
	return os.ReadFile(path)
}
