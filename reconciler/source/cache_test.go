package source

import (
	"fmt"
	"io/fs"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// TestSnapshotsShareObjects: successive snapshots of a source read the
// objects they share from its cache, and each sees its own commit's
// files; what ReadFile returns is the caller's to change.
func TestSnapshotsShareObjects(t *testing.T) {
	work := newWorkTree(t)
	files := map[string]string{}
	for i := range 20 {
		files[fmt.Sprintf("apps/app%d/manifest.yml", i)] = fmt.Sprintf("applications:\n- name: app%d\n", i)
	}
	commit(t, work, "apps", files)
	s := mustNew(t, Config{URL: work, Branch: "main"})
	first := fetch(t, s)
	read := func(snap *Snapshot, name string) string {
		t.Helper()
		data, err := fs.ReadFile(snap.FS(), name)
		if err != nil {
			t.Fatal(err)
		}
		return string(data)
	}
	for name, want := range files {
		if got := read(first, name); got != want {
			t.Fatalf("%s = %q, want %q", name, got, want)
		}
	}
	trees, blobs := len(s.cache.trees.m), len(s.cache.blobs.m)
	if trees < 22 || blobs < 20 { // root, apps, 20 app folders; 20 manifests
		t.Fatalf("cache after the first commit: %d trees, %d blobs", trees, blobs)
	}

	data, err := fs.ReadFile(first.FS(), "apps/app0/manifest.yml")
	if err != nil {
		t.Fatal(err)
	}
	copy(data, "XXXX")
	if got := read(first, "apps/app0/manifest.yml"); got != files["apps/app0/manifest.yml"] {
		t.Fatalf("after changing what ReadFile returned, the file reads %q", got)
	}

	commit(t, work, "one app", map[string]string{"apps/app3/manifest.yml": "applications:\n- name: app3\n  instances: 2\n"})
	second := fetch(t, s)
	if got := read(second, "apps/app3/manifest.yml"); got != "applications:\n- name: app3\n  instances: 2\n" {
		t.Fatalf("the changed manifest at the second commit reads %q", got)
	}
	if got := read(first, "apps/app3/manifest.yml"); got != files["apps/app3/manifest.yml"] {
		t.Fatalf("the first commit's manifest reads %q after the second commit", got)
	}
	if got := read(second, "apps/app7/manifest.yml"); got != files["apps/app7/manifest.yml"] {
		t.Fatalf("an unchanged manifest at the second commit reads %q", got)
	}
}

// TestObjectCacheBounds: the cache starts over past its bounds and keeps
// no large blob.
func TestObjectCacheBounds(t *testing.T) {
	c := newObjectCache()
	hash := func(i int) plumbing.Hash { return plumbing.ComputeHash(plumbing.BlobObject, fmt.Appendf(nil, "%d", i)) }
	const perTree = 1024
	for i := range maxCachedEntries / perTree {
		c.trees.put(hash(i), make([]object.TreeEntry, perTree))
	}
	if _, ok := c.trees.get(hash(0)); !ok || c.trees.n != maxCachedEntries {
		t.Fatalf("%d tree entries cached, want %d", c.trees.n, maxCachedEntries)
	}
	c.trees.put(hash(-1), make([]object.TreeEntry, 1))
	if _, ok := c.trees.get(hash(0)); ok || len(c.trees.m) != 1 || c.trees.n != 1 {
		t.Fatalf("past the bound: %d trees of %d entries, tree 0 still cached %v", len(c.trees.m), c.trees.n, ok)
	}

	c.putBlob(hash(1), make([]byte, maxCachedBlob+1))
	if _, ok := c.blobs.get(hash(1)); ok {
		t.Fatal("a blob over maxCachedBlob was cached")
	}
	n := maxCachedBlobBytes / maxCachedBlob
	for i := range n {
		c.putBlob(hash(i), make([]byte, maxCachedBlob))
	}
	if c.blobs.n != maxCachedBlobBytes {
		t.Fatalf("%d bytes cached, want %d", c.blobs.n, maxCachedBlobBytes)
	}
	c.putBlob(hash(n), []byte("more"))
	if _, ok := c.blobs.get(hash(0)); ok || c.blobs.n != 4 {
		t.Fatalf("past the byte bound: %d bytes, blob 0 still cached %v", c.blobs.n, ok)
	}
}
