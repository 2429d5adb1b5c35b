package reconciler

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/driftless/driftless/brokers/osb"
	"github.com/driftless/driftless/catalog"
	"github.com/driftless/driftless/model"
	"github.com/driftless/driftless/reconciler/plan"
	"github.com/driftless/driftless/secrets"
)

// Bindings: an app whose release binds service instances (its manifest's
// services:) gets a binding of each from the instance's broker (a
// user-provided instance's from its declaration, decrypted) once the
// instance is ready; the credentials are stored sealed (secrets.Keys) and
// opened only into the start command of the app's instances (planApps →
// bindingsFor), which do not start until every binding is ready (the app
// shows why). A binding no release of the app asks for, and no running
// instance uses, is unbound and forgotten. convergeBindings runs with the
// service converger.

// Keys seal binding credentials and open user-provided ones; nil (unit
// tests without services) refuses to bind.
func (c *Controller) keys() *secrets.Keys { return c.cfg.Keys }

// wantedBindings are the bindings the apps' desired and current releases
// ask for, with what the desired one asks (binding name, parameters).
func (c *Controller) wantedBindings() map[model.BindingKey]model.AppService {
	out := map[model.BindingKey]model.AppService{}
	for _, a := range c.store.Apps() {
		for _, id := range []string{a.CurrentID, a.ReleaseID} { // the desired one's wins
			if rel := c.store.Release(a.Key(), id); rel != nil {
				for _, svc := range rel.Run.Services {
					out[model.BindingKey{Space: a.Space, App: a.Name, Service: svc.Name}] = svc
				}
			}
		}
	}
	return out
}

// convergeBindings starts a worker for each binding to make (its instance
// ready) or to remove (no release wants it, no instance runs with it).
func (c *Controller) convergeBindings(ctx context.Context, wg *sync.WaitGroup) {
	wanted := c.wantedBindings()
	inUse := c.bindingsInUse()
	now := time.Now()
	var todo []model.BindingKey
	for key, svc := range wanted {
		b, ok := c.store.Binding(key)
		si, ready := c.store.Service(model.ServiceKey{Space: key.Space, Name: key.Service})
		ready = ready && !si.Deleted && (si.Decl.UserProvided || si.State == model.ServiceReady && si.Applied != nil)
		switch {
		case !ready:
		case !ok, b.State == model.ServicePending, b.State == model.ServiceCreating,
			b.State == model.ServiceReady && (b.InstanceGUID != si.GUID || b.BindingName != svc.BindingName),
			b.State == model.ServiceReady && b.Predecessor == nil && rotationDue(b, si, now),
			b.Predecessor != nil && c.rolledOnto(b):
			todo = append(todo, key)
		}
	}
	for _, b := range c.store.Bindings() {
		if _, want := wanted[b.Key()]; !want && !inUse[b.Key()] {
			todo = append(todo, b.Key())
		}
	}
	for _, key := range todo {
		wk := model.ServiceKey{Space: "binding:" + key.Space + "/" + key.App, Name: key.Service} // the work map's key
		c.svc.start(wg, wk, true, now, func() {
			if err := c.bindingStep(ctx, key, wanted); err != nil && ctx.Err() == nil {
				c.bindingFailed(ctx, key, wk, err)
			}
		})
	}
}

// bindingsInUse are the bindings of the releases instances run now
// (stopping ones included: they drain).
func (c *Controller) bindingsInUse() map[model.BindingKey]bool {
	insts, _ := c.actual.Snapshot(time.Now())
	out := map[model.BindingKey]bool{}
	for _, in := range insts {
		if !usesBindings(in.State) {
			continue
		}
		if rel := c.store.Release(model.AppKey{Space: in.Space, Name: in.App}, in.ReleaseID); rel != nil {
			for _, svc := range rel.Run.Services {
				out[model.BindingKey{Space: in.Space, App: in.App, Service: svc.Name}] = true
			}
		}
	}
	return out
}

