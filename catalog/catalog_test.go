package catalog_test

import (
	"context"
	"fmt"
	"maps"
	"net"
	"net/http"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/driftless/driftless/catalog"
	"github.com/driftless/driftless/internal/testenv"
	"github.com/driftless/driftless/model"
)

// TestRegistrationRoundTrip registers an instance in a real Consul agent and
// reads it back through the health endpoint the router uses.
func TestRegistrationRoundTrip(t *testing.T) {
	c := testenv.StartConsul(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	port := l.Addr().(*net.TCPAddr).Port

	in := model.Endpoint{InstanceRef: model.InstanceRef{GUID: "g-1", Space: "dev", App: "hello", Index: 2, ReleaseID: "r1", Commit: "abc"}, Cell: "cell-a", Address: "127.0.0.1", Port: port, Routes: []string{"hello.apps.localhost", "hello.apps.localhost/api"}}
	tests := []struct {
		name string
		hc   model.HealthCheck
	}{
		{"port", model.HealthCheck{Type: "port"}},
		{"http", model.HealthCheck{Type: "http", Endpoint: "/health"}},
		{"process", model.HealthCheck{Type: "process"}},
	}
	if err := c.Client.Agent().ServiceRegister(catalog.CellRegistration("cell-a", "127.0.0.1", time.Minute)); err != nil {
		t.Fatal(err)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := c.Client.Agent().ServiceRegister(catalog.Registration(in, tc.hc, time.Second)); err != nil {
				t.Fatal(err)
			}
			defer c.Client.Agent().ServiceDeregister(in.GUID)
			entries, _, err := c.Client.Health().Service(catalog.ServiceName("dev", "hello"), "", true, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(entries) != 1 {
				t.Fatalf("passing entries = %d, want 1", len(entries))
			}
			got, ok := catalog.FromHealthEntry(entries[0])
			if !ok || !reflect.DeepEqual(got, in) {
				t.Fatalf("read back %+v (ok=%v), want %+v", got, ok, in)
			}
		})
	}

	passing := func(what string, want int) {
		t.Helper()
		testenv.Eventually(t, 10*time.Second, 100*time.Millisecond, what, func() error {
			entries, _, err := c.Client.Health().Service(catalog.ServiceName("dev", "hello"), "", true, nil)
			if err != nil {
				return err
			}
			if len(entries) != want {
				return fmt.Errorf("%d passing entries, want %d", len(entries), want)
			}
			return nil
		})
	}
	// A cell whose agent stops passing its TTL check takes its instances
	// out of the passing set, though the instance itself still answers;
	// a process-type instance has no check but its cell's.
	if err := c.Client.Agent().ServiceRegister(catalog.Registration(in, model.HealthCheck{Type: "port"}, time.Second)); err != nil {
		t.Fatal(err)
	}
	proc := in
	proc.GUID, proc.Index = "g-2", 3
	if err := c.Client.Agent().ServiceRegister(catalog.Registration(proc, model.HealthCheck{Type: "process"}, time.Second)); err != nil {
		t.Fatal(err)
	}
	checks, err := c.Client.Agent().ChecksWithFilter(fmt.Sprintf("ServiceID == %q", proc.GUID))
	if err != nil {
		t.Fatal(err)
	}
	if len(checks) != 1 || checks[catalog.CheckID(proc.GUID)+":cell"] == nil {
		t.Fatalf("checks of a process-type instance: %v, want only its cell's alias", slices.Collect(maps.Keys(checks)))
	}
	passing("both instances pass with their cell", 2)
	if err := c.Client.Agent().UpdateTTL(catalog.CellCheckID("cell-a"), "agent gone", "critical"); err != nil {
		t.Fatal(err)
	}
	passing("instances of a dead cell leave the passing set", 0)
	if err := c.Client.Agent().UpdateTTL(catalog.CellCheckID("cell-a"), "agent back", "pass"); err != nil {
		t.Fatal(err)
	}
	passing("instances pass again with their cell", 2)
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
