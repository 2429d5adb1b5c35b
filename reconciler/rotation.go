package reconciler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/driftless/driftless/brokers/osb"
	"github.com/driftless/driftless/model"
	"github.com/driftless/driftless/reconciler/decide"
)

// Rotation without downtime: a binding is rotated when its service's
// rotation: in services.yml goes up, or rotate-every: has passed since it
// was made. The successor is bound first (OSB's predecessor_binding_id
// when the plan is binding_rotatable, else a new binding) and stored with
// its predecessor; the app gets a release pinning the new generation
// (RunSpec.BindingGenerations: a new release id, the same droplet), which
// rolls like any release — new instances healthy before old ones stop —
// while instances of the old release keep the predecessor's credentials.
// Once every instance of the app runs the new generation, the predecessor
// is unbound.

// rotationDue reports whether binding b of instance si is to be rotated.
func rotationDue(b model.ServiceBinding, si model.ServiceInstance, now time.Time) bool {
	if si.Decl.Rotation > b.Rotation {
		return true
	}
	return si.Decl.RotateEvery > 0 && now.Sub(b.CreatedAt) >= si.Decl.RotateEvery
}

// rotate binds a successor of old, stores it with old as its predecessor
// and rolls the app onto it.
func (c *Controller) rotate(ctx context.Context, si model.ServiceInstance, old model.ServiceBinding) error {
	app, ok := c.store.App(model.AppKey{Space: old.Space, Name: old.App})
	if !ok || app.ReleaseID != app.CurrentID {
		return nil // the app is gone or rolling out a commit: rotated after it
	}
	next := old
	next.GUID, next.Generation, next.Rotation = newGUID(), old.Generation+1, si.Decl.Rotation
	next.State, next.Operation, next.Message, next.CreatedAt = model.ServiceCreating, "", "", time.Now().UTC()
	next.Predecessor = &model.BindingPredecessor{GUID: old.GUID, Generation: old.Generation, Sealed: old.Sealed}
	var secret model.BindingSecret
	if si.Decl.UserProvided {
		plain, err := c.keys().Open(old.Sealed, bindingAAD(old.Key(), old.Generation))
		if err != nil {
			return err
		}
		if err := json.Unmarshal(plain, &secret); err != nil {
			return fmt.Errorf("binding %s: its sealed credentials are unreadable", old.Key())
		}
	} else {
		predecessor := ""
		if _, _, plan, err := c.resolveService(ctx, si.Decl, si.Broker); err == nil && plan.BindingRotatable != nil && *plan.BindingRotatable {
			predecessor = old.GUID
		}
		br := c.broker(si.Broker)
		if br == nil {
			return fmt.Errorf("service %s's broker %s is not registered", si.Decl.Name, si.Broker)
		}
		var err error
		if secret, err = bindAt(ctx, br, si, &next, predecessor, nil); err != nil {
			return fmt.Errorf("rotating the binding of %s to %s: %w", next.App, si.Decl.Name, err)
		}
	}
	var err error
	if next.Sealed, err = c.seal(next.Key(), next.Generation, secret); err != nil {
		return err
	}
	next.State, next.UpdatedAt = model.ServiceReady, time.Now().UTC()
	if err := c.store.PutBinding(ctx, next); err != nil {
		return err
	}
	if err := c.rollOnto(ctx, next); err != nil {
		return err
	}
	c.events.Record(model.Event{Kind: model.EventServiceBound, Space: next.Space, App: next.App,
		Message: fmt.Sprintf("binding of app %s to service %s rotated (generation %d): the app rolls onto it, then the old binding is unbound", next.App, next.Service, next.Generation)})
	c.Kick()
	return nil
}

// rollOnto makes the app's current release pin binding b's generation:
// a new release (same droplet) that git's release id and the current one
// become, so that the app rolls onto it.
func (c *Controller) rollOnto(ctx context.Context, b model.ServiceBinding) error {
	c.applyMu.Lock()
	defer c.applyMu.Unlock()
	key := model.AppKey{Space: b.Space, Name: b.App}
	app, ok := c.store.App(key)
	if !ok {
		return nil
	}
	cur := c.store.Release(key, app.CurrentID)
	if !cur.Staged() || app.ReleaseID != app.CurrentID {
		return nil // rolled with the next release
	}
	next := *cur
	next.Run.BindingGenerations = maps.Clone(cur.Run.BindingGenerations)
	if next.Run.BindingGenerations == nil {
		next.Run.BindingGenerations = map[string]int{}
	}
	next.Run.BindingGenerations[b.Service] = b.Generation
	next.ID, next.CreatedAt = decide.ReleaseID(next), time.Now().UTC()
	if err := c.store.PutRelease(ctx, next); err != nil {
		return err
	}
	app.ReleaseID, app.PreviousID, app.CurrentID, app.UpdatedAt = next.ID, app.CurrentID, next.ID, time.Now().UTC()
	if err := c.store.PutApp(ctx, app); err != nil {
		return err
	}
	c.crashes.Forget(key)
	return nil
}

// rolledOnto reports whether every running, starting or stopping
// instance of b's app gets b's generation: its predecessor is no longer
// used. A stopping instance still answers the requests routers sent it
// before it was deregistered (the cell's drain): its credentials must
// work until it has stopped.
func (c *Controller) rolledOnto(b model.ServiceBinding) bool {
	key := model.AppKey{Space: b.Space, Name: b.App}
	app, ok := c.store.App(key)
	if !ok {
		return true
	}
	insts, _ := c.actual.Snapshot(time.Now())
	for _, in := range insts {
		if in.Space != b.Space || in.App != b.App || !usesBindings(in.State) {
			continue
		}
		rel := c.store.Release(key, in.ReleaseID)
		if rel == nil || in.ReleaseID != app.CurrentID {
			return false
		}
		if gen, pinned := rel.Run.BindingGenerations[b.Service]; pinned && gen != b.Generation {
			return false
		}
	}
	cur := c.store.Release(key, app.CurrentID)
	if cur == nil {
		return false
	}
	gen, pinned := cur.Run.BindingGenerations[b.Service]
	return !pinned || gen == b.Generation
}

// usesBindings reports whether an instance in state st may still use its
// bindings' credentials: starting, running, or stopping (draining).
func usesBindings(st model.InstanceState) bool { return st.Active() || st == model.StateStopping }

// retirePredecessor unbinds b's predecessor at the broker and forgets it.
func (c *Controller) retirePredecessor(ctx context.Context, si model.ServiceInstance, b model.ServiceBinding) error {
	if !si.Decl.UserProvided {
		if br := c.broker(si.Broker); br != nil {
			if err := unbindAt(ctx, br, si, b.Predecessor.GUID); err != nil {
				return fmt.Errorf("unbinding the rotated binding of %s from %s: %w", b.App, b.Service, err)
			}
		}
	}
	b.Predecessor = nil
	b.UpdatedAt = time.Now().UTC()
	if err := c.store.PutBinding(ctx, b); err != nil {
		return err
	}
	c.events.Record(model.Event{Kind: model.EventServiceUnbound, Space: b.Space, App: b.App,
		Message: fmt.Sprintf("the rotated binding of app %s to service %s is unbound: every instance runs the new one (generation %d)", b.App, b.Service, b.Generation)})
	return nil
}

// isGone reports whether the broker says the binding is already gone.
func isGone(err error) bool { return errors.Is(err, osb.ErrGone) }
