package secrets

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSealOpen: a value sealed for one place opens there with the same
// keys (read back from their folder), not elsewhere, not tampered with,
// not with other keys; key files are private.
func TestSealOpen(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	k, err := LoadOrCreate(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{sealKeyFile, ageKeyFile} {
		st, err := os.Stat(filepath.Join(dir, f))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v %v", f, st, err)
		}
	}
	sealed, err := k.Seal([]byte("password=hunter2"), "driftless/bindings/dev/web/db")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(sealed, "hunter2") || !strings.HasPrefix(sealed, "v1:") {
		t.Fatalf("sealed %q", sealed)
	}
	again, err := LoadOrCreate(dir)
	if err != nil {
		t.Fatal(err)
	}
	if plain, err := again.Open(sealed, "driftless/bindings/dev/web/db"); err != nil || string(plain) != "password=hunter2" {
		t.Fatalf("open: %q %v", plain, err)
	}
	other, err := LoadOrCreate(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	tampered := sealed[:len(sealed)-4] + "AAA="
	tests := []struct {
		name, sealed, aad string
		keys              *Keys
	}{
		{"moved", sealed, "driftless/bindings/dev/other/db", again},
		{"tampered", tampered, "driftless/bindings/dev/web/db", again},
		{"other keys", sealed, "driftless/bindings/dev/web/db", other},
		{"not sealed", "hunter2", "x", again},
	}
	for _, tt := range tests {
		if _, err := tt.keys.Open(tt.sealed, tt.aad); err == nil || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%s: error %v", tt.name, err)
		}
	}
}

// TestAge: what Encrypt makes for the platform's public key, Decrypt
// opens; another platform cannot.
func TestAge(t *testing.T) {
	k, err := LoadOrCreate(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ct, err := Encrypt(k.Recipient(), []byte(`{"password":"hunter2"}`))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(ct, "-----BEGIN AGE ENCRYPTED FILE-----") || strings.Contains(ct, "hunter2") {
		t.Fatalf("ciphertext %q", ct)
	}
	if plain, err := k.Decrypt("  " + ct + "\n"); err != nil || string(plain) != `{"password":"hunter2"}` {
		t.Fatalf("decrypt: %q %v", plain, err)
	}
	other, _ := LoadOrCreate(t.TempDir())
	if _, err := other.Decrypt(ct); err == nil {
		t.Fatal("another platform decrypted it")
	}
	if _, err := Encrypt("not-a-key", nil); err == nil {
		t.Fatal("encrypted to a bad key")
	}
}
