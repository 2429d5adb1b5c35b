package source

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestRedact(t *testing.T) {
	tests := []struct{ in, want string }{
		{"https://user:secret@example.com/r.git", "https://user:xxxxx@example.com/r.git"},
		{"http://user:p@ss:w@rd@127.0.0.1:8080/r.git?x=1", "http://user:xxxxx@127.0.0.1:8080/r.git?x=1"},
		{"https://ghp_TOKEN@example.com/r.git", "https://xxxxx@example.com/r.git"},
		{"https://user:@example.com/r.git", "https://user:xxxxx@example.com/r.git"},
		{"https://example.com/r@v1.git", "https://example.com/r@v1.git"},
		{"https://example.com", "https://example.com"},
		{"https://u:secret@example.com", "https://u:xxxxx@example.com"},
		{"file:///srv/git/r.git", "file:///srv/git/r.git"},
		{"/srv/git/r@x", "/srv/git/r@x"},
		{"", ""},
		{"http://user:se cret@bad host/%zz", "http://user:xxxxx@bad host/%zz"},
	}
	for _, tt := range tests {
		if got := Redact(tt.in); got != tt.want {
			t.Errorf("Redact(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestNewValidates(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name    string
		cfg     Config
		wantErr string // "" = valid
	}{
		{"plain path", Config{Name: "a", URL: "."}, ""},
		{"file URL", Config{Name: "a", URL: "file:///srv/r.git", Dir: dir}, ""},
		{"https with auth", Config{Name: "a", URL: "https://u:secret@h/r.git", Dir: dir, Branch: "refs/heads/main"}, ""},
		{"no name", Config{URL: "https://u:secret@h/r.git", Dir: dir}, "name is empty"},
		{"no URL", Config{Name: "a"}, "URL is empty"},
		{"no dir", Config{Name: "a", URL: "https://u:secret@h/r.git"}, "needs a Dir"},
		{"ssh", Config{Name: "a", URL: "ssh://git@h/r.git", Dir: dir}, "unsupported scheme"},
		{"scp-style", Config{Name: "a", URL: "git@h:org/r.git", Dir: dir}, "scp-style"},
		{"file with host", Config{Name: "a", URL: "file://h/r.git", Dir: dir}, "file:///absolute/path"},
		{"bad branch", Config{Name: "a", URL: ".", Branch: "a..b"}, "branch"},
		{"negative poll", Config{Name: "a", URL: ".", Poll: -time.Second}, "negative"},
		{"bad URL", Config{Name: "a", URL: "https://u:secret@h:port/r.git", Dir: dir}, "parse URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := New(tt.cfg)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				if strings.Contains(s.URL(), "secret") {
					t.Errorf("URL() = %q leaks the password", s.URL())
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("New error = %v, want it to contain %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("error %q leaks the password", err)
			}
		})
	}
}

// kind sets up one way of reaching a repository that a work tree pushes to.
type kind struct {
	name string
	// setup returns the source URL and a push function run after each commit.
	setup func(t *testing.T, work string) (url string, push func())
}

var kinds = []kind{
	{"plain work tree", func(t *testing.T, work string) (string, func()) {
		return work, func() {}
	}},
	{"plain bare path", func(t *testing.T, work string) (string, func()) {
		bare := newBare(t, t.TempDir(), "r.git", work)
		return bare, func() { run(t, work, "push", "-q", "-f", "origin", "main") }
	}},
	{"file URL", func(t *testing.T, work string) (string, func()) {
		bare := newBare(t, t.TempDir(), "r.git", work)
		return "file://" + bare, func() { run(t, work, "push", "-q", "-f", "origin", "main") }
	}},
	{"http URL", func(t *testing.T, work string) (string, func()) {
		root := t.TempDir()
		newBare(t, root, "r.git", work)
		return serveGit(t, root, "", "") + "/r.git", func() { run(t, work, "push", "-q", "-f", "origin", "main") }
	}},
	{"http URL with basic auth", func(t *testing.T, work string) (string, func()) {
		root := t.TempDir()
		newBare(t, root, "r.git", work)
		u := serveGit(t, root, "deploy", "s3cr3t-pw")
		u = strings.Replace(u, "http://", "http://deploy:s3cr3t-pw@", 1)
		return u + "/r.git", func() { run(t, work, "push", "-q", "-f", "origin", "main") }
	}},
}

func TestFetchFollowsBranch(t *testing.T) {
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			work := newWorkTree(t)
			url, push := k.setup(t, work)
			c1 := commit(t, work, "first\n\nbody", map[string]string{"apps/a/manifest.yml": "applications: []\n"})
			push()
			log, logs := testLogger()
			dir := filepath.Join(t.TempDir(), "clone")
			s := mustNew(t, Config{Name: "k", URL: url, Dir: dir, Log: log})

			snap := fetch(t, s)
			if snap.Commit != c1 || snap.Branch != "main" || s.Branch() != "main" {
				t.Fatalf("first fetch: commit %s branch %q/%q, want %s main", snap.Commit, snap.Branch, s.Branch(), c1)
			}
			if snap.Message != "first\n\nbody" || snap.Author != "Dev One <dev@driftless.invalid>" || time.Since(snap.Time) > time.Hour {
				t.Errorf("metadata: %q %q %v", snap.Message, snap.Author, snap.Time)
			}
			if s.LastError() != nil || s.LastFetch().IsZero() {
				t.Errorf("LastError %v, LastFetch %v", s.LastError(), s.LastFetch())
			}
			if again := fetch(t, s); again.Commit != c1 {
				t.Fatalf("unchanged fetch: %s, want %s", again.Commit, c1)
			}

			c2 := commit(t, work, "second", map[string]string{"apps/a/app.txt": "v2"})
			push()
			if snap := fetch(t, s); snap.Commit != c2 {
				t.Fatalf("after a new commit: %s, want %s", snap.Commit, c2)
			}
			data, err := fs.ReadFile(fetch(t, s).FS(), "apps/a/app.txt")
			if err != nil || string(data) != "v2" {
				t.Fatalf("ReadFile = %q, %v", data, err)
			}
			if strings.Contains(logs.String(), "s3cr3t-pw") || strings.Contains(s.URL(), "s3cr3t-pw") {
				t.Errorf("password leaked: URL %q, logs:\n%s", s.URL(), logs)
			}
		})
	}
}

