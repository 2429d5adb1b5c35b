package reconciler

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/driftless/driftless/brokers/osb"
	"github.com/driftless/driftless/internal/ticks"
	"github.com/driftless/driftless/model"
)

// The service converger brings the brokers in line with the service
// instances a commit stored (decide.Apply): a pending instance is
// provisioned, or updated when the broker holds an older declaration; a
// deleted one is deprovisioned and then forgotten. Each instance is worked
// on by one goroutine at a time; a broker's asynchronous operations are
// polled to their end (brokers/osb Wait) and survive a restart (the
// operation is stored). A failed operation is tried again after
// serviceRetry; nothing here ever stops running apps.

// ServiceBroker is one service broker the controller provisions through:
// brokers/osb.Client (platform wires one per --broker), a fake in tests.
type ServiceBroker interface {
	Name() string
	Catalog(ctx context.Context) (osb.Catalog, error)
	Provision(ctx context.Context, instanceID string, req osb.ProvisionRequest) (osb.ProvisionResponse, *osb.Operation, error)
	Update(ctx context.Context, instanceID string, req osb.UpdateRequest) (osb.UpdateResponse, *osb.Operation, error)
	Deprovision(ctx context.Context, instanceID string, ref osb.PlanRef) (*osb.Operation, error)
	Bind(ctx context.Context, instanceID, bindingID string, req osb.BindRequest) (osb.Binding, *osb.Operation, error)
	GetBinding(ctx context.Context, instanceID, bindingID string, ref osb.PlanRef) (osb.Binding, error)
	Unbind(ctx context.Context, instanceID, bindingID string, ref osb.PlanRef) (*osb.Operation, error)
	Wait(ctx context.Context, op *osb.Operation, progress func(osb.LastOperation)) (osb.LastOperation, error)
}

// serviceRetry is how long a failed service operation waits before it is
// tried again.
const serviceRetry = time.Minute

// serviceWork is the service converger's state: the instances being
// worked on and when failed ones may be tried again.
type serviceWork struct {
	mu      sync.Mutex
	busy    map[model.ServiceKey]bool
	retryAt map[model.ServiceKey]time.Time
	kick    chan struct{}
}

// kickServices asks the service converger to look now.
func (c *Controller) kickServices() {
	select {
	case c.svc.kick <- struct{}{}:
	default:
	}
}

// serviceLoop converges the service instances until ctx ends.
func (c *Controller) serviceLoop(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	ticks.EveryOrWhen(ctx, 5*time.Second, c.svc.kick, func() {
		c.convergeServices(ctx, &wg)
		c.convergeBindings(ctx, &wg) // bindings.go
	})
}

// convergeServices starts a worker for each instance the brokers do not
// hold as declared.
func (c *Controller) convergeServices(ctx context.Context, wg *sync.WaitGroup) {
	now := time.Now()
	for _, si := range c.store.Services() {
		if si.Converged() || si.Decl.UserProvided && !si.Deleted {
			continue
		}
		key := si.Key()
		retrying := si.State == model.ServiceFailed
		c.svc.start(wg, key, retrying, now, func() {
			if err := c.serviceStep(ctx, key); err != nil && ctx.Err() == nil {
				c.serviceFailed(ctx, key, err)
			}
		})
	}
}

// start runs work for key in a goroutine of wg unless work for key runs
// already, or key failed (when retrying) and its retry time is not come.
func (w *serviceWork) start(wg *sync.WaitGroup, key model.ServiceKey, retrying bool, now time.Time, work func()) {
	w.mu.Lock()
	skip := w.busy[key] || retrying && now.Before(w.retryAt[key])
	if !skip {
		w.busy[key] = true
	}
	w.mu.Unlock()
	if skip {
		return
	}
	wg.Go(func() {
		defer func() {
			w.mu.Lock()
			delete(w.busy, key)
			w.mu.Unlock()
		}()
		work()
	})
}

// serviceStep does what one instance needs: deprovision, provision or
// update, waiting for the broker to finish.
func (c *Controller) serviceStep(ctx context.Context, key model.ServiceKey) error {
	si, ok := c.store.Service(key)
	if !ok {
		return nil
	}
	switch {
	case si.Deleted && (si.Decl.UserProvided || si.Applied == nil && si.State != model.ServiceCreating):
		if err := c.store.ForgetService(ctx, key); err != nil {
			return err
		}
		c.events.Record(model.Event{Kind: model.EventServiceDeprovisioned, Space: key.Space,
			Message: fmt.Sprintf("service %s removed (never provisioned, or user-provided)", key.Name)})
		return nil
	case si.Deleted:
		for _, b := range c.store.Bindings() {
			if b.InstanceGUID == si.GUID && b.Space == si.Space {
				return nil // unbound first (bindings.go), then deprovisioned
			}
		}
		return c.deprovision(ctx, si)
	case si.Applied == nil || si.State == model.ServiceCreating:
		return c.provision(ctx, si)
	default:
		return c.updateService(ctx, si)
	}
}

