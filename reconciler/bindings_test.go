package reconciler

import (
	"context"
	"strings"
	"testing"

	"github.com/driftless/driftless/model"
	"github.com/driftless/driftless/secrets"
)

// TestBindings: an app binding a service waits (its instances do not
// start, and it says why) until the instance is provisioned and bound;
// then its start command carries the binding with its credentials, which
// are stored sealed; a commit that stops binding it unbinds it (no
// instance uses it) and forgets it.
func TestBindings(t *testing.T) {
	for _, async := range []bool{false, true} {
		t.Run(map[bool]string{false: "sync", true: "async"}[async], func(t *testing.T) {
			ctx := context.Background()
			h := newHarness(t)
			keys, err := secrets.LoadOrCreate(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			b := &fakeBroker{name: "pg", async: async}
			h.c.cfg.Brokers, h.c.cfg.Keys = []ServiceBroker{b}, keys
			h.c.apply(ctx, h.se, servicesCommit("c1", "small", true))
			h.eventually("staged", func() bool { a, _ := h.c.store.App(hello); return a.CurrentID != "" })

			planned := func() *model.Release {
				for _, pa := range h.c.planApps() {
					if pa.Name == "hello" {
						return pa.Release
					}
				}
				t.Fatal("hello is not planned")
				return nil
			}
			if rel := planned(); rel != nil {
				t.Fatalf("instances would start before the binding: %+v", rel.Run.Bindings)
			}
			if w := h.c.waitingFor(hello); !strings.Contains(w, "waiting for service db (pending)") {
				t.Fatalf("waiting %q", w)
			}

			h.convergeServices() // provisions, then binds
			rel := planned()
			if rel == nil || len(rel.Run.Bindings) != 1 {
				t.Fatalf("planned release %+v; waiting %q; broker saw %s", rel, h.c.waitingFor(hello), b.seen())
			}
			bd := rel.Run.Bindings[0]
			if bd.Label != "postgresql" || bd.Name != "db" || bd.InstanceName != "db" || bd.Plan != "small" || bd.Provider != "pg" ||
				bd.Credentials["password"] != "hunter2" || bd.BindingGUID == "" || bd.InstanceGUID == "" {
				t.Fatalf("binding %+v", bd)
			}
			if stored, ok := h.kv.Value("driftless/bindings/dev/hello/db"); !ok || strings.Contains(string(stored), "hunter2") {
				t.Fatalf("stored binding %q (found %v): want sealed credentials", stored, ok)
			}
			if a, _ := h.c.store.App(hello); a.CurrentID == "" || h.c.waitingFor(hello) != "" {
				t.Fatalf("still waiting: %q", h.c.waitingFor(hello))
			}
			if len(h.events(model.EventServiceBound)) != 1 {
				t.Errorf("service-bound events %+v", h.events(model.EventServiceBound))
			}

			h.c.apply(ctx, h.se, servicesCommit("c2", "small", false))
			h.eventually("the unbound release staged", func() bool { a, _ := h.c.store.App(hello); return a.CurrentID == a.ReleaseID })
			// The previous release is the app's previous one, not current or
			// desired: nothing asks for the binding any more.
			h.convergeServices()
			if _, ok := h.c.store.Binding(model.BindingKey{Space: "dev", App: "hello", Service: "db"}); ok {
				t.Fatalf("binding kept after the app stopped binding; broker saw %s", b.seen())
			}
			if !strings.Contains(b.seen(), "unbind p-small") || len(h.events(model.EventServiceUnbound)) != 1 {
				t.Fatalf("broker saw %s; unbound events %+v", b.seen(), h.events(model.EventServiceUnbound))
			}
		})
	}
}
