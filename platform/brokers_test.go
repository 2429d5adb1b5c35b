package platform

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestNewBrokers: --broker NAME=URL makes a client per broker, its URL
// shown without credentials; bad names, URLs and repeats are refused
// without showing a password.
func TestNewBrokers(t *testing.T) {
	bs, err := newBrokers([]string{"postgres=http://admin:hunter2@127.0.0.1:9000", "other-one=https://broker.example.com/osb"}, slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	if len(bs) != 2 || bs[0].Name() != "postgres" || bs[0].(registeredBroker).URL() != "http://127.0.0.1:9000" {
		t.Fatalf("brokers %+v", bs)
	}
	tests := []struct{ spec, want string }{
		{"http://127.0.0.1:9000", "want NAME=URL"},
		{"Bad=http://127.0.0.1:9000", "want NAME=URL"},
		{"pg=ftp://admin:hunter2@host/", "is not an http(s) URL"},
		{"pg=127.0.0.1:9000", "is not an http(s) URL"},
	}
	for _, tt := range tests {
		_, err := newBrokers([]string{tt.spec}, slog.Default())
		if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%q: error %v, want %q without the password", tt.spec, err, tt.want)
		}
	}
	if _, err := newBrokers([]string{"pg=http://a/", "pg=http://b/"}, slog.Default()); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Errorf("a repeated broker: %v", err)
	}
}

// TestPostgresDir: dev's cluster goes under its data folder when every
// user can reach it, else in a folder of its own named after it.
func TestPostgresDir(t *testing.T) {
	open, err := os.MkdirTemp("", "dl-pgdir-") // t.TempDir's parent is 0700
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(open) })
	if err := os.Chmod(open, 0o755); err != nil {
		t.Fatal(err)
	}
	closed := filepath.Join(open, "private")
	if err := os.Mkdir(closed, 0o700); err != nil {
		t.Fatal(err)
	}
	if got := postgresDir(filepath.Join(open, "data")); got != filepath.Join(open, "data", "postgres") || !traversable(open) {
		t.Fatalf("postgresDir(open) = %s", got)
	}
	got := postgresDir(filepath.Join(closed, "data"))
	if !strings.HasPrefix(got, DefaultDataDir+"/postgres-") || got == postgresDir(filepath.Join(open, "x")) {
		t.Fatalf("postgresDir(closed) = %s", got)
	}
	if again := postgresDir(filepath.Join(closed, "data")); again != got {
		t.Fatalf("not stable: %s, %s", got, again)
	}
}
