package registry

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	consul "github.com/hashicorp/consul/api"

	"github.com/driftless/driftless/catalog"
	"github.com/driftless/driftless/internal/children"
	"github.com/driftless/driftless/internal/testenv"
	"github.com/driftless/driftless/model"
)

// TestConsulRestartedEmpty: a real Consul, far along its indexes, is
// killed and started again empty on the same address (a dev agent keeps
// nothing: its indexes start over). The registry's queries fail meanwhile;
// the next ones must start over from index 0, else they would ask the new
// Consul for an index it has not reached and wait their whole wait time
// (30 s here) while instances come and go below it.
func TestConsulRestartedEmpty(t *testing.T) {
	c := testenv.StartConsul(t)
	register := func(cc *consul.Client, guid string, port int) {
		t.Helper()
		ep := model.Endpoint{InstanceRef: model.InstanceRef{GUID: guid, Space: "dev", App: "hello"}, Address: "127.0.0.1", Port: port,
			Routes: []string{"hello.apps.localhost"}}
		if err := catalog.Register(cc, ep, model.HealthCheck{Type: model.HealthProcess}); err != nil {
			t.Fatal(err)
		}
	}
	register(c.Client, "before", 40001)
	// Move the catalog's index well past where a new Consul starts.
	for i := range 60 {
		if _, err := c.Client.Catalog().Register(&consul.CatalogRegistration{Node: "filler", Address: "10.9.9.9",
			Service: &consul.AgentService{ID: "filler", Service: fmt.Sprintf("filler-%d", i%2)}}, nil); err != nil {
			t.Fatal(err)
		}
	}
	r := New(Config{Consul: c.Client, Log: slog.New(slog.DiscardHandler), Wait: 30 * time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = r.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	has := func(guid string) bool {
		p := r.Table().Lookup("hello.apps.localhost", "/")
		if p == nil {
			return false
		}
		_, ok := p.Find(guid)
		return ok
	}
	testenv.Eventually(t, 10*time.Second, 50*time.Millisecond, "the first instance routed", func() error {
		if !has("before") {
			return fmt.Errorf("not yet")
		}
		return nil
	})

	c.Proc.Kill()
	time.Sleep(500 * time.Millisecond) // the registry's queries fail
	ctx2, cancel2 := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel2()
	p, err := children.StartConsul(ctx2, children.ConsulOptions{HTTPAddr: c.Addr, LogPath: filepath.Join(t.TempDir(), "consul.log")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Stop(10 * time.Second) })
	register(c.Client, "after", 40002)
	testenv.Eventually(t, 10*time.Second, 50*time.Millisecond, "the instance registered in the new Consul routed", func() error {
		if !has("after") {
			return fmt.Errorf("not routed yet")
		}
		return nil
	})
}