// bindingStep makes, remakes or removes one binding.
func (c *Controller) bindingStep(ctx context.Context, key model.BindingKey, wanted map[model.BindingKey]model.AppService) error {
	svc, want := wanted[key]
	old, had := c.store.Binding(key)
	if !want {
		return c.unbind(ctx, old)
	}
	si, ok := c.store.Service(model.ServiceKey{Space: key.Space, Name: key.Service})
	if !ok {
		return fmt.Errorf("service %s is not declared", key.Service)
	}
	if had && old.Predecessor != nil && c.rolledOnto(old) {
		return c.retirePredecessor(ctx, si, old)
	}
	if had && old.State == model.ServiceReady && old.InstanceGUID == si.GUID {
		if old.BindingName != svc.BindingName { // only a name in VCAP_SERVICES and /bindings: the broker's binding stays
			old.BindingName, old.UpdatedAt = svc.BindingName, time.Now().UTC()
			return c.store.PutBinding(ctx, old)
		}
		if old.Predecessor == nil && rotationDue(old, si, time.Now()) {
			return c.rotate(ctx, si, old)
		}
		return nil
	}
	if had && old.State == model.ServiceReady && old.InstanceGUID != si.GUID {
		// The instance was replaced (deleted and declared again): the old
		// binding goes with it.
		if err := c.unbind(ctx, old); err != nil {
			return err
		}
		had = false
	}
	if c.keys() == nil {
		return errors.New("this controller has no keys to seal binding credentials (platform: --secrets)")
	}
	b := model.ServiceBinding{Space: key.Space, App: key.App, Service: key.Service, GUID: newGUID(), InstanceGUID: si.GUID,
		BindingName: svc.BindingName, Parameters: svc.Parameters, Rotation: si.Decl.Rotation, State: model.ServiceCreating, CreatedAt: time.Now().UTC()}
	if had && old.State == model.ServiceCreating && old.InstanceGUID == si.GUID {
		b = old // resume a bind a previous term started
	}
	var secret model.BindingSecret
	if si.Decl.UserProvided {
		creds := map[string]any{}
		if si.Decl.Credentials != "" {
			plain, err := c.keys().Decrypt(si.Decl.Credentials)
			if err != nil {
				return fmt.Errorf("user-provided service %s: %w", key.Service, err)
			}
			if err := json.Unmarshal(plain, &creds); err != nil {
				return fmt.Errorf("user-provided service %s: its decrypted credentials are not a JSON object", key.Service)
			}
		}
		secret = model.BindingSecret{Credentials: creds, SyslogDrainURL: si.Decl.SyslogDrainURL}
	} else {
		var err error
		if secret, err = c.bind(ctx, si, &b); err != nil {
			return err
		}
	}
	var err error
	if b.Sealed, err = c.seal(key, b.Generation, secret); err != nil {
		return err
	}
	b.State, b.Operation, b.Message, b.UpdatedAt = model.ServiceReady, "", "", time.Now().UTC()
	if err := c.store.PutBinding(ctx, b); err != nil {
		return err
	}
	c.svc.mu.Lock()
	delete(c.svc.retryAt, model.ServiceKey{Space: "binding:" + key.Space + "/" + key.App, Name: key.Service})
	c.svc.mu.Unlock()
	c.events.Record(model.Event{Kind: model.EventServiceBound, Space: key.Space, App: key.App,
		Message: fmt.Sprintf("app %s bound to service %s", key.App, key.Service)})
	c.Kick() // its instances may start
	return nil
}

// bind asks the instance's broker for binding b (recording it as being
// made first, and its asynchronous operation, so a restart resumes it) and
// returns what it gave.
func (c *Controller) bind(ctx context.Context, si model.ServiceInstance, b *model.ServiceBinding) (model.BindingSecret, error) {
	br := c.broker(si.Broker)
	if br == nil {
		return model.BindingSecret{}, fmt.Errorf("service %s's broker %s is not registered", si.Decl.Name, si.Broker)
	}
	if err := c.store.PutBinding(ctx, *b); err != nil {
		return model.BindingSecret{}, err
	}
	secret, err := bindAt(ctx, br, si, b, "", func(op *osb.Operation) error {
		b.Operation = op.ID
		return c.store.PutBinding(ctx, *b)
	})
	if err != nil {
		return model.BindingSecret{}, fmt.Errorf("binding %s to %s: %w", b.App, si.Decl.Name, err)
	}
	return secret, nil
}

