package children

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestFreePortClaims: a port FreePort handed out is not handed out again
// while its claim lasts, and a stale claim is taken over.
func TestFreePortClaims(t *testing.T) {
	seen := map[int]bool{}
	for range 200 {
		p, err := FreePort()
		if err != nil {
			t.Fatal(err)
		}
		if seen[p] {
			t.Fatalf("port %d handed out twice", p)
		}
		seen[p] = true
	}
	dir := t.TempDir()
	if !claimPort(dir, 12345) || claimPort(dir, 12345) {
		t.Fatal("a fresh claim was not exclusive")
	}
	old := time.Now().Add(-2 * portClaim)
	if err := os.Chtimes(filepath.Join(dir, "12345"), old, old); err != nil {
		t.Fatal(err)
	}
	if !claimPort(dir, 12345) {
		t.Error("a stale claim was not taken over")
	}
}
