package catalog_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"

	"github.com/driftless/driftless/catalog"
	"github.com/driftless/driftless/internal/testenv"
	"github.com/driftless/driftless/model"
	consul "github.com/hashicorp/consul/api"
)

// TestRegistrationRoundTrip registers a cell and an instance of each
// health check kind in a real Consul through a cell's Writer, and reads
// them back through the health endpoint the router uses: a port or http
// instance has one health check, which its cell fails and passes, and a
// process-type one none.
func TestRegistrationRoundTrip(t *testing.T) {
	c := testenv.StartConsul(t)
	in := model.Endpoint{InstanceRef: model.InstanceRef{GUID: "g-1", Space: "dev", App: "hello", Index: 2, ReleaseID: "r1", Commit: "abc"}, Cell: "cell-a", Address: "127.0.0.1", Port: 40001, Routes: []string{"hello.apps.localhost", "hello.apps.localhost/api"}}
	node := catalog.CellNode("cell-a")
	w := catalog.NewWriter(c.Client, "cell-a", "127.0.0.1")
	if err := w.Apply(consul.TxnOps{catalog.CellOp("cell-a", "127.0.0.1")}); err != nil {
		t.Fatal(err)
	}
	passing := func(t *testing.T) []*consul.ServiceEntry {
		t.Helper()
		entries, _, err := c.Client.Health().Service(catalog.ServiceName("dev", "hello"), "", true, nil)
		if err != nil {
			t.Fatal(err)
		}
		return entries
	}
	tests := []struct {
		name   string
		hc     model.HealthCheck
		checks int
	}{
		{"port", model.HealthCheck{Type: "port"}, 1},
		{"http", model.HealthCheck{Type: "http", Endpoint: "/health"}, 1},
		{"process", model.HealthCheck{Type: "process"}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := w.Apply(catalog.InstanceOps(node, in, tc.hc)); err != nil {
				t.Fatal(err)
			}
			entries := passing(t)
			if len(entries) != 1 {
				t.Fatalf("passing entries = %d, want 1", len(entries))
			}
			if got, ok := catalog.FromHealthEntry(entries[0]); !ok || !reflect.DeepEqual(got, in) {
				t.Fatalf("read back %+v (ok=%v), want %+v", got, ok, in)
			}
			if n := len(entries[0].Checks); n != tc.checks {
				t.Fatalf("%d checks, want %d: %v", n, tc.checks, entries[0].Checks)
			}
			if entries[0].Node.Node != node {
				t.Fatalf("registered under node %q, want %q", entries[0].Node.Node, node)
			}
			if tc.checks > 0 {
				if err := w.Apply(consul.TxnOps{catalog.HealthOp(node, in.InstanceRef, false)}); err != nil {
					t.Fatal(err)
				}
				if n := len(passing(t)); n != 0 {
					t.Fatalf("%d passing after the cell failed its check, want 0", n)
				}
				if err := w.Apply(consul.TxnOps{catalog.HealthOp(node, in.InstanceRef, true)}); err != nil {
					t.Fatal(err)
				}
				if n := len(passing(t)); n != 1 {
					t.Fatalf("%d passing after the cell passed its check again, want 1", n)
				}
			}
			if err := w.Apply(consul.TxnOps{catalog.DeregisterOp(node, in.InstanceRef)}); err != nil {
				t.Fatal(err)
			}
			if n := len(passing(t)); n != 0 {
				t.Fatalf("%d entries after deregistering, want 0", n)
			}
			checks, _, err := c.Client.Health().Node(node, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(checks) != 0 {
				t.Fatalf("checks left after deregistering: %v", checks)
			}
		})
	}
	cells, _, err := c.Client.Catalog().Service(catalog.CellServiceName, "", nil)
	if err != nil || len(cells) != 1 || cells[0].ServiceMeta[catalog.MetaCell] != "cell-a" || cells[0].Node != node {
		t.Fatalf("cell service: %+v %v", cells, err)
	}
}

// TestWriterBatches: 200 instances registered at once by one cell's
// Writer take far fewer Raft writes than instances (each transaction
// moves the catalog's index once), and one write Consul refuses fails
// alone.
func TestWriterBatches(t *testing.T) {
	c := testenv.StartConsul(t)
	node := catalog.CellNode("cell-b")
	w := catalog.NewWriter(c.Client, "cell-b", "127.0.0.1")
	_, before, err := c.Client.Catalog().Services(nil)
	if err != nil {
		t.Fatal(err)
	}
	const n = 200
	errs := make(chan error, n+1)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			in := model.Endpoint{InstanceRef: model.InstanceRef{GUID: fmt.Sprintf("b-%d", i), Space: "dev", App: fmt.Sprintf("app-%d", i%7), Index: i},
				Cell: "cell-b", Address: "127.0.0.1", Port: 40000 + i}
			errs <- w.Apply(catalog.InstanceOps(node, in, model.HealthCheck{Type: "process"}))
		})
	}
	// A check of an instance that does not exist: Consul refuses it.
	wg.Go(func() {
		<-start
		err := w.Apply(consul.TxnOps{catalog.HealthOp(node, model.InstanceRef{GUID: "missing", Space: "dev", App: "app-0"}, true)})
		if !errors.Is(err, catalog.ErrTxnRefused) {
			err = fmt.Errorf("a check of no instance: got %v, want ErrTxnRefused", err)
		} else {
			err = nil
		}
		errs <- err
	})
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	list, meta, err := c.Client.Catalog().NodeServiceList(node, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Services) != n {
		t.Fatalf("%d services on %s, want %d", len(list.Services), node, n)
	}
	if writes := meta.LastIndex - before.LastIndex; writes > n/4 {
		t.Fatalf("%d instances took %d Raft writes, want at most %d", n, writes, n/4)
	}
	t.Logf("%d instances in %d Raft writes", n, meta.LastIndex-before.LastIndex)
}

func TestKV(t *testing.T) {
	c := testenv.StartConsul(t)
	kv := catalog.NewKV(c.Client)
	ctx := context.Background()
	type rec struct{ N int }
	if err := kv.Put(ctx, catalog.AppKey("dev", "a"), rec{1}); err != nil {
		t.Fatal(err)
	}
	if err := kv.Put(ctx, catalog.AppKey("dev", "b"), rec{2}); err != nil {
		t.Fatal(err)
	}
	var r rec
	if found, err := kv.Get(ctx, catalog.AppKey("dev", "b"), &r); err != nil || !found || r.N != 2 {
		t.Fatalf("get = %v %v %+v", found, err, r)
	}
	if found, err := kv.Get(ctx, catalog.AppKey("dev", "zz"), &r); err != nil || found {
		t.Fatalf("absent key: found=%v err=%v", found, err)
	}
	all, err := kv.List(ctx, catalog.AppsPrefix)
	if err != nil || len(all) != 2 {
		t.Fatalf("list = %v %v", all, err)
	}
	if err := kv.DeleteTree(ctx, catalog.AppsPrefix); err != nil {
		t.Fatal(err)
	}
	all, _ = kv.List(ctx, catalog.AppsPrefix)
	if len(all) != 0 {
		t.Fatalf("after delete: %v", all)
	}
}