func TestPlainWorkTree(t *testing.T) {
	work := newWorkTree(t)
	c1 := commit(t, work, "one", map[string]string{"a.txt": "committed", "b.txt": "b"})
	s := mustNew(t, Config{URL: work})

	// Uncommitted edits (unstaged, staged, untracked) are ignored.
	writeFiles(t, work, map[string]string{"a.txt": "edited", "b.txt": "staged", "new.txt": "untracked"})
	run(t, work, "add", "b.txt")
	snap := fetch(t, s)
	if snap.Commit != c1 {
		t.Fatalf("commit %s, want %s", snap.Commit, c1)
	}
	for name, want := range map[string]string{"a.txt": "committed", "b.txt": "b"} {
		if got, err := fs.ReadFile(snap.FS(), name); err != nil || string(got) != want {
			t.Errorf("%s = %q, %v; want %q", name, got, err, want)
		}
	}
	if _, err := fs.Stat(snap.FS(), "new.txt"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("untracked file visible: %v", err)
	}
	run(t, work, "reset", "-q", "--hard")

	// A branch switch is followed; a configured branch is not.
	run(t, work, "checkout", "-q", "-b", "feature")
	c2 := commit(t, work, "on feature", map[string]string{"f.txt": "f"})
	pinned := mustNew(t, Config{URL: work, Branch: "main"})
	steps := []struct {
		name         string
		src          *Source
		commit, want string
	}{
		{"HEAD on feature", s, c2, "feature"},
		{"pinned to main", pinned, c1, "main"},
	}
	for _, st := range steps {
		if snap := fetch(t, st.src); snap.Commit != st.commit || snap.Branch != st.want || st.src.Branch() != st.want {
			t.Errorf("%s: %s on %q, want %s on %q", st.name, snap.Commit, snap.Branch, st.commit, st.want)
		}
	}
	run(t, work, "checkout", "-q", "main")
	if snap := fetch(t, s); snap.Commit != c1 || s.Branch() != "main" {
		t.Errorf("back on main: %s on %q", snap.Commit, s.Branch())
	}
	run(t, work, "checkout", "-q", "--detach", c2)
	if snap := fetch(t, s); snap.Commit != c2 || snap.Branch != "" {
		t.Errorf("detached: %s on %q, want %s on \"\"", snap.Commit, snap.Branch, c2)
	}

	// A branch without commits is an error, recorded.
	empty := mustNew(t, Config{URL: newWorkTree(t)})
	if _, err := empty.Fetch(context.Background()); err == nil || empty.LastError() == nil {
		t.Fatalf("empty repository: err %v, LastError %v", err, empty.LastError())
	}
}

func TestForcePushFollowed(t *testing.T) {
	for _, k := range kinds[2:] { // the cloned kinds
		t.Run(k.name, func(t *testing.T) {
			work := newWorkTree(t)
			url, push := k.setup(t, work)
			c1 := commit(t, work, "one", map[string]string{"x": "1"})
			c2 := commit(t, work, "two", map[string]string{"x": "2"})
			push()
			s := mustNew(t, Config{URL: url, Dir: filepath.Join(t.TempDir(), "clone")})
			if got := fetch(t, s).Commit; got != c2 {
				t.Fatalf("got %s, want %s", got, c2)
			}
			run(t, work, "reset", "-q", "--hard", c1)
			c3 := commit(t, work, "rewritten", map[string]string{"x": "3"})
			push()
			if got := fetch(t, s).Commit; got != c3 {
				t.Fatalf("after force-push: %s, want %s", got, c3)
			}
			// Back to a commit whose objects the clone already has.
			run(t, work, "reset", "-q", "--hard", c1)
			push()
			if got := fetch(t, s).Commit; got != c1 {
				t.Fatalf("after force-push back: %s, want %s", got, c1)
			}
		})
	}
}

