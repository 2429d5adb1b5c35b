package reconciler

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/driftless/driftless/brokers/osb"
	"github.com/driftless/driftless/model"
)

// fakeBroker is a ServiceBroker offering postgresql (plans small, big)
// that records what it was asked; async makes every operation 202.
type fakeBroker struct {
	name  string
	async bool
	fail  error
	// drain is the syslog_drain_url its bindings carry ("" none).
	drain string

	mu    sync.Mutex
	calls []string
	live  map[string]string // instance → plan id
}

func (f *fakeBroker) Name() string { return f.name }

// rotatable is the small plan's binding_rotatable.
var rotatable = true

func (f *fakeBroker) Catalog(context.Context) (osb.Catalog, error) {
	return osb.Catalog{Services: []osb.Service{{ID: "svc-pg", Name: "postgresql", Bindable: true,
		Plans: []osb.Plan{{ID: "p-small", Name: "small", BindingRotatable: &rotatable}, {ID: "p-big", Name: "big"}}}}}, nil
}

func (f *fakeBroker) record(call string) (*osb.Operation, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, call)
	if f.fail != nil {
		return nil, f.fail
	}
	if f.async {
		return &osb.Operation{ID: "op-" + call}, nil
	}
	return nil, nil
}

func (f *fakeBroker) Provision(_ context.Context, id string, req osb.ProvisionRequest) (osb.ProvisionResponse, *osb.Operation, error) {
	op, err := f.record("provision " + req.PlanID + " " + req.SpaceGUID)
	if err == nil {
		f.mu.Lock()
		if f.live == nil {
			f.live = map[string]string{}
		}
		f.live[id] = req.PlanID
		f.mu.Unlock()
	}
	return osb.ProvisionResponse{}, op, err
}

func (f *fakeBroker) Update(_ context.Context, id string, req osb.UpdateRequest) (osb.UpdateResponse, *osb.Operation, error) {
	op, err := f.record("update " + req.PlanID + " from " + req.PreviousValues.PlanID)
	if err == nil {
		f.mu.Lock()
		f.live[id] = req.PlanID
		f.mu.Unlock()
	}
	return osb.UpdateResponse{}, op, err
}

func (f *fakeBroker) Deprovision(_ context.Context, id string, ref osb.PlanRef) (*osb.Operation, error) {
	op, err := f.record("deprovision " + ref.PlanID)
	if err == nil {
		f.mu.Lock()
		delete(f.live, id)
		f.mu.Unlock()
	}
	return op, err
}

func (f *fakeBroker) Wait(_ context.Context, op *osb.Operation, _ func(osb.LastOperation)) (osb.LastOperation, error) {
	if op == nil {
		return osb.LastOperation{State: osb.StateSucceeded}, nil
	}
	f.record("wait " + op.ID)
	return osb.LastOperation{State: osb.StateSucceeded}, nil
}

func (f *fakeBroker) seen() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return strings.Join(f.calls, "; ")
}

// converged runs the service converger until nothing is left to do.
func (h *harness) convergeServices() {
	h.t.Helper()
	var wg sync.WaitGroup
	for range 5 {
		h.c.convergeServices(context.Background(), &wg)
		wg.Wait()
		h.c.convergeBindings(context.Background(), &wg)
		wg.Wait()
	}
}

const dbServices = "services:\n- {name: db, service: postgresql, plan: small}\n"

func servicesCommit(id, plan string, bound bool) commit {
	m := helloManifest
	if bound {
		m += "  services: [db]\n"
	}
	files := map[string]string{"apps/hello/manifest.yml": m, "apps/hello/hello": "binary " + id}
	if plan != "" {
		files["apps/services.yml"] = strings.Replace(dbServices, "small", plan, 1)
	}
	return newCommit(id, files)
}

// TestServiceLifecycle: a declared instance is provisioned at the broker
// offering it, a plan change updates it, and dropping it (once no app
// binds it) deprovisions and forgets it — synchronous and asynchronous
// brokers alike; each step is an event.
func TestServiceLifecycle(t *testing.T) {
	for _, async := range []bool{false, true} {
		t.Run(map[bool]string{false: "sync", true: "async"}[async], func(t *testing.T) {
			ctx := context.Background()
			h := newHarness(t)
			b := &fakeBroker{name: "pg", async: async}
			// No binder's keys (nil refuses to bind): this is the
			// instance's lifecycle, bindings have theirs (bindings_test.go).
			h.c.cfg.Brokers, h.c.cfg.Keys = []ServiceBroker{b}, nil
			key := model.ServiceKey{Space: "dev", Name: "db"}

			h.c.apply(ctx, h.se, servicesCommit("c1", "small", true))
			if errs := h.status().Errors; len(errs) > 0 {
				t.Fatal(errs)
			}
			select { // apply's kick
			case <-h.c.svc.kick:
			default:
			}
			var wg sync.WaitGroup
			h.c.convergeServices(ctx, &wg)
			wg.Wait()
			select { // the binding waiting for the instance is made at once
			case <-h.c.svc.kick:
			default:
				t.Fatal("provisioned without kicking the service loop: the bindings wait for its next tick")
			}
			h.convergeServices()
			si, ok := h.c.store.Service(key)
			if !ok || si.State != model.ServiceReady || si.Broker != "pg" || si.PlanID != "p-small" || si.Applied == nil {
				t.Fatalf("after provisioning: %+v (%v); broker saw %s", si, ok, b.seen())
			}

			h.c.apply(ctx, h.se, servicesCommit("c2", "big", true))
			h.convergeServices()
			if si, _ = h.c.store.Service(key); si.State != model.ServiceReady || si.PlanID != "p-big" || si.Applied.Plan != "big" {
				t.Fatalf("after the plan change: %+v; broker saw %s", si, b.seen())
			}

			h.c.apply(ctx, h.se, servicesCommit("c3", "", true))
			if errs := h.status().Errors; len(errs) == 0 || !strings.Contains(errs[0].Message, `binds service "db"`) {
				t.Fatalf("dropping a bound service: errors %v", errs)
			}
			h.c.apply(ctx, h.se, servicesCommit("c4", "", false))
			h.convergeServices()
			if _, ok := h.c.store.Service(key); ok {
				t.Fatalf("a dropped service is still stored; broker saw %s", b.seen())
			}
			want := "provision p-small dev; update p-big from p-small; deprovision p-big"
			if async {
				want = "provision p-small dev; wait op-provision p-small dev; update p-big from p-small; wait op-update p-big from p-small; deprovision p-big; wait op-deprovision p-big"
			}
			if got := b.seen(); got != want {
				t.Errorf("broker saw %q\nwant %q", got, want)
			}
			for _, kind := range []model.EventKind{model.EventServiceProvisioned, model.EventServiceUpdated, model.EventServiceDeprovisioned} {
				if len(h.events(kind)) != 1 {
					t.Errorf("%s events: %+v", kind, h.events(kind))
				}
			}
		})
	}
}

