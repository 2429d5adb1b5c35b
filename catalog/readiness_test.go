package catalog_test

import (
	"fmt"
	"net"
	"net/http"
	"reflect"
	"testing"
	"time"

	consul "github.com/hashicorp/consul/api"

	"github.com/driftless/driftless/catalog"
	"github.com/driftless/driftless/internal/testenv"
	"github.com/driftless/driftless/model"
)

// TestReadinessCheck registers an instance with a readiness check and
// http2 routes in a real Consul: its http2 routes read back, and a
// readiness check failed by its cell takes it out of the passing set
// (what the routers follow) without deregistering it, until it passes.
func TestReadinessCheck(t *testing.T) {
	c := testenv.StartConsul(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	in := model.Endpoint{InstanceRef: model.InstanceRef{GUID: "g-r", Space: "dev", App: "grpc", Index: 0, ReleaseID: "r1", Commit: "abc"},
		Address: "127.0.0.1", Port: l.Addr().(*net.TCPAddr).Port,
		Routes: []string{"grpc.apps.localhost", "web.apps.localhost"}, HTTP2Routes: []string{"grpc.apps.localhost"}}
	hc := model.HealthCheck{Type: model.HealthPort, Readiness: model.ReadinessCheck{Type: model.HealthHTTP, Endpoint: "/ready"}}

	// passing waits until guid is (or is not) among the passing
	// instances, and is still registered.
	passing := func(what, guid string, want bool) {
		t.Helper()
		testenv.Eventually(t, 10*time.Second, 100*time.Millisecond, what, func() error {
			entries, _, err := c.Client.Health().Service(catalog.ServiceName("dev", "grpc"), catalog.AppTag, true, nil)
			if err != nil {
				return err
			}
			found := false
			for _, e := range entries {
				got, ok := catalog.FromHealthEntry(e)
				if !ok || got.GUID != guid {
					continue
				}
				found = true
				if want := in; guid == in.GUID && !reflect.DeepEqual(got, want) {
					return fmt.Errorf("read back %+v, want %+v", got, want)
				}
			}
			if found != want {
				return fmt.Errorf("%s passing: %v, want %v", guid, found, want)
			}
			return nil
		})
	}
	tests := []struct {
		name     string
		guid     string
		notReady bool
	}{
		{"registered ready", in.GUID, false},
		{"registered not ready", "g-not-ready", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ep := in
			ep.GUID, ep.NotReady = tc.guid, tc.notReady
			if err := catalog.Register(c.Client, ep, hc); err != nil {
				t.Fatal(err)
			}
			passing(tc.name, tc.guid, !tc.notReady)
			registered(t, c.Client, tc.guid)
		})
	}
	for _, ready := range []bool{true, false, true} {
		if err := catalog.SetCheck(c.Client, in, true, ready); err != nil {
			t.Fatal(err)
		}
		passing(fmt.Sprintf("ready %v", ready), in.GUID, ready)
		registered(t, c.Client, in.GUID)
	}
}

// registered fails t unless the app "dev/grpc" has an instance guid,
// passing or not.
func registered(t *testing.T, c *consul.Client, guid string) {
	t.Helper()
	services, _, err := c.Catalog().Service(catalog.ServiceName("dev", "grpc"), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range services {
		if s.ServiceID == guid {
			return
		}
	}
	t.Fatalf("%s is not registered", guid)
}