func packs(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "objects", "pack", "*.pack"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestRestartReusesClone(t *testing.T) {
	work := newWorkTree(t)
	bare := newBare(t, t.TempDir(), "r.git", work)
	c1 := commit(t, work, "one", map[string]string{"x": "1"})
	run(t, work, "push", "-q", "origin", "main")
	dir := filepath.Join(t.TempDir(), "state", "clone") // parent is created too
	cfg := Config{Name: "r", URL: "file://" + bare, Dir: dir}

	if got := fetch(t, mustNew(t, cfg)).Commit; got != c1 {
		t.Fatalf("got %s, want %s", got, c1)
	}
	before := packs(t, dir)
	marker := filepath.Join(dir, "description")
	if err := os.WriteFile(marker, []byte("kept\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	restarted := mustNew(t, cfg)
	if got := fetch(t, restarted).Commit; got != c1 {
		t.Fatalf("after restart: %s, want %s", got, c1)
	}
	if after := packs(t, dir); len(after) != len(before) || len(after) == 0 {
		t.Errorf("packs before %v, after an unchanged fetch %v: want the same", before, after)
	}
	if data, err := os.ReadFile(marker); err != nil || string(data) != "kept\n" {
		t.Errorf("clone was recreated: %q, %v", data, err)
	}
	if cfgFile, err := os.ReadFile(filepath.Join(dir, "config")); err != nil || strings.Contains(string(cfgFile), "[remote") {
		t.Errorf("clone config: %q, %v", cfgFile, err)
	}
	c2 := commit(t, work, "two", map[string]string{"x": "2"})
	run(t, work, "push", "-q", "origin", "main")
	if got := fetch(t, restarted).Commit; got != c2 {
		t.Fatalf("new commit after restart: %s, want %s", got, c2)
	}
}

func TestRemoteHEADBranch(t *testing.T) {
	root := t.TempDir()
	work := newWorkTree(t)
	bare := newBare(t, root, "r.git", work)
	commit(t, work, "one", map[string]string{"x": "1"})
	run(t, work, "push", "-q", "origin", "main")
	run(t, work, "checkout", "-q", "-b", "trunk")
	c2 := commit(t, work, "two", map[string]string{"x": "2"})
	run(t, work, "push", "-q", "origin", "trunk")
	run(t, bare, "symbolic-ref", "HEAD", "refs/heads/trunk")
	srv := serveGit(t, root, "", "")

	for _, url := range []string{"file://" + bare, srv + "/r.git"} {
		s := mustNew(t, Config{URL: url, Dir: filepath.Join(t.TempDir(), "clone")})
		if snap := fetch(t, s); snap.Commit != c2 || snap.Branch != "trunk" || s.Branch() != "trunk" {
			t.Errorf("%s: %s on %q, want %s on trunk", url, snap.Commit, snap.Branch, c2)
		}
		missing := mustNew(t, Config{URL: url, Branch: "nope", Dir: filepath.Join(t.TempDir(), "clone")})
		if _, err := missing.Fetch(context.Background()); err == nil || !strings.Contains(err.Error(), `"nope" not found`) {
			t.Errorf("%s: missing branch: %v", url, err)
		}
	}
}

func TestHTTPAuthErrors(t *testing.T) {
	root := t.TempDir()
	work := newWorkTree(t)
	newBare(t, root, "r.git", work)
	commit(t, work, "one", map[string]string{"x": "1"})
	run(t, work, "push", "-q", "origin", "main")
	srv := serveGit(t, root, "deploy", "right-pw")
	host := strings.TrimPrefix(srv, "http://")

	log, logs := testLogger()
	dir := filepath.Join(t.TempDir(), "clone")
	wrong := mustNew(t, Config{URL: "http://deploy:wrong-pw@" + host + "/r.git", Dir: dir, Log: log})
	_, err := wrong.Fetch(context.Background())
	if err == nil {
		t.Fatal("fetch with a wrong password succeeded")
	}
	for _, text := range []string{err.Error(), logs.String(), wrong.LastError().Error()} {
		if strings.Contains(text, "wrong-pw") {
			t.Errorf("password leaked in %q", text)
		}
	}
	if !strings.Contains(err.Error(), "deploy:xxxxx@") {
		t.Errorf("error %q does not name the redacted URL", err)
	}

	right := mustNew(t, Config{URL: "http://deploy:right-pw@" + host + "/r.git", Dir: dir, Log: log})
	fetch(t, right)
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err == nil && strings.Contains(string(data), "right-pw") {
			t.Errorf("password written to %s", p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestCloneDirNotARepository(t *testing.T) {
	work := newWorkTree(t)
	bare := newBare(t, t.TempDir(), "r.git", work)
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"precious.txt": "do not touch"})
	s := mustNew(t, Config{URL: "file://" + bare, Dir: dir})
	if _, err := s.Fetch(context.Background()); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("Fetch into a foreign dir: %v", err)
	}
	if data, _ := os.ReadFile(filepath.Join(dir, "precious.txt")); string(data) != "do not touch" {
		t.Fatal("foreign dir modified")
	}
}