// bindAt asks br for binding b of instance si — naming its predecessor
// when that is not "" — or resumes the operation b records, waits for an
// asynchronous one (handed to started first, when set, to be stored) and
// returns what the broker gave.
func bindAt(ctx context.Context, br ServiceBroker, si model.ServiceInstance, b *model.ServiceBinding, predecessor string,
	started func(*osb.Operation) error) (model.BindingSecret, error) {
	ref := osb.PlanRef{ServiceID: si.ServiceID, PlanID: si.PlanID}
	var got osb.Binding
	var op *osb.Operation
	var err error
	if b.Operation != "" {
		op = &osb.Operation{Kind: osb.KindBind, InstanceID: si.GUID, BindingID: b.GUID, Plan: ref, ID: b.Operation, Started: b.UpdatedAt}
	} else {
		got, op, err = br.Bind(ctx, si.GUID, b.GUID, osb.BindRequest{ServiceID: si.ServiceID, PlanID: si.PlanID,
			BindResource: &osb.BindResource{AppGUID: b.Space + "-" + b.App}, Parameters: b.Parameters, PredecessorBindingID: predecessor,
			Context: map[string]any{"platform": "driftless", "space": b.Space, "app": b.App}})
		if err != nil {
			return model.BindingSecret{}, fmt.Errorf("at broker %s: %w", br.Name(), err)
		}
	}
	if op != nil {
		if started != nil {
			if err := started(op); err != nil {
				return model.BindingSecret{}, err
			}
		}
		if _, err := br.Wait(ctx, op, nil); err != nil {
			return model.BindingSecret{}, fmt.Errorf("at broker %s: %w", br.Name(), err)
		}
		if got, err = br.GetBinding(ctx, si.GUID, b.GUID, ref); err != nil {
			return model.BindingSecret{}, fmt.Errorf("reading it at broker %s: %w", br.Name(), err)
		}
	}
	mounts := make([]any, 0, len(got.VolumeMounts))
	for _, m := range got.VolumeMounts {
		mounts = append(mounts, m)
	}
	return model.BindingSecret{Credentials: got.Credentials, SyslogDrainURL: got.SyslogDrainURL, VolumeMounts: mounts}, nil
}

// unbindAt removes binding guid of instance si at broker br, waiting for
// an asynchronous unbind; a binding the broker no longer has is gone.
func unbindAt(ctx context.Context, br ServiceBroker, si model.ServiceInstance, guid string) error {
	op, err := br.Unbind(ctx, si.GUID, guid, osb.PlanRef{ServiceID: si.ServiceID, PlanID: si.PlanID})
	if err != nil && !isGone(err) {
		return fmt.Errorf("at broker %s: %w", br.Name(), err)
	}
	if op != nil {
		if _, err := br.Wait(ctx, op, nil); err != nil && !isGone(err) {
			return fmt.Errorf("at broker %s: %w", br.Name(), err)
		}
	}
	return nil
}

// seal seals what a binding of key's generation gives the app.
func (c *Controller) seal(key model.BindingKey, generation int, secret model.BindingSecret) (string, error) {
	data, err := json.Marshal(secret)
	if err != nil {
		return "", fmt.Errorf("encoding binding %s: %w", key, err)
	}
	return c.keys().Seal(data, bindingAAD(key, generation))
}

// unbind removes a binding at its broker (none for a user-provided
// instance or one never made), then forgets it.
func (c *Controller) unbind(ctx context.Context, b model.ServiceBinding) error {
	if b.GUID == "" {
		return nil
	}
	si, ok := c.store.Service(model.ServiceKey{Space: b.Space, Name: b.Service})
	if ok && !si.Decl.UserProvided && si.GUID == b.InstanceGUID {
		br := c.broker(si.Broker)
		if br == nil {
			return fmt.Errorf("service %s's broker %s is not registered", si.Decl.Name, si.Broker)
		}
		guids := []string{b.GUID}
		if b.Predecessor != nil {
			guids = append(guids, b.Predecessor.GUID)
		}
		for _, guid := range guids {
			if err := unbindAt(ctx, br, si, guid); err != nil {
				return fmt.Errorf("unbinding %s from %s: %w", b.App, b.Service, err)
			}
		}
	}
	if err := c.store.ForgetBinding(ctx, b.Key()); err != nil {
		return err
	}
	c.events.Record(model.Event{Kind: model.EventServiceUnbound, Space: b.Space, App: b.App,
		Message: fmt.Sprintf("app %s unbound from service %s", b.App, b.Service)})
	return nil
}

// bindingFailed records a failed binding step: tried again after
// serviceRetry.
func (c *Controller) bindingFailed(ctx context.Context, key model.BindingKey, wk model.ServiceKey, cause error) {
	c.svc.mu.Lock()
	c.svc.retryAt[wk] = time.Now().Add(serviceRetry)
	c.svc.mu.Unlock()
	if b, ok := c.store.Binding(key); ok && b.State != model.ServiceReady {
		b.State, b.Message = model.ServiceFailed, cause.Error()
		if err := c.store.PutBinding(ctx, b); err != nil {
			c.log.Warn("storing a failed binding", "binding", key, "err", err)
		}
	}
	c.events.Record(model.Event{Kind: model.EventServiceFailed, Space: key.Space, App: key.App,
		Message: fmt.Sprintf("binding app %s to service %s: %v; tried again in %s", key.App, key.Service, cause, serviceRetry)})
}

