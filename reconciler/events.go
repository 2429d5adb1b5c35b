package reconciler

import (
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/driftless/driftless/bus"
	"github.com/driftless/driftless/model"
)

// Events keeps the latest controller events in memory and publishes each on
// bus.EventSubject, where the journal keeps them; an event about an app
// also goes into the app's log as an API line.
type Events struct {
	mu   sync.Mutex
	ring []model.Event
	next int
	full bool
	nc   *nats.Conn
	log  *slog.Logger
}

// NewEvents keeps the last size events.
func NewEvents(size int, nc *nats.Conn, log *slog.Logger) *Events {
	return &Events{ring: make([]model.Event, size), nc: nc, log: log}
}

// Record stores and publishes an event. Messages must never hold secrets.
func (e *Events) Record(ev model.Event) {
	if ev.Time.IsZero() {
		ev.Time = time.Now().UTC()
	}
	e.mu.Lock()
	e.ring[e.next] = ev
	e.next = (e.next + 1) % len(e.ring)
	if e.next == 0 {
		e.full = true
	}
	e.mu.Unlock()
	e.log.Info("event", "kind", ev.Kind, "space", ev.Space, "app", ev.App, "index", ev.Index,
		"cell", ev.Cell, "release", ev.Release, "message", ev.Message)
	if e.nc == nil {
		return
	}
	if err := bus.Publish(e.nc, bus.EventSubject(ev.Space, ev.App), ev); err != nil {
		e.log.Warn("publishing event", "err", err)
	}
	if ev.App != "" && ev.Space != "" {
		line := model.LogLine{Time: ev.Time, Space: ev.Space, App: ev.App, Source: model.LogAPI,
			Index: ev.Index, Process: ev.Process, InstanceGUID: ev.Instance, Text: apiLine(ev)}
		if err := bus.Publish(e.nc, bus.LogSubject(line), line); err != nil {
			e.log.Warn("publishing an API log line", "err", err)
		}
	}
}

// apiLine is an event as a line of the app's log, as Cloud Foundry's
// "[API/0]" lines: what the controller did and why.
func apiLine(ev model.Event) string {
	who := ""
	if ev.Instance != "" {
		who = fmt.Sprintf(" instance %d", ev.Index)
		if ev.Process != "" {
			who = fmt.Sprintf(" %s instance %d", ev.Process, ev.Index)
		}
	}
	return fmt.Sprintf("%s%s: %s", ev.Kind, who, ev.Message)
}

// List returns the stored events, oldest first, optionally only those of
// one app ("" for all).
func (e *Events) List(space, app string) []model.Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	var all []model.Event
	if e.full {
		all = append(all, e.ring[e.next:]...)
	}
	all = append(all, e.ring[:e.next]...)
	if app == "" {
		return all
	}
	out := all[:0:0]
	for _, ev := range all {
		if ev.App == app && (space == "" || ev.Space == space) {
			out = append(out, ev)
		}
	}
	return out
}
