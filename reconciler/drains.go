package reconciler

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/driftless/driftless/drains"
	"github.com/driftless/driftless/internal/ticks"
	"github.com/driftless/driftless/model"
)

// Drains forwards apps' lines to syslog drains (drains.Manager): the
// controller decides which (app, drain) pairs there are, the drains
// package forwards.
type Drains interface {
	// Sync makes the forwarded pairs targets: new ones start, gone ones
	// stop.
	Sync(targets []drains.Target)
}

// drainInterval is how often the leader looks for drains that appeared
// or went away.
const drainInterval = 2 * time.Second

// drainLoop keeps the drains forwarding while this controller leads: an
// app bound (by a ready binding its releases ask for) to a service whose
// binding has a syslog_drain_url gets its lines forwarded there. When
// the term ends (leadership lost, or the controller stops) every
// forwarder stops: the next leader starts its own.
func (c *Controller) drainLoop(ctx context.Context) {
	if c.cfg.Drains == nil {
		return
	}
	defer c.cfg.Drains.Sync(nil)
	update := func() { c.cfg.Drains.Sync(c.drainTargets()) }
	update()
	ticks.Every(ctx, drainInterval, update)
}

// drainTargets are the (app, drain URL) pairs of the ready bindings the
// apps' releases ask for: a user-provided service's syslog_drain_url as
// services.yml declares it now, a broker binding's as the broker gave it
// (sealed with the binding).
func (c *Controller) drainTargets() []drains.Target {
	wanted := c.wantedBindings()
	var out []drains.Target
	for _, b := range c.store.Bindings() {
		if _, ok := wanted[b.Key()]; !ok || b.State != model.ServiceReady {
			continue
		}
		si, ok := c.store.Service(model.ServiceKey{Space: b.Space, Name: b.Service})
		if !ok || si.Deleted {
			continue
		}
		url := si.Decl.SyslogDrainURL
		if !si.Decl.UserProvided {
			url = c.brokerDrainURL(b)
		}
		if strings.TrimSpace(url) != "" {
			out = append(out, drains.Target{Space: b.Space, App: b.App, Service: b.Service, URL: url})
		}
	}
	slices.SortFunc(out, func(a, b drains.Target) int {
		return strings.Compare(a.Space+"/"+a.App+"/"+a.Service, b.Space+"/"+b.App+"/"+b.Service)
	})
	return out
}

// brokerDrainURL is the syslog_drain_url a broker gave a binding ("" for
// none, or when its seal does not open: bindingsFor says why).
func (c *Controller) brokerDrainURL(b model.ServiceBinding) string {
	if c.keys() == nil || b.Sealed == "" {
		return ""
	}
	plain, err := c.keys().Open(b.Sealed, bindingAAD(b.Key(), b.Generation))
	if err != nil {
		return ""
	}
	var secret model.BindingSecret
	if json.Unmarshal(plain, &secret) != nil {
		return ""
	}
	return secret.SyslogDrainURL
}