// provision creates the instance at the broker offering its service and
// plan, or waits for a creation a previous term started.
func (c *Controller) provision(ctx context.Context, si model.ServiceInstance) error {
	b, svc, plan, err := c.resolveService(ctx, si.Decl, si.Broker)
	if err != nil {
		return err
	}
	ref := osb.PlanRef{ServiceID: svc.ID, PlanID: plan.ID}
	var op *osb.Operation
	if si.State == model.ServiceCreating && si.Operation != "" && si.Broker == b.Name() {
		op = &osb.Operation{Kind: osb.KindProvision, InstanceID: si.GUID, Plan: ref, ID: si.Operation, Started: si.UpdatedAt}
	} else {
		si.State, si.Broker, si.ServiceID, si.PlanID, si.Message = model.ServiceCreating, b.Name(), svc.ID, plan.ID, "provisioning"
		if err := c.putService(ctx, si); err != nil {
			return err
		}
		_, op, err = b.Provision(ctx, si.GUID, osb.ProvisionRequest{ServiceID: svc.ID, PlanID: plan.ID,
			OrganizationGUID: "driftless", SpaceGUID: si.Space, Parameters: si.Decl.Parameters, Context: serviceContext(si)})
		if err != nil {
			return fmt.Errorf("provisioning at broker %s: %w", b.Name(), err)
		}
	}
	if err := c.waitService(ctx, b, &si, op); err != nil {
		return fmt.Errorf("provisioning at broker %s: %w", b.Name(), err)
	}
	return c.serviceDone(ctx, si, model.EventServiceProvisioned, fmt.Sprintf("service %s (%s, plan %s) provisioned by broker %s", si.Decl.Name, si.Decl.Service, si.Decl.Plan, b.Name()))
}

// updateService moves the instance to its new plan or parameters.
func (c *Controller) updateService(ctx context.Context, si model.ServiceInstance) error {
	b, svc, plan, err := c.resolveService(ctx, si.Decl, si.Broker)
	if err != nil {
		return err
	}
	if b.Name() != si.Broker || svc.ID != si.ServiceID {
		return fmt.Errorf("service %s is provisioned as %s by broker %s; a service or broker change needs a new instance (rename it)", si.Decl.Name, si.Applied.Service, si.Broker)
	}
	var op *osb.Operation
	if si.State == model.ServiceUpdating && si.Operation != "" {
		op = &osb.Operation{Kind: osb.KindUpdate, InstanceID: si.GUID, Plan: osb.PlanRef{ServiceID: svc.ID, PlanID: plan.ID}, ID: si.Operation, Started: si.UpdatedAt}
	} else {
		prevPlan := si.PlanID
		si.State, si.Message = model.ServiceUpdating, "updating"
		if err := c.putService(ctx, si); err != nil {
			return err
		}
		req := osb.UpdateRequest{ServiceID: svc.ID, Parameters: si.Decl.Parameters, Context: serviceContext(si),
			PreviousValues: &osb.PreviousValues{ServiceID: svc.ID, PlanID: prevPlan}}
		if plan.ID != prevPlan {
			req.PlanID = plan.ID
		}
		_, op, err = b.Update(ctx, si.GUID, req)
		if err != nil {
			return fmt.Errorf("updating at broker %s: %w", b.Name(), err)
		}
	}
	if err := c.waitService(ctx, b, &si, op); err != nil {
		return fmt.Errorf("updating at broker %s: %w", b.Name(), err)
	}
	si.PlanID = plan.ID
	return c.serviceDone(ctx, si, model.EventServiceUpdated, fmt.Sprintf("service %s updated to plan %s by broker %s", si.Decl.Name, si.Decl.Plan, b.Name()))
}

