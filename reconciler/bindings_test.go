package reconciler

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/driftless/driftless/bus"
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

// TestRotation: raising a service's rotation binds a successor (naming its
// predecessor, the plan rotating bindings), rolls the app onto a release
// pinning it (same droplet, new id) whose instances get the new
// credentials, keeps the old binding while an instance still runs the old
// release (stopping included: it drains), and unbinds it once every
// instance runs the new one.
func TestRotation(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	keys, err := secrets.LoadOrCreate(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	b := &fakeBroker{name: "pg"}
	h.c.cfg.Brokers, h.c.cfg.Keys = []ServiceBroker{b}, keys
	h.c.apply(ctx, h.se, servicesCommit("c1", "small", true))
	h.eventually("staged", func() bool { a, _ := h.c.store.App(hello); return a.CurrentID != "" })
	h.convergeServices()
	key := model.BindingKey{Space: "dev", App: "hello", Service: "db"}
	first, ok := h.c.store.Binding(key)
	if !ok || first.State != model.ServiceReady {
		t.Fatalf("binding %+v", first)
	}
	before, _ := h.c.store.App(hello)
	cell := func(insts ...model.InstanceStatus) {
		h.c.actual.Heartbeat(bus.CellHeartbeat{CellID: "cell-a", BootID: "boot-1", Address: "127.0.0.1", Generation: uint64(time.Now().UnixNano()),
			Capacity: model.Resources{MemoryMB: 4096, DiskMB: 100000, Instances: 100}, Instances: insts}, time.Now())
	}
	instance := func(guid, release string, st model.InstanceState) model.InstanceStatus {
		return model.InstanceStatus{InstanceRef: model.InstanceRef{GUID: guid, Space: "dev", App: "hello", ReleaseID: release}, State: st}
	}
	running := func(release string) { cell(instance("i-0", release, model.StateRunning)) }
	running(before.CurrentID)

	rotated := newCommit("c2", map[string]string{"apps/hello/manifest.yml": helloManifest + "  services: [db]\n", "apps/hello/hello": "binary c1",
		"apps/services.yml": "services:\n- {name: db, service: postgresql, plan: small, rotation: 1}\n"})
	h.c.apply(ctx, h.se, rotated)
	h.convergeServices()
	second, _ := h.c.store.Binding(key)
	if second.Generation != 1 || second.GUID == first.GUID || second.Predecessor == nil || second.Predecessor.GUID != first.GUID {
		t.Fatalf("rotated binding %+v", second)
	}
	if !strings.Contains(b.seen(), "bind dev-hello after "+first.GUID[:8]) {
		t.Fatalf("broker saw %s: want a bind naming the predecessor", b.seen())
	}
	after, _ := h.c.store.App(hello)
	rel := h.c.store.Release(hello, after.CurrentID)
	if after.CurrentID == before.CurrentID || after.ReleaseID != after.CurrentID || rel.Run.BindingGenerations["db"] != 1 ||
		rel.DropletDigest != h.c.store.Release(hello, before.CurrentID).DropletDigest {
		t.Fatalf("the app after rotating: %+v, release %+v", after, rel)
	}
	var planned *model.Release
	for _, pa := range h.c.planApps() {
		if pa.Name == "hello" {
			planned = pa.Release
		}
	}
	if planned == nil || planned.Run.Bindings[0].Credentials["binding"] != second.GUID || planned.Run.Bindings[0].BindingGUID != second.GUID {
		t.Fatalf("the new instances' bindings %+v", planned)
	}
	if strings.Contains(b.seen(), "unbind") {
		t.Fatalf("unbound while an instance runs the old release: %s", b.seen())
	}

	// The old instance stopping (draining) still uses the old credentials.
	cell(instance("i-0", before.CurrentID, model.StateStopping), instance("i-1", after.CurrentID, model.StateRunning))
	h.convergeServices()
	if strings.Contains(b.seen(), "unbind") {
		t.Fatalf("unbound while an instance of the old release drains: %s", b.seen())
	}

	cell(instance("i-1", after.CurrentID, model.StateRunning))
	h.convergeServices()
	if got, _ := h.c.store.Binding(key); got.Predecessor != nil || !strings.Contains(b.seen(), "unbind p-small "+first.GUID[:8]) {
		t.Fatalf("predecessor %+v; broker saw %s", got.Predecessor, b.seen())
	}
}

// TestRotatedReleaseKept: a later commit that does not change the app
// keeps the release pinned to the rotated binding (no needless roll).
func TestRotatedReleaseKept(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	keys, err := secrets.LoadOrCreate(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	h.c.cfg.Brokers, h.c.cfg.Keys = []ServiceBroker{&fakeBroker{name: "pg"}}, keys
	h.c.apply(ctx, h.se, servicesCommit("c1", "small", true))
	h.eventually("staged", func() bool { a, _ := h.c.store.App(hello); return a.CurrentID != "" })
	h.convergeServices()
	files := map[string]string{"apps/hello/manifest.yml": helloManifest + "  services: [db]\n", "apps/hello/hello": "binary c1",
		"apps/services.yml": "services:\n- {name: db, service: postgresql, plan: small, rotation: 1}\n"}
	h.c.apply(ctx, h.se, newCommit("c2", files))
	h.convergeServices()
	pinned, _ := h.c.store.App(hello)
	files["README"] = "unrelated"
	h.c.apply(ctx, h.se, newCommit("c3", files))
	if a, _ := h.c.store.App(hello); a.ReleaseID != pinned.CurrentID || a.CurrentID != pinned.CurrentID {
		t.Fatalf("an unrelated commit moved the app from its rotated release: %+v (was %+v)", a, pinned)
	}
}

// TestPreviewServices: a preview gets its own service instance (on its
// preview-plan) bound to its app; closing the pull request unbinds and
// deprovisions it, production's untouched.
func TestPreviewServices(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	keys, err := secrets.LoadOrCreate(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	b := &fakeBroker{name: "pg"}
	h.c.cfg.Brokers, h.c.cfg.Keys = []ServiceBroker{b}, keys
	files := map[string]string{"apps/hello/manifest.yml": helloManifest + "  services: [db]\n", "apps/hello/hello": "binary",
		"apps/services.yml": "services:\n- {name: db, service: postgresql, plan: big, preview-plan: small}\n"}
	h.c.apply(ctx, h.se, newCommit("c1", files))
	h.c.deployPreview(ctx, h.se, prN(7), newCommit("p1", files))
	h.eventually("staged", func() bool { a, _ := h.c.store.App(helloPR7); return a.CurrentID != "" })
	h.convergeServices()
	prod, _ := h.c.store.Service(model.ServiceKey{Space: "dev", Name: "db"})
	pv, _ := h.c.store.Service(model.ServiceKey{Space: "dev-pr-7", Name: "db"})
	if prod.PlanID != "p-big" || pv.PlanID != "p-small" || pv.GUID == prod.GUID || pv.State != model.ServiceReady {
		t.Fatalf("production's %+v, the preview's %+v", prod, pv)
	}
	if _, ok := h.c.store.Binding(model.BindingKey{Space: "dev-pr-7", App: "hello", Service: "db"}); !ok {
		t.Fatal("the preview's app is not bound")
	}
	if err := h.c.removePreview(ctx, h.se, 7, "pull request 7 closed"); err != nil {
		t.Fatal(err)
	}
	h.convergeServices()
	if _, ok := h.c.store.Service(pv.Key()); ok {
		t.Fatalf("the preview's service is still there; broker saw %s", b.seen())
	}
	if _, ok := h.c.store.Binding(model.BindingKey{Space: "dev-pr-7", App: "hello", Service: "db"}); ok {
		t.Fatal("the preview's binding is still there")
	}
	if got, ok := h.c.store.Service(prod.Key()); !ok || got.State != model.ServiceReady {
		t.Fatalf("production's service %+v", got)
	}
	seen := b.seen()
	if i, j := strings.Index(seen, "unbind p-small"), strings.Index(seen, "deprovision p-small"); i < 0 || j < i {
		t.Fatalf("broker saw %s: want the preview's binding unbound, then its instance deprovisioned", seen)
	}
}
