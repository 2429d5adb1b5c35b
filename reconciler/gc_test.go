package reconciler

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/random"
	consul "github.com/hashicorp/consul/api"

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

// TestForgetCells: the controller deregisters the catalog node of a cell
// that holds no key and that it does not hear (gone for good), and keeps
// that of a cell it hears and of a cell it heard last long ago but that
// still holds its key. Real Consul.
func TestForgetCells(t *testing.T) {
	cons := testenv.StartConsul(t)
	c, err := New(Config{NATS: testenv.StartNATS(t).Connect(t, bus.Identity{Role: bus.RoleController}), Consul: cons.Client,
		Blobs: must(blobstore.Open(t.TempDir())), BlobStoreURL: "http://127.0.0.1:1", Keys: storetest.Keys(t)})
	if err != nil {
		t.Fatal(err)
	}
	for _, cell := range []string{"heard", "keyed", "gone"} {
		if err := catalog.NewWriter(cons.Client, cell, "127.0.0.1").Apply(consul.TxnOps{catalog.CellOp(cell, "127.0.0.1")}); err != nil {
			t.Fatal(err)
		}
	}
	if err := catalog.NewPresence(cons.Client, "keyed", "127.0.0.1", time.Minute).Hold(); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	c.actual.Heartbeat(bus.CellHeartbeat{CellID: "heard", BootID: "b1"}, now)
	c.actual.Heartbeat(bus.CellHeartbeat{CellID: "keyed", BootID: "b1"}, now.Add(-time.Hour))
	c.actual.Heartbeat(bus.CellHeartbeat{CellID: "gone", BootID: "b1"}, now.Add(-time.Hour))
	if err := c.forgetCells(now); err != nil {
		t.Fatal(err)
	}
	nodes, _, err := cons.Client.Catalog().Nodes(nil)
	if err != nil {
		t.Fatal(err)
	}
	var cells []string
	for _, n := range nodes {
		if id, ok := strings.CutPrefix(n.Node, catalog.CellNodePrefix); ok {
			cells = append(cells, id)
		}
	}
	slices.Sort(cells)
	if !slices.Equal(cells, []string{"heard", "keyed"}) {
		t.Fatalf("cell nodes left %v, want heard and keyed", cells)
	}
}

// must is v, or panics with err.
func must[V any](v V, err error) V {
	if err != nil {
		panic(err)
	}
	return v
}
