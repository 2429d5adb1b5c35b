package files

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWriteAtomicAndReadPrivate(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "secret")
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadPrivate(path); err == nil || !strings.Contains(err.Error(), "mode 0644") {
		t.Fatalf("ReadPrivate of a 0644 file: %v", err)
	}
	if err := WriteAtomic(path, []byte("new"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := ReadPrivate(path)
	if err != nil || string(got) != "new" {
		t.Fatalf("ReadPrivate = %q, %v", got, err)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600 (the file existed with 0644)", st.Mode().Perm())
	}
	if _, err := os.Stat(path + ".tmp"); !os.IsNotExist(err) {
		t.Errorf("the temporary file is left: %v", err)
	}
	if err := WriteAtomic(filepath.Join(dir, "none", "x"), nil, 0o600); err == nil {
		t.Error("a write into a missing folder succeeded")
	}
}
