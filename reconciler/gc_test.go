package reconciler

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/driftless/driftless/blobstore"
	"github.com/driftless/driftless/bus"
	"github.com/driftless/driftless/catalog"
	"github.com/driftless/driftless/internal/testenv"
	"github.com/driftless/driftless/model"
	"github.com/driftless/driftless/reconciler/store/storetest"
)

// TestCollectGarbage keeps the newest KeepReleases releases of an app (and
// always its current, previous and target ones) and every blob of their
// droplets; it deletes the releases and blobs past that, but spares young
// blobs. Real Consul, NATS and blob store.
func TestCollectGarbage(t *testing.T) {
	cons := testenv.StartConsul(t)
	conn := testenv.StartNATS(t).Connect(t, bus.Identity{Role: bus.RoleController})
	blobDir := t.TempDir()
	store, err := blobstore.Open(blobDir)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(store.Handler())
	defer srv.Close()
	c, err := New(Config{NATS: conn, Consul: cons.Client, Blobs: store, BlobStoreURL: srv.URL, Keys: storetest.Keys(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	client := blobstore.NewClient(srv.URL)
	key := model.AppKey{Space: "dev", Name: "hello"}
	t0 := time.Now().Add(-time.Hour)
	droplets := map[string]string{}
	for i := range 8 {
		img, err := random.Image(512, 2)
		if err != nil {
			t.Fatal(err)
		}
		d, err := client.PushImage(ctx, img)
		if err != nil {
			t.Fatal(err)
		}
		id := fmt.Sprintf("r%d", i)
		droplets[id] = d
		r := model.Release{ID: id, Space: "dev", App: "hello", State: model.ReleaseStaged, DropletDigest: d, CreatedAt: t0.Add(time.Duration(i) * time.Minute)}
		if err := c.store.PutRelease(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	// Every blob so far was stored two hours ago.
	all, err := store.List()
	if err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-2 * time.Hour)
	for _, d := range all {
		if err := os.Chtimes(filepath.Join(blobDir, "sha256", strings.TrimPrefix(d, "sha256:")), old, old); err != nil {
			t.Fatal(err)
		}
	}
	// r1 is the previous release: kept though old. r7 is current.
	if err := c.store.PutApp(ctx, model.App{Space: "dev", Name: "hello", ReleaseID: "r7", CurrentID: "r7", PreviousID: "r1"}); err != nil {
		t.Fatal(err)
	}
	young, _, err := store.Put(ctx, strings.NewReader("a source tar of a staging in flight"))
	if err != nil {
		t.Fatal(err)
	}

	deleted, err := c.collectGarbage(ctx, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	// r0 and r2 go: 8 releases, keep the newest 5 (r3..r7) and r1.
	for id, d := range droplets {
		gone := id == "r0" || id == "r2"
		if store.Has(d) == gone {
			t.Errorf("droplet of %s: present %v, want %v", id, store.Has(d), !gone)
		}
		if r := c.store.Release(key, id); (r != nil) == gone {
			t.Errorf("release %s: kept %v, want %v", id, r != nil, !gone)
		}
		var r model.Release
		found, err := catalog.NewKV(cons.Client).Get(ctx, "driftless/releases/dev/hello/"+id, &r)
		if err != nil || found == gone {
			t.Errorf("release %s in Consul: found %v (%v), want %v", id, found, err, !gone)
		}
	}
	// Two droplets of a manifest, a config and two layers each.
	if deleted != 8 {
		t.Errorf("deleted %d blobs, want 8", deleted)
	}
	if !store.Has(young) {
		t.Error("a young blob was deleted")
	}
	if _, err := c.collectGarbage(ctx, time.Now().Add(2*time.Hour)); err != nil || store.Has(young) {
		t.Errorf("an old unreferenced blob was kept (err %v)", err)
	}
}
