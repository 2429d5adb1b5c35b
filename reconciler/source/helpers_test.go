package source

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// gitPath is the git binary the tests drive; a missing git fails them.
func gitPath(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("git")
	if err != nil {
		t.Fatalf("these tests need the git CLI: install git (`make setup`): %v", err)
	}
	return p
}

// run runs git in dir with a fixed identity and no user or system config,
// and returns its trimmed output.
func run(t testing.TB, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command(gitPath(t), args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"GIT_AUTHOR_NAME=Dev One", "GIT_AUTHOR_EMAIL=dev@driftless.invalid",
		"GIT_COMMITTER_NAME=Dev One", "GIT_COMMITTER_EMAIL=dev@driftless.invalid",
		"GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", "GIT_TERMINAL_PROMPT=0")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("git %s (in %s): %v\n%s", strings.Join(args, " "), dir, err, out.String())
	}
	return strings.TrimSpace(out.String())
}

// newWorkTree makes a work tree on branch main with no commit yet.
func newWorkTree(t testing.TB) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "work")
	run(t, t.TempDir(), "init", "-q", "-b", "main", dir)
	return dir
}

// newBare makes a bare repository with HEAD on main and adds it to work as
// remote "origin".
func newBare(t testing.TB, root, name, work string) string {
	t.Helper()
	bare := filepath.Join(root, name)
	run(t, root, "init", "-q", "--bare", "-b", "main", bare)
	run(t, work, "remote", "add", "origin", bare)
	return bare
}

// writeFiles writes files (slash paths → content) under dir.
func writeFiles(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// commit stages everything in dir, commits and returns the new HEAD.
func commit(t testing.TB, dir, msg string, files map[string]string) string {
	t.Helper()
	writeFiles(t, dir, files)
	run(t, dir, "add", "-A")
	run(t, dir, "commit", "-q", "--allow-empty", "-m", msg)
	return run(t, dir, "rev-parse", "HEAD")
}

// serveGit serves the bare repositories under root over smart HTTP with the
// real `git http-backend` on 127.0.0.1. If user is not empty, requests must
// carry that basic auth.
func serveGit(t testing.TB, root, user, password string) string {
	t.Helper()
	backend := &cgi.Handler{
		Path:       gitPath(t),
		Args:       []string{"http-backend"},
		Root:       "/",
		Env:        []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1", "GIT_CONFIG_NOSYSTEM=1"},
		InheritEnv: []string{"PATH"},
	}
	h := http.Handler(backend)
	if user != "" {
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			u, p, ok := r.BasicAuth()
			if !ok || u != user || p != password {
				w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return
			}
			backend.ServeHTTP(w, r)
		})
	}
	srv := httptest.NewServer(h) // binds 127.0.0.1
	t.Cleanup(srv.Close)
	return srv.URL
}

// logBuffer is a concurrency-safe log sink.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func testLogger() (*slog.Logger, *logBuffer) {
	lb := &logBuffer{}
	return slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug})), lb
}

// mustNew builds a source or fails the test.
func mustNew(t testing.TB, cfg Config) *Source {
	t.Helper()
	if cfg.Name == "" {
		cfg.Name = "test"
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatalf("New(%+v): %v", cfg, err)
	}
	return s
}

// fetch fetches with a bounded context or fails the test.
func fetch(t testing.TB, s *Source) *Snapshot {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	snap, err := s.Fetch(ctx)
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	return snap
}

// eventually polls cond every 10ms until it holds, failing after timeout.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
