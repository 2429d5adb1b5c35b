package children

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestPostgresReusesCluster: a second start over the same folder reuses the
// cluster and its superuser's password, kept 0600 by driftless's user.
func TestPostgresReusesCluster(t *testing.T) {
	dir, err := os.MkdirTemp("", "dl-pgc-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var dsns []string
	for i := range 2 {
		port, err := FreePort()
		if err != nil {
			t.Fatal(err)
		}
		p, dsn, err := StartPostgres(ctx, PostgresOptions{Dir: dir, Listen: fmt.Sprintf("127.0.0.1:%d", port)})
		if err != nil {
			t.Fatalf("start %d: %v", i, err)
		}
		if !PostgresAnswers(ctx, dsn) {
			t.Errorf("start %d: the server does not answer", i)
		}
		if err := p.Stop(15 * time.Second); err != nil {
			t.Errorf("stop %d: %v", i, err)
		}
		dsns = append(dsns, dsn)
	}
	pw := func(dsn string) string { return dsn[:len("postgres://driftless:")+43] }
	if pw(dsns[0]) != pw(dsns[1]) {
		t.Error("the second start made a new password: the cluster was not reused")
	}
	st, err := os.Stat(filepath.Join(dir, passwordFile))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("password file mode %v, want 0600", st.Mode().Perm())
	}
}

// TestPostgresUnreachableFolder: a folder the postgres user cannot reach
// (t.TempDir's parent is 0700, as /root is) fails with what to do, before
// initdb runs.
func TestPostgresUnreachableFolder(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test needs root (PostgreSQL then runs as the postgres user): run `make test` as root")
	}
	parent := t.TempDir()
	if err := os.Chmod(parent, 0o700); err != nil {
		t.Fatal(err)
	}
	_, _, err := StartPostgres(context.Background(), PostgresOptions{Dir: filepath.Join(parent, "pg"), Listen: "127.0.0.1:1"})
	if err == nil || !strings.Contains(err.Error(), "out of reach") {
		t.Fatalf("StartPostgres in an unreachable folder: %v", err)
	}
}
