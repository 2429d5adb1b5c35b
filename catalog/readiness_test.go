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
// http2 routes in a real Consul agent: its http2 routes read back, and a
// readiness check failed by the agent takes it out of the passing set
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
	// Each instance is registered once, as agents do (a registration
	// again under the same id may keep its checks' states in Consul).
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
			if err := c.Client.Agent().ServiceRegister(catalog.Registration(ep, hc, time.Second)); err != nil {
				t.Fatal(err)
			}
			passing(tc.name, tc.guid, !tc.notReady)
			services, err := c.Client.Agent().Services()
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := services[tc.guid]; !ok {
				t.Fatalf("%s is not registered", tc.guid)
			}
		})
	}
	for _, step := range []struct {
		status string
		want   bool
	}{{consul.HealthPassing, true}, {consul.HealthCritical, false}, {consul.HealthPassing, true}} {
		if err := c.Client.Agent().UpdateTTL(catalog.ReadyCheckID(in.GUID), "test", step.status); err != nil {
			t.Fatal(err)
		}
		passing("readiness "+step.status, in.GUID, step.want)
		services, err := c.Client.Agent().Services()
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := services[in.GUID]; !ok {
			t.Fatalf("readiness %s deregistered the instance", step.status)
		}
	}
}

// TestReadinessTTL is how long a readiness check holds without renewal.
func TestReadinessTTL(t *testing.T) {
	tests := []struct {
		name string
		rc   model.ReadinessCheck
		want time.Duration
	}{
		{"platform interval, floor", model.ReadinessCheck{Type: model.HealthHTTP}, 10 * time.Second},
		{"own interval", model.ReadinessCheck{Type: model.HealthPort, IntervalSec: 5}, 18 * time.Second},
		{"own interval and timeout", model.ReadinessCheck{Type: model.HealthPort, IntervalSec: 5, InvocationTimeoutSec: 3}, 24 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := catalog.ReadinessTTL(model.HealthCheck{Readiness: tc.rc}, time.Second); got != tc.want {
				t.Fatalf("ReadinessTTL = %s, want %s", got, tc.want)
			}
		})
	}
}