// TestServiceFailures: an unknown offering or plan, and a broker refusing,
// leave the instance failed with the reason (an event) and the apps
// applied; a later try succeeds once the broker accepts.
func TestServiceFailures(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name, services, want string
		fail                 error
	}{
		{"unknown plan", strings.Replace(dbServices, "small", "huge", 1), "offers postgresql without plan huge (plans: small, big)", nil},
		{"unknown service", strings.Replace(dbServices, "postgresql", "mysql", 1), "no broker offers service mysql (brokers: pg)", nil},
		{"unknown broker", "services:\n- {name: db, service: postgresql, plan: small, broker: other}\n", "broker other is not registered (brokers: pg)", nil},
		{"broker refuses", dbServices, "provisioning at broker pg: boom", errors.New("boom")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			b := &fakeBroker{name: "pg", fail: tt.fail}
			h.c.cfg.Brokers = []ServiceBroker{b}
			h.c.apply(ctx, h.se, newCommit("c1", map[string]string{"apps/hello/manifest.yml": helloManifest, "apps/hello/hello": "b", "apps/services.yml": tt.services}))
			h.convergeServices()
			si, _ := h.c.store.Service(model.ServiceKey{Space: "dev", Name: "db"})
			if si.State != model.ServiceFailed || !strings.Contains(si.Message, tt.want) {
				t.Fatalf("service %+v, want failed with %q", si, tt.want)
			}
			if evs := h.events(model.EventServiceFailed); len(evs) != 1 || !strings.Contains(evs[0].Message, tt.want) {
				t.Fatalf("service-failed events %+v", evs)
			}
			if _, ok := h.c.store.App(hello); !ok {
				t.Fatal("a failed service kept the app from being applied")
			}
			if tt.fail != nil {
				b.mu.Lock()
				b.fail = nil
				b.mu.Unlock()
				h.c.svc.mu.Lock()
				h.c.svc.retryAt = map[model.ServiceKey]time.Time{}
				h.c.svc.mu.Unlock()
				h.convergeServices()
				if si, _ := h.c.store.Service(si.Key()); si.State != model.ServiceReady {
					t.Fatalf("not provisioned once the broker accepts: %+v", si)
				}
			}
		})
	}
}

// TestServicesAndBrokers: the read models list each instance with the
// apps binding it, and each broker with its catalog.
func TestServicesAndBrokers(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	h.c.cfg.Brokers = []ServiceBroker{&fakeBroker{name: "pg"}}
	h.c.apply(ctx, h.se, servicesCommit("c1", "small", true))
	ss := h.c.Services(ctx)
	if len(ss) != 1 || ss[0].Instance.Decl.Name != "db" || len(ss[0].Bound) != 1 || ss[0].Bound[0] != "hello" {
		t.Fatalf("services %+v", ss)
	}
	bs := h.c.Brokers(ctx)
	if len(bs) != 1 || bs[0].Name != "pg" || bs[0].Err != nil || bs[0].Catalog.Services[0].Name != "postgresql" {
		t.Fatalf("brokers %+v", bs)
	}
}

func (f *fakeBroker) Bind(_ context.Context, instanceID, bindingID string, req osb.BindRequest) (osb.Binding, *osb.Operation, error) {
	call := "bind " + req.BindResource.AppGUID
	if req.PredecessorBindingID != "" {
		call += " after " + req.PredecessorBindingID[:8]
	}
	op, err := f.record(call)
	return osb.Binding{Credentials: osb.Credentials{"uri": "postgres://u:hunter2@db:5432/d", "password": "hunter2", "binding": bindingID}, SyslogDrainURL: f.drain}, op, err
}

func (f *fakeBroker) GetBinding(_ context.Context, _, bindingID string, _ osb.PlanRef) (osb.Binding, error) {
	return osb.Binding{Credentials: osb.Credentials{"uri": "postgres://u:hunter2@db:5432/d", "password": "hunter2", "binding": bindingID}, SyslogDrainURL: f.drain}, nil
}

func (f *fakeBroker) Unbind(_ context.Context, _, bindingID string, ref osb.PlanRef) (*osb.Operation, error) {
	return f.record("unbind " + ref.PlanID + " " + bindingID[:8])
}
