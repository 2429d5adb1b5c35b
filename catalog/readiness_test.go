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

	passing := func(what string, want int) {
		t.Helper()
		testenv.Eventually(t, 10*time.Second, 100*time.Millisecond, what, func() error {
			entries, _, err := c.Client.Health().Service(catalog.ServiceName("dev", "grpc"), catalog.AppTag, true, nil)
			if err != nil {
				return err
			}
			if len(entries) != want {
				return fmt.Errorf("%d passing entries, want %d", len(entries), want)
			}
			if want == 1 {
				got, ok := catalog.FromHealthEntry(entries[0])
				if !ok || !reflect.DeepEqual(got, in) {
					return fmt.Errorf("read back %+v (ok=%v), want %+v", got, ok, in)
				}
			}
			return nil
		})
	}
	tests := []struct {
		name     string
		notReady bool
		want     int
	}{
		{"registered ready", false, 1},
		{"registered not ready", true, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ep := in
			ep.NotReady = tc.notReady
			if err := c.Client.Agent().ServiceRegister(catalog.Registration(ep, hc, time.Second)); err != nil {
				t.Fatal(err)
			}
			passing(tc.name, tc.want)
		})
	}
	for _, step := range []struct {
		status string
		want   int
	}{{consul.HealthPassing, 1}, {consul.HealthCritical, 0}, {consul.HealthPassing, 1}} {
		if err := c.Client.Agent().UpdateTTL(catalog.ReadyCheckID(in.GUID), "test", step.status); err != nil {
			t.Fatal(err)
		}
		passing("readiness "+step.status, step.want)
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
