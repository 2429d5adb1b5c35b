package source

import (
	"context"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestFetchRef: a pull request's head ref (made with update-ref, as a
// forge keeps it beside the branches) is read in place from a plain path
// and fetched into the clone of a file:// and an http:// source, followed
// when it is force-moved, and a missing ref is an error; the branch the
// source follows is not changed by it.
func TestFetchRef(t *testing.T) {
	work := newWorkTree(t)
	root := t.TempDir()
	bare := newBare(t, root, "repo.git", work)
	mainHead := commit(t, work, "main", map[string]string{"apps/hello/manifest.yml": "applications:\n- name: hello\n"})
	run(t, work, "checkout", "-q", "-b", "feature")
	pr1 := commit(t, work, "pr 1", map[string]string{"apps/hello/manifest.yml": "applications:\n- name: hello\n  instances: 1\n"})
	pr2 := commit(t, work, "pr 1, again", map[string]string{"apps/hello/manifest.yml": "applications:\n- name: hello\n  instances: 2\n"})
	run(t, work, "checkout", "-q", "main")
	// The forge has the pull request's commits under refs/pull/ only.
	run(t, work, "push", "-q", "origin", "main", "feature:refs/pull/1/head")
	httpURL := serveGit(t, root, "", "")

	tests := []struct {
		name string
		cfg  Config
		// repo is where the test moves the ref.
		repo string
	}{
		{"plain path", Config{URL: work}, work},
		{"file URL", Config{URL: "file://" + bare, Dir: filepath.Join(t.TempDir(), "clone")}, bare},
		{"http URL", Config{URL: httpURL + "/repo.git", Dir: filepath.Join(t.TempDir(), "clone")}, bare},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			run(t, tt.repo, "update-ref", "refs/pull/1/head", pr1)
			s := mustNew(t, tt.cfg)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if got := fetch(t, s); got.Commit != mainHead {
				t.Fatalf("branch head %s, want %s", got.Commit, mainHead)
			}
			snap, err := s.FetchRef(ctx, "refs/pull/1/head")
			if err != nil {
				t.Fatal(err)
			}
			if snap.Commit != pr1 || snap.Branch != "refs/pull/1/head" {
				t.Fatalf("ref read as %s (%s), want %s", snap.Commit, snap.Branch, pr1)
			}
			data, err := fs.ReadFile(snap.FS(), "apps/hello/manifest.yml")
			if err != nil || !strings.Contains(string(data), "instances: 1") {
				t.Fatalf("manifest of the pull request: %q, %v", data, err)
			}
			// A force-push to the pull request moves the ref.
			run(t, tt.repo, "update-ref", "refs/pull/1/head", pr2)
			if snap, err = s.FetchRef(ctx, "refs/pull/1/head"); err != nil || snap.Commit != pr2 {
				t.Fatalf("after the ref moved: %v, %v; want %s", snap, err, pr2)
			}
			if _, err := s.FetchRef(ctx, "refs/pull/2/head"); err == nil || !strings.Contains(err.Error(), "does not exist") {
				t.Errorf("a missing ref: %v", err)
			}
			if _, err := s.FetchRef(ctx, "pull/1/head"); err == nil {
				t.Error("a ref name outside refs/ was accepted")
			}
			if err := s.ForgetRef(ctx, "refs/pull/1/head"); err != nil {
				t.Errorf("ForgetRef: %v", err)
			}
			if got := fetch(t, s); got.Commit != mainHead || s.Branch() != "main" {
				t.Errorf("branch after FetchRef: %s on %q, want %s on main", got.Commit, s.Branch(), mainHead)
			}
		})
	}
}