// deprovision deletes the instance at its broker, then forgets it.
func (c *Controller) deprovision(ctx context.Context, si model.ServiceInstance) error {
	b := c.broker(si.Broker)
	if b == nil {
		return fmt.Errorf("service %s was provisioned by broker %s, which is not registered (--broker)", si.Decl.Name, si.Broker)
	}
	ref := osb.PlanRef{ServiceID: si.ServiceID, PlanID: si.PlanID}
	var op *osb.Operation
	if si.State == model.ServiceDeleting && si.Operation != "" {
		op = &osb.Operation{Kind: osb.KindDeprovision, InstanceID: si.GUID, Plan: ref, ID: si.Operation, Started: si.UpdatedAt}
	} else {
		si.State, si.Message = model.ServiceDeleting, "deprovisioning"
		if err := c.putService(ctx, si); err != nil {
			return err
		}
		var err error
		if op, err = b.Deprovision(ctx, si.GUID, ref); err != nil && !errors.Is(err, osb.ErrGone) {
			return fmt.Errorf("deprovisioning at broker %s: %w", b.Name(), err)
		}
	}
	if err := c.waitService(ctx, b, &si, op); err != nil && !errors.Is(err, osb.ErrGone) {
		return fmt.Errorf("deprovisioning at broker %s: %w", b.Name(), err)
	}
	if err := c.store.ForgetService(ctx, si.Key()); err != nil {
		return err
	}
	c.events.Record(model.Event{Kind: model.EventServiceDeprovisioned, Space: si.Space,
		Message: fmt.Sprintf("service %s deprovisioned by broker %s", si.Decl.Name, b.Name())})
	return nil
}

// waitService stores an asynchronous operation (so a new term resumes
// it) and polls it to its end.
func (c *Controller) waitService(ctx context.Context, b ServiceBroker, si *model.ServiceInstance, op *osb.Operation) error {
	if op == nil {
		return nil
	}
	if si.Operation != op.ID || si.Operation == "" {
		si.Operation = op.ID
		if err := c.putService(ctx, *si); err != nil {
			return err
		}
	}
	_, err := b.Wait(ctx, op, func(lo osb.LastOperation) {
		c.log.Debug("service operation in progress", "service", si.Key(), "state", lo.State, "description", lo.Description)
	})
	return err
}

// serviceDone records that the broker holds what git declares.
func (c *Controller) serviceDone(ctx context.Context, si model.ServiceInstance, kind model.EventKind, msg string) error {
	applied := si.Decl
	si.Applied, si.State, si.Operation, si.Message = &applied, model.ServiceReady, "", ""
	if err := c.putService(ctx, si); err != nil {
		return err
	}
	c.svc.mu.Lock()
	delete(c.svc.retryAt, si.Key())
	c.svc.mu.Unlock()
	c.events.Record(model.Event{Kind: kind, Space: si.Space, Message: msg})
	c.kickServices() // its bindings are made now, not at the next tick
	c.Kick()         // apps waiting for it may start
	return nil
}

// serviceFailed records a failed operation: tried again after
// serviceRetry, or at once when a commit changes the instance.
func (c *Controller) serviceFailed(ctx context.Context, key model.ServiceKey, cause error) {
	c.svc.mu.Lock()
	c.svc.retryAt[key] = time.Now().Add(serviceRetry)
	c.svc.mu.Unlock()
	si, ok := c.store.Service(key)
	if !ok {
		return
	}
	si.State, si.Operation, si.Message = model.ServiceFailed, "", cause.Error()
	if err := c.putService(ctx, si); err != nil {
		c.log.Warn("storing a failed service operation", "service", key, "err", err)
	}
	c.events.Record(model.Event{Kind: model.EventServiceFailed, Space: key.Space,
		Message: fmt.Sprintf("service %s (%s): %v; tried again in %s", key.Name, si.Decl.Pos, cause, serviceRetry)})
}

// putService stores what the converger learnt of an instance: where the
// broker is with it (state, operation, message, broker, ids, what it
// holds). The declaration and deletion stay the latest commit's: when the
// commit changed them meanwhile, a finished instance is pending again and
// the converger looks at once.
func (c *Controller) putService(ctx context.Context, si model.ServiceInstance) error {
	c.applyMu.Lock()
	defer c.applyMu.Unlock()
	cur, ok := c.store.Service(si.Key())
	if !ok {
		return fmt.Errorf("service %s is gone", si.Key())
	}
	cur.State, cur.Operation, cur.Message = si.State, si.Operation, si.Message
	cur.Broker, cur.ServiceID, cur.PlanID, cur.Applied = si.Broker, si.ServiceID, si.PlanID, si.Applied
	if cur.Deleted != si.Deleted || !model.SameService(cur.Decl, si.Decl) {
		if cur.State == model.ServiceReady || cur.State == model.ServiceFailed {
			cur.State = model.ServicePending
		}
		c.kickServices()
	}
	cur.UpdatedAt = time.Now().UTC()
	return c.store.PutService(ctx, cur)
}

