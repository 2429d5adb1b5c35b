package reconciler

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/driftless/driftless/bus"
	"github.com/driftless/driftless/model"
)

// Idle previews sleep: an app of a preview that got no request through the
// routers (bus.RouterActivity) for Config.PreviewIdle, and no new commit or
// event of its pull request, is scaled to zero — its sleeping record
// (store.Sleep, catalog.SleepingKey) makes the convergence ask for no
// instance and tells the routers to hold its next request and ask for it
// to wake (bus.SubjectWake, handled by Wake). Waking deletes the record;
// the convergence starts its instances again.

// DefaultPreviewIdle is how long a preview's app may go without a request
// before it sleeps.
const DefaultPreviewIdle = 30 * time.Minute

// subscribeSleep answers the routers' wake requests and reads their
// activity.
func (c *Controller) subscribeSleep() ([]*nats.Subscription, error) {
	wake, err := c.cfg.NATS.Subscribe(bus.SubjectWake, func(m *nats.Msg) {
		var req bus.WakeRequest
		reply := bus.Reply{OK: true}
		if err := bus.Decode(m, &req); err != nil {
			reply = bus.Reply{Error: err.Error()}
		} else if err := c.Wake(context.Background(), model.AppKey{Space: req.Space, Name: req.App}, "a request through router "+req.Router); err != nil {
			reply = bus.Reply{Error: err.Error()}
		}
		if err := bus.Respond(m, reply); err != nil {
			c.log.Warn("answering a wake request", "err", err)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("subscribing to wake requests: %w", err)
	}
	act, err := c.cfg.NATS.Subscribe(bus.SubjectActivity, func(m *nats.Msg) {
		var a bus.RouterActivity
		if err := bus.Decode(m, &a); err != nil {
			c.log.Warn("bad router activity", "err", err)
			return
		}
		c.sawActivity(a, time.Now())
	})
	if err != nil {
		_ = wake.Unsubscribe()
		return nil, fmt.Errorf("subscribing to router activity: %w", err)
	}
	return []*nats.Subscription{wake, act}, nil
}

// sawActivity records when the apps of a router's message got requests.
func (c *Controller) sawActivity(a bus.RouterActivity, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.activity == nil {
		c.activity = map[model.AppKey]time.Time{}
	}
	for _, app := range a.Apps {
		if app.Requests > 0 {
			c.activity[model.AppKey{Space: app.Space, Name: app.App}] = now
		}
	}
}

// Wake wakes a sleeping app (nothing happens if it is awake): its sleeping
// record is deleted and the convergence starts its instances. by says why,
// for the event.
func (c *Controller) Wake(ctx context.Context, key model.AppKey, by string) error {
	sl, asleep := c.store.Sleeping(key)
	if !asleep {
		return nil
	}
	if err := c.store.Wake(ctx, key); err != nil {
		return err
	}
	now := time.Now()
	c.mu.Lock()
	if c.activity == nil {
		c.activity = map[model.AppKey]time.Time{}
	}
	c.activity[key] = now
	c.mu.Unlock()
	c.events.Record(model.Event{Kind: model.EventAppWoken, Space: key.Space, App: key.Name,
		Message: fmt.Sprintf("app woken by %s after sleeping %s", by, now.Sub(sl.Since).Round(time.Second))})
	c.Kick()
	return nil
}

// wakeSource wakes every sleeping app of source name.
func (c *Controller) wakeSource(ctx context.Context, name, by string) {
	for _, a := range c.store.Apps() {
		if a.Source != name {
			continue
		}
		if err := c.Wake(ctx, a.Key(), by); err != nil {
			c.log.Warn("waking an app", "app", a.Key(), "err", err)
		}
	}
}

// sleepIdle puts to sleep the apps of previews idle for Config.PreviewIdle:
// no request seen through the routers, no new commit or event of the pull
// request, and not since this term started (what a previous leader saw is
// not known, so every app gets a full period).
func (c *Controller) sleepIdle(ctx context.Context, now time.Time) {
	idle := c.cfg.PreviewIdle
	if idle < 0 {
		return
	}
	c.previews.mu.Lock()
	quiet := map[string]time.Time{} // preview source → its last activity
	c.mu.Lock()
	for name, se := range c.previews.entries {
		last := c.started
		if p := se.status.Preview; p != nil && p.LastActivity.After(last) {
			last = p.LastActivity
		}
		quiet[name] = last
	}
	c.mu.Unlock()
	c.previews.mu.Unlock()
	for _, a := range c.store.Apps() {
		since, ok := quiet[a.Source]
		if !ok || a.Instances == 0 || len(a.Routes) == 0 {
			continue // not a preview's, scaled to zero, or no route to wake it by
		}
		if _, asleep := c.store.Sleeping(a.Key()); asleep {
			continue
		}
		c.mu.Lock()
		if t := c.activity[a.Key()]; t.After(since) {
			since = t
		}
		c.mu.Unlock()
		if now.Sub(since) < idle {
			continue
		}
		timeout := model.DefaultStartTimeout * time.Second
		if rel := c.store.Release(a.Key(), a.CurrentID); rel != nil {
			timeout = rel.Run.HealthCheck.StartTimeout()
		}
		sl := model.Sleeping{Space: a.Space, App: a.Name, Routes: a.Routes, WakeTimeout: timeout, Since: now.UTC()}
		if err := c.store.Sleep(ctx, sl); err != nil {
			c.log.Warn("putting an idle app to sleep", "app", a.Key(), "err", err)
			continue
		}
		c.events.Record(model.Event{Kind: model.EventAppSleeping, Space: a.Space, App: a.Name,
			Message: fmt.Sprintf("preview app asleep: no request for %s; its next request wakes it", now.Sub(since).Round(time.Second))})
		c.Kick()
	}
}

// previewLoop removes expired previews and puts idle ones to sleep.
func (c *Controller) previewLoop(ctx context.Context) {
	every := c.cfg.PreviewCheckInterval
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			c.expirePreviews(ctx, now)
			c.sleepIdle(ctx, now)
		}
	}
}
