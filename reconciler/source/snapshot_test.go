package source

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
)

// appsRepo makes a work tree with two apps, an executable, a symlink, names
// whose git order differs from name order ("lib" < "lib-x.txt" < "lib.txt"
// by name, but git sorts the tree "lib" as "lib/"), and a submodule gitlink.
// It returns the work tree and its first commit.
func appsRepo(t *testing.T) (string, string) {
	t.Helper()
	work := newWorkTree(t)
	writeFiles(t, work, map[string]string{
		"README.md":                "# apps\n",
		"apps/a/manifest.yml":      "applications:\n- name: a\n",
		"apps/a/run.sh":            "#!/bin/sh\necho a\n",
		"apps/a/lib/util.txt":      "util\n",
		"apps/a/lib-x.txt":         "x\n",
		"apps/a/lib.txt":           "lib\n",
		"apps/b/manifest.yml":      "applications:\n- name: b\n",
		"apps/b/public/index.html": "<p>b</p>\n",
	})
	if err := os.Chmod(filepath.Join(work, "apps/a/run.sh"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("lib/util.txt", filepath.Join(work, "apps/a/current")); err != nil {
		t.Fatal(err)
	}
	// An embedded repository is committed as a gitlink, like a submodule.
	vendor := filepath.Join(work, "apps/a/vendor")
	run(t, work, "init", "-q", "-b", "main", vendor)
	commit(t, vendor, "vendored", map[string]string{"v.txt": "v"})
	return work, commit(t, work, "apps", nil)
}

func TestTreeHash(t *testing.T) {
	work, c1 := appsRepo(t)
	s := mustNew(t, Config{URL: work})
	snap1 := fetch(t, s)
	tests := []struct{ path, rev string }{
		{"", "HEAD^{tree}"},
		{".", "HEAD^{tree}"},
		{"apps/a", "HEAD:apps/a"},
		{"apps/a/", "HEAD:apps/a"},
		{"./apps//a", "HEAD:apps/a"},
		{"apps/b/public", "HEAD:apps/b/public"},
		{"apps/a/run.sh", "HEAD:apps/a/run.sh"},
		{"apps/a/current", "HEAD:apps/a/current"},
	}
	for _, tt := range tests {
		got, err := snap1.TreeHash(tt.path)
		if want := run(t, work, "rev-parse", tt.rev); err != nil || got != want {
			t.Errorf("TreeHash(%q) = %s, %v; want %s", tt.path, got, err, want)
		}
	}
	errTests := []struct {
		path string
		want error
	}{
		{"apps/c", fs.ErrNotExist},
		{"apps/a/run.sh/x", fs.ErrNotExist},
		{"../x", fs.ErrInvalid},
		{"/apps", fs.ErrInvalid},
		{"apps/a/vendor", ErrSubmodule},
	}
	for _, tt := range errTests {
		if _, err := snap1.TreeHash(tt.path); !errors.Is(err, tt.want) {
			t.Errorf("TreeHash(%q) error = %v, want %v", tt.path, err, tt.want)
		}
	}

	// A commit touching b only: a's hash is stable, b's and the root's change.
	c2 := commit(t, work, "touch b", map[string]string{"apps/b/public/index.html": "<p>b2</p>\n"})
	snap2 := fetch(t, s)
	if snap2.Commit != c2 || snap1.Commit != c1 {
		t.Fatalf("commits %s %s, want %s %s", snap1.Commit, snap2.Commit, c1, c2)
	}
	for _, tt := range []struct {
		path string
		same bool
	}{{"apps/a", true}, {"apps/a/lib", true}, {"apps/b", false}, {"apps/b/public", false}, {".", false}} {
		h1, err1 := snap1.TreeHash(tt.path)
		h2, err2 := snap2.TreeHash(tt.path)
		if err1 != nil || err2 != nil || (h1 == h2) != tt.same {
			t.Errorf("%s: %s → %s (%v, %v), want same=%v", tt.path, h1, h2, err1, err2, tt.same)
		}
		rev := "HEAD:" + tt.path
		if tt.path == "." {
			rev = "HEAD^{tree}"
		}
		if want := run(t, work, "rev-parse", rev); h2 != want {
			t.Errorf("%s: %s, git says %s", tt.path, h2, want)
		}
	}
}

func TestFS(t *testing.T) {
	work, _ := appsRepo(t)
	writeFiles(t, work, map[string]string{"apps/a/uncommitted.txt": "no"})
	fsys := fetch(t, mustNew(t, Config{URL: work})).FS()

	if err := fstest.TestFS(fsys, "README.md", "apps/a/manifest.yml", "apps/a/run.sh", "apps/a/current",
		"apps/a/lib/util.txt", "apps/b/public/index.html"); err != nil {
		t.Fatal(err)
	}
	sub, err := fs.Sub(fsys, "apps/b")
	if err != nil {
		t.Fatal(err)
	}
	if err := fstest.TestFS(sub, "manifest.yml", "public/index.html"); err != nil {
		t.Fatal(err)
	}

	var walked []string
	err = fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		walked = append(walked, p+" "+info.Mode().String())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		". drwxr-xr-x",
		"README.md -rw-r--r--",
		"apps drwxr-xr-x",
		"apps/a drwxr-xr-x",
		"apps/a/current Lrw-r--r--",
		"apps/a/lib drwxr-xr-x",
		"apps/a/lib/util.txt -rw-r--r--",
		"apps/a/lib-x.txt -rw-r--r--",
		"apps/a/lib.txt -rw-r--r--",
		"apps/a/manifest.yml -rw-r--r--",
		"apps/a/run.sh -rwxr-xr-x",
		"apps/b drwxr-xr-x",
		"apps/b/manifest.yml -rw-r--r--",
		"apps/b/public drwxr-xr-x",
		"apps/b/public/index.html -rw-r--r--",
	}
	if !reflect.DeepEqual(walked, want) {
		t.Errorf("WalkDir:\n%s\nwant:\n%s", strings.Join(walked, "\n"), strings.Join(want, "\n"))
	}

	if data, err := fs.ReadFile(fsys, "apps/a/current"); err != nil || string(data) != "lib/util.txt" {
		t.Errorf("symlink content = %q, %v", data, err)
	}
	if target, err := fs.ReadLink(fsys, "apps/a/current"); err != nil || target != "lib/util.txt" {
		t.Errorf("ReadLink = %q, %v", target, err)
	}
	if info, err := fs.Stat(fsys, "apps/a/current"); err != nil || info.Mode()&fs.ModeSymlink == 0 || info.Size() != int64(len("lib/util.txt")) {
		t.Errorf("Stat(symlink) = %v, %v", info, err)
	}
	for _, tt := range []struct {
		name string
		want error
	}{
		{"apps/a/uncommitted.txt", fs.ErrNotExist},
		{"apps/a/vendor", fs.ErrNotExist},
		{"apps/a/run.sh/x", fs.ErrNotExist},
		{"/apps", fs.ErrInvalid},
		{"apps/../README.md", fs.ErrInvalid},
	} {
		if _, err := fsys.Open(tt.name); !errors.Is(err, tt.want) {
			t.Errorf("Open(%q) = %v, want %v", tt.name, err, tt.want)
		}
	}
	if _, err := fs.ReadFile(fsys, "apps"); err == nil {
		t.Error("ReadFile of a directory succeeded")
	}
}

// tarEntries lists a tar as "name type mode mtime uid:gid user:group size link" lines
// and returns file contents by name.
func tarEntries(t *testing.T, data []byte) ([]string, map[string]string) {
	t.Helper()
	var lines []string
	contents := map[string]string{}
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return lines, contents
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		contents[h.Name] = string(b)
		lines = append(lines, strings.Join([]string{h.Name, string(h.Typeflag), fs.FileMode(h.Mode).String(),
			h.ModTime.UTC().Format("2006-01-02T15:04:05"), strconv.Itoa(h.Uid) + ":" + strconv.Itoa(h.Gid),
			h.Uname + ":" + h.Gname, strconv.Itoa(int(h.Size)), h.Linkname}, " "))
	}
}