// resolveService finds the broker, offering and plan of a declaration:
// the named broker, or the one broker whose catalog offers the service
// (prefer, when set, the one that provisioned it).
func (c *Controller) resolveService(ctx context.Context, d model.ServiceDecl, prefer string) (ServiceBroker, osb.Service, osb.Plan, error) {
	if len(c.cfg.Brokers) == 0 {
		return nil, osb.Service{}, osb.Plan{}, fmt.Errorf("no service broker is registered (--broker NAME=URL) for service %s", d.Name)
	}
	type offer struct {
		b    ServiceBroker
		svc  osb.Service
		plan osb.Plan
	}
	var found []offer
	var names, errs []string
	for _, b := range c.cfg.Brokers {
		names = append(names, b.Name())
		if d.Broker != "" && b.Name() != d.Broker {
			continue
		}
		cat, err := b.Catalog(ctx)
		if err != nil {
			errs = append(errs, fmt.Sprintf("broker %s: %v", b.Name(), err))
			continue
		}
		for _, svc := range cat.Services {
			if svc.Name != d.Service {
				continue
			}
			var plans []string
			for _, p := range svc.Plans {
				plans = append(plans, p.Name)
				if p.Name == d.Plan {
					found = append(found, offer{b, svc, p})
				}
			}
			if !slices.Contains(plans, d.Plan) {
				errs = append(errs, fmt.Sprintf("broker %s offers %s without plan %s (plans: %s)", b.Name(), d.Service, d.Plan, strings.Join(plans, ", ")))
			}
		}
	}
	switch {
	case len(found) == 1:
		return found[0].b, found[0].svc, found[0].plan, nil
	case len(found) > 1:
		for _, f := range found {
			if f.b.Name() == prefer {
				return f.b, f.svc, f.plan, nil
			}
		}
		var by []string
		for _, f := range found {
			by = append(by, f.b.Name())
		}
		return nil, osb.Service{}, osb.Plan{}, fmt.Errorf("service %s plan %s is offered by brokers %s: name one with broker: in services.yml", d.Service, d.Plan, strings.Join(by, ", "))
	case d.Broker != "" && !slices.Contains(names, d.Broker):
		return nil, osb.Service{}, osb.Plan{}, fmt.Errorf("broker %s is not registered (brokers: %s)", d.Broker, strings.Join(names, ", "))
	case len(errs) > 0:
		return nil, osb.Service{}, osb.Plan{}, errors.New(strings.Join(errs, "; "))
	}
	return nil, osb.Service{}, osb.Plan{}, fmt.Errorf("no broker offers service %s (brokers: %s)", d.Service, strings.Join(names, ", "))
}

// broker returns the registered broker name, or nil.
func (c *Controller) broker(name string) ServiceBroker {
	for _, b := range c.cfg.Brokers {
		if b.Name() == name {
			return b
		}
	}
	return nil
}

// serviceContext is the OSB context of an instance: where it lives.
func serviceContext(si model.ServiceInstance) map[string]any {
	return map[string]any{"platform": "driftless", "space": si.Space, "instance_name": si.Decl.Name}
}

// ServiceState is what the controller knows of one service instance: the
// stored instance and the apps whose desired release binds it.
type ServiceState struct {
	Instance model.ServiceInstance
	Bound    []string
}

// Services describes the service instances, by space and name.
func (c *Controller) Services(_ context.Context) []ServiceState {
	bound := map[model.ServiceKey][]string{}
	for _, a := range c.store.Apps() {
		rel := c.store.Release(a.Key(), a.ReleaseID)
		if rel == nil {
			continue
		}
		for _, b := range rel.Run.Services {
			key := model.ServiceKey{Space: a.Space, Name: b.Name}
			bound[key] = append(bound[key], a.Name)
		}
	}
	var out []ServiceState
	for _, si := range c.store.Services() {
		apps := bound[si.Key()]
		slices.Sort(apps)
		out = append(out, ServiceState{Instance: si, Bound: apps})
	}
	return out
}

// BrokerState is one registered broker and what its catalog offers (Err
// when it could not be read).
type BrokerState struct {
	Name    string
	URL     string
	Catalog osb.Catalog
	Err     error
}

// Brokers describes the registered brokers, reading each one's catalog.
func (c *Controller) Brokers(ctx context.Context) []BrokerState {
	out := make([]BrokerState, 0, len(c.cfg.Brokers))
	for _, b := range c.cfg.Brokers {
		bs := BrokerState{Name: b.Name()}
		if u, ok := b.(interface{ URL() string }); ok {
			bs.URL = u.URL()
		}
		bs.Catalog, bs.Err = b.Catalog(ctx)
		out = append(out, bs)
	}
	return out
}
