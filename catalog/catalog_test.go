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
	if err := c.Client.Agent().ServiceRegister(catalog.CellRegistration("cell-a", "127.0.0.1")); err != nil {
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

	// A process-type instance has no check: the cell deregisters it when
	// its process exits, and its cell's liveness is the routers' to check
	// (cells.go, TestPresence).
	proc := in
	proc.GUID, proc.Index = "g-2", 3
	if err := c.Client.Agent().ServiceRegister(catalog.Registration(proc, model.HealthCheck{Type: "process"}, time.Second)); err != nil {
		t.Fatal(err)
	}
	checks, err := c.Client.Agent().ChecksWithFilter(fmt.Sprintf("ServiceID == %q", proc.GUID))
	if err != nil {
		t.Fatal(err)
	}
	if len(checks) != 0 {
		t.Fatalf("checks of a process-type instance: %v, want none", slices.Collect(maps.Keys(checks)))
	}
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