func writeTar(t *testing.T, snap *Snapshot, path string) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := snap.WriteTar(context.Background(), path, &buf); err != nil {
		t.Fatalf("WriteTar(%q): %v", path, err)
	}
	return buf.Bytes()
}

func TestWriteTar(t *testing.T) {
	work, _ := appsRepo(t)
	log, logs := testLogger()
	s := mustNew(t, Config{URL: work, Log: log})
	snap1 := fetch(t, s)

	tar1 := writeTar(t, snap1, "apps/a")
	lines, contents := tarEntries(t, tar1)
	const meta = " 1980-01-01T00:00:00 0:0 : "
	want := []string{
		"current 2 -rw-r--r--" + meta + "0 lib/util.txt",
		"lib/ 5 -rwxr-xr-x" + meta + "0 ",
		"lib/util.txt 0 -rw-r--r--" + meta + "5 ",
		"lib-x.txt 0 -rw-r--r--" + meta + "2 ",
		"lib.txt 0 -rw-r--r--" + meta + "4 ",
		"manifest.yml 0 -rw-r--r--" + meta + "24 ",
		"run.sh 0 -rwxr-xr-x" + meta + "17 ",
	}
	if !reflect.DeepEqual(lines, want) {
		t.Errorf("tar entries:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	if contents["run.sh"] != "#!/bin/sh\necho a\n" || contents["lib/util.txt"] != "util\n" {
		t.Errorf("contents: %q", contents)
	}
	if !strings.Contains(logs.String(), "submodule") || !strings.Contains(logs.String(), "path=vendor") {
		t.Errorf("no warning about the skipped submodule in logs:\n%s", logs)
	}
	if again := writeTar(t, snap1, "./apps/a/"); !bytes.Equal(again, tar1) {
		t.Error("two tars of the same subtree differ")
	}

	// Another commit with the same apps/a (and later times): same bytes.
	commit(t, work, "touch b", map[string]string{"apps/b/manifest.yml": "applications:\n- name: b2\n"})
	snap2 := fetch(t, s)
	if snap2.Commit == snap1.Commit {
		t.Fatal("no new commit")
	}
	if tar2 := writeTar(t, snap2, "apps/a"); !bytes.Equal(tar2, tar1) {
		t.Error("tars of an identical subtree in two commits differ")
	}
	if bytes.Equal(writeTar(t, snap2, "apps/b"), writeTar(t, snap1, "apps/b")) {
		t.Error("tars of a changed subtree are equal")
	}

	// A single file, and the root.
	lines, _ = tarEntries(t, writeTar(t, snap2, "apps/a/run.sh"))
	if !reflect.DeepEqual(lines, []string{"run.sh 0 -rwxr-xr-x" + meta + "17 "}) {
		t.Errorf("single-file tar: %q", lines)
	}
	lines, _ = tarEntries(t, writeTar(t, snap2, ""))
	if len(lines) != 14 || !strings.HasPrefix(lines[0], "README.md ") || !strings.HasPrefix(lines[1], "apps/ ") {
		t.Errorf("root tar: %q", lines)
	}

	for _, tt := range []struct {
		path string
		want error
	}{{"apps/c", fs.ErrNotExist}, {"../apps", fs.ErrInvalid}, {"apps/a/vendor", ErrSubmodule}} {
		if err := snap2.WriteTar(context.Background(), tt.path, io.Discard); !errors.Is(err, tt.want) {
			t.Errorf("WriteTar(%q) = %v, want %v", tt.path, err, tt.want)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := snap2.WriteTar(ctx, "apps", io.Discard); !errors.Is(err, context.Canceled) {
		t.Errorf("WriteTar with a canceled context = %v", err)
	}
}

// TestSnapshotConcurrentReads reads one snapshot from many goroutines while
// other fetches run (meaningful under -race).
func TestSnapshotConcurrentReads(t *testing.T) {
	work, _ := appsRepo(t)
	s := mustNew(t, Config{URL: work})
	snap := fetch(t, s)
	want := writeTar(t, snap, ".")
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i%2 == 0 {
				if _, err := s.Fetch(context.Background()); err != nil {
					errs <- err
				}
			}
			var buf bytes.Buffer
			if err := snap.WriteTar(context.Background(), ".", &buf); err != nil {
				errs <- err
			} else if !bytes.Equal(buf.Bytes(), want) {
				errs <- errors.New("concurrent tar differs")
			}
			if err := fs.WalkDir(snap.FS(), ".", func(p string, d fs.DirEntry, err error) error {
				if err == nil && d.Type().IsRegular() {
					_, err = fs.ReadFile(snap.FS(), p)
				}
				return err
			}); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestCraftedTreeNames builds, with git plumbing, a commit whose trees hold
// names git itself would refuse to check out; they must not reach the FS or
// the tar, where they would escape the app folder.
func TestCraftedTreeNames(t *testing.T) {
	work := newWorkTree(t)
	blob := run(t, work, "hash-object", "-w", "--stdin") // empty blob
	mktree := func(lines ...string) string {
		cmd := exec.Command(gitPath(t), "mktree")
		cmd.Dir = work
		cmd.Stdin = strings.NewReader(strings.Join(lines, "\n") + "\n")
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("git mktree: %v", err)
		}
		return strings.TrimSpace(string(out))
	}
	sub := mktree("100644 blob "+blob+"\t..", "100644 blob "+blob+"\tinner.txt")
	root := mktree("100644 blob "+blob+"\t..", "100644 blob "+blob+"\t.GIT",
		"100644 blob "+blob+"\tok.txt", "040000 tree "+sub+"\tsub")
	c := run(t, work, "commit-tree", "-m", "crafted", root)
	run(t, work, "update-ref", "refs/heads/main", c)

	snap := fetch(t, mustNew(t, Config{URL: work}))
	var walked []string
	if err := fs.WalkDir(snap.FS(), ".", func(p string, _ fs.DirEntry, err error) error {
		walked = append(walked, p)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if want := []string{".", "ok.txt", "sub", "sub/inner.txt"}; !reflect.DeepEqual(walked, want) {
		t.Errorf("walked %q, want %q", walked, want)
	}
	lines, _ := tarEntries(t, writeTar(t, snap, "."))
	var names []string
	for _, l := range lines {
		names = append(names, strings.Fields(l)[0])
	}
	if want := []string{"ok.txt", "sub/", "sub/inner.txt"}; !reflect.DeepEqual(names, want) {
		t.Errorf("tar names %q, want %q", names, want)
	}
	if _, err := snap.TreeHash("sub/.."); err != nil {
		t.Errorf("TreeHash(sub/..) cleans to the root: %v", err)
	}
}

// TestTreeHashExclude: a folder's hash without its manifest changes with
// its other files but not with the manifest, and the tar leaves it out.
func TestTreeHashExclude(t *testing.T) {
	work, _ := appsRepo(t)
	s := mustNew(t, Config{URL: work})
	snap1 := fetch(t, s)
	h1, err := snap1.TreeHash("apps/b", "manifest.yml")
	if err != nil {
		t.Fatal(err)
	}
	if git := run(t, work, "rev-parse", "HEAD:apps/b"); h1 == git {
		t.Fatal("excluding the manifest gave the git tree hash")
	}
	if same, _ := snap1.TreeHash("apps/b/public", "manifest.yml"); same != run(t, work, "rev-parse", "HEAD:apps/b/public") {
		t.Error("excluding an absent name changed the hash")
	}
	commit(t, work, "scale b", map[string]string{"apps/b/manifest.yml": "applications:\n- name: b\n  instances: 3\n"})
	snap2 := fetch(t, s)
	if h2, _ := snap2.TreeHash("apps/b", "manifest.yml"); h2 != h1 {
		t.Errorf("manifest edit changed the source hash: %s → %s", h1, h2)
	}
	commit(t, work, "edit b", map[string]string{"apps/b/public/index.html": "<p>new</p>\n"})
	snap3 := fetch(t, s)
	if h3, _ := snap3.TreeHash("apps/b", "manifest.yml"); h3 == h1 {
		t.Error("source edit kept the source hash")
	}
	var buf bytes.Buffer
	if err := snap3.WriteTar(context.Background(), "apps/b", &buf, "manifest.yml"); err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(&buf)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Name == "manifest.yml" {
			t.Fatal("the tar holds the excluded manifest")
		}
	}
}
