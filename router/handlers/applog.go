package handlers

import (
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/driftless/driftless/bus"
	"github.com/driftless/driftless/model"
)

// AppLogger takes the access line of a request routed to an app.
type AppLogger interface {
	AppLine(info *Info, start time.Time, line string)
}

// NATSAppLog publishes each request's line into the app's log as an RTR
// line, as Cloud Foundry's router does: `driftless logs APP --source RTR`
// shows it beside the app's own lines. Publishing only buffers: a slow or
// absent NATS never holds a request (lines are dropped past the client's
// reconnect buffer).
type NATSAppLog struct {
	NC  *nats.Conn
	Log *slog.Logger
}

// AppLine publishes line on the app's log subject.
func (a NATSAppLog) AppLine(info *Info, start time.Time, line string) {
	l := model.LogLine{Time: start.UTC(), Space: info.Space, App: info.App, Source: model.LogRouter,
		Index: info.Index, Process: info.Process, InstanceGUID: info.Instance, Text: line}
	if err := bus.Publish(a.NC, bus.LogSubject(l), l); err != nil && a.Log != nil {
		a.Log.Debug("publishing a router line", "app", info.App, "err", err)
	}
}
