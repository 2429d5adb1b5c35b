package reconciler

import (
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/driftless/driftless/bus"
)

// Event kinds the controller records: one per decision, each with its
// reason in the event's message.
const (
	EventCommitApplied = "commit-applied"
	EventCommitRefused = "commit-refused"
	// EventCommitDenied: a commit was refused by the policies.
	EventCommitDenied = "commit-denied"
	// EventPolicyApplied and EventPolicyRefused: a policy commit took
	// effect, or was refused (the previous policies stay).
	EventPolicyApplied = "policy-applied"
	EventPolicyRefused = "policy-refused"
	EventStaging       = "staging"
	EventStaged        = "staged"
	EventStagingFailed = "staging-failed"
	// EventPlaced: a new instance was given to a cell (a missing index, a
	// scale-up or a rollout step).
	EventPlaced = "placed"
	// EventEvacuated: an instance of a lost cell was placed elsewhere.
	EventEvacuated = "evacuated"
	// EventRestarted: a crashed instance was placed again.
	EventRestarted = "restarted"
	// EventStarted: an instance passed its health check and is routable.
	EventStarted = "started"
	EventStopped = "stopped"
	EventCrashed = "crashed"
	// EventBackoff: a crashed index waits before its next restart.
	EventBackoff = "backoff"
	// EventRolledBack: a release whose instances never became healthy was
	// abandoned for the release that still serves.
	EventRolledBack   = "rolled-back"
	EventCellLost     = "cell-lost"
	EventCellBack     = "cell-returned"
	EventUnplaced     = "unplaced"
	EventActionFailed = "action-failed"
	EventAppRemoved   = "app-removed"
	EventLeader       = "leader"
	// EventGarbage: blobs of releases no longer kept were deleted.
	EventGarbage = "garbage-collected"
)

// Events keeps the latest controller events in memory and publishes each on
// bus.SubjectEvents.
type Events struct {
	mu   sync.Mutex
	ring []bus.Event
	next int
	full bool
	nc   *nats.Conn
	log  *slog.Logger
}

// NewEvents keeps the last size events.
func NewEvents(size int, nc *nats.Conn, log *slog.Logger) *Events {
	return &Events{ring: make([]bus.Event, size), nc: nc, log: log}
}

// Record stores and publishes an event. Messages must never hold secrets.
func (e *Events) Record(ev bus.Event) {
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
	if e.nc != nil {
		if err := bus.Publish(e.nc, bus.SubjectEvents, ev); err != nil {
			e.log.Warn("publishing event", "err", err)
		}
	}
}

// List returns the stored events, oldest first, optionally only those of
// one app ("" for all).
func (e *Events) List(space, app string) []bus.Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	var all []bus.Event
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