// bindingsFor opens the bindings a release asks for, for its instances'
// start command; waiting says which is not ready yet ("" when all are).
func (c *Controller) bindingsFor(rel *model.Release) (bindings []model.Binding, waiting string, err error) {
	for _, svc := range rel.Run.Services {
		key := model.BindingKey{Space: rel.Space, App: rel.App, Service: svc.Name}
		si, ok := c.store.Service(model.ServiceKey{Space: rel.Space, Name: svc.Name})
		if !ok {
			return nil, fmt.Sprintf("service %s is not declared", svc.Name), nil
		}
		b, ok := c.store.Binding(key)
		if !ok || b.State != model.ServiceReady || b.InstanceGUID != si.GUID {
			state := string(si.State)
			if si.Decl.UserProvided {
				state = "user-provided"
			}
			if si.Decl.UserProvided || si.State == model.ServiceReady {
				state += "; binding it" // the service is there: its binding is not yet
			}
			why := fmt.Sprintf("waiting for service %s (%s)", svc.Name, state)
			if ok && b.State == model.ServiceFailed {
				why = fmt.Sprintf("binding service %s failed: %s", svc.Name, b.Message)
			} else if si.State == model.ServiceFailed {
				why = fmt.Sprintf("service %s failed: %s", svc.Name, si.Message)
			}
			return nil, why, nil
		}
		if c.keys() == nil {
			return nil, "", errors.New("no keys to open binding credentials")
		}
		sealed, gen, guid := b.Sealed, b.Generation, b.GUID
		if pinned, ok := rel.Run.BindingGenerations[svc.Name]; ok && pinned != b.Generation && b.Predecessor != nil && pinned == b.Predecessor.Generation {
			sealed, gen, guid = b.Predecessor.Sealed, b.Predecessor.Generation, b.Predecessor.GUID // an instance of the release being rolled away from
		}
		plain, err := c.keys().Open(sealed, bindingAAD(key, gen))
		if err != nil {
			return nil, "", fmt.Errorf("binding %s: %w", key, err)
		}
		var secret model.BindingSecret
		if err := json.Unmarshal(plain, &secret); err != nil {
			return nil, "", fmt.Errorf("binding %s: its sealed credentials are unreadable", key)
		}
		label, plan, provider := si.Decl.Service, si.Decl.Plan, si.Broker
		if si.Decl.UserProvided {
			label, plan, provider = "user-provided", "", ""
		}
		name := svc.Name
		if svc.BindingName != "" {
			name = svc.BindingName
		}
		tags := slices.Clone(si.Decl.Tags)
		if tags == nil {
			tags = []string{}
		}
		bindings = append(bindings, model.Binding{Label: label, Name: name, BindingName: svc.BindingName, BindingGUID: guid,
			InstanceName: svc.Name, InstanceGUID: si.GUID, Plan: plan, Provider: provider, Tags: tags,
			Credentials: secret.Credentials, SyslogDrainURL: secret.SyslogDrainURL, VolumeMounts: secret.VolumeMounts})
	}
	return bindings, "", nil
}

// bindingAAD binds a sealed binding to its key in Consul and its
// generation.
func bindingAAD(key model.BindingKey, generation int) string {
	aad := catalog.BindingKey(key.Space, key.App, key.Service)
	if generation > 0 {
		aad += "#" + strconv.Itoa(generation)
	}
	return aad
}

// newGUID is a random UUID (version 4).
func newGUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := fmt.Sprintf("%x", b[:])
	return strings.Join([]string{h[0:8], h[8:12], h[12:16], h[16:20], h[20:32]}, "-")
}

// withBindings puts the bindings of a planned app's release into its start
// command, or holds its instances (Release nil: those running are left as
// they are, none starts) while one is not ready, saying why.
func (c *Controller) withBindings(pa *plan.App) {
	key := model.AppKey{Space: pa.Space, Name: pa.Name}
	bindings, waiting, err := c.bindingsFor(pa.Release)
	if err != nil {
		waiting = err.Error()
		c.log.Warn("opening an app's bindings", "app", key, "err", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.waiting == nil {
		c.waiting = map[model.AppKey]string{}
	}
	if waiting != "" {
		c.waiting[key] = waiting
		pa.Release = nil
		return
	}
	delete(c.waiting, key)
	pa.Release.Run.Bindings = bindings
}

// waitingFor says which binding an app's instances wait for ("" none).
func (c *Controller) waitingFor(key model.AppKey) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.waiting[key]
}
