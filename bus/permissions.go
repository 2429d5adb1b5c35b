package bus

import (
	"fmt"
	"time"

	"github.com/driftless/driftless/model"
)

// InboxRoot starts every reply inbox; each identity's inbox prefix is
// under it (InboxPrefix).
const InboxRoot = "_INBOX"

// ResponseTTL is how long a client that received a request may answer it
// (allow_responses): longer than the longest staging.
const ResponseTTL = time.Hour

// Perms is what one identity may do on the bus: the subjects (with
// wildcards) it may publish and subscribe to, and whether it may answer
// requests it received (once each, within ResponseTTL) wherever their
// reply subject is. Everything else is denied. It is the contract the
// embedded server enforces and an external nats-server's users must
// mirror (docs/operations.md).
type Perms struct {
	Publish   []string
	Subscribe []string
	Responses bool
}

// InboxPrefix is where an identity's request replies arrive (clients set
// it with nats.CustomInboxPrefix): _INBOX.controller, _INBOX.router or
// _INBOX.cell.<cell>. Only that identity may subscribe under it, so that
// no other client reads its replies. Controllers that stand in for each
// other share theirs, as routers do.
func InboxPrefix(id Identity) string {
	if id.Role == RoleCell {
		return InboxRoot + ".cell." + Token(id.Cell)
	}
	return InboxRoot + "." + string(id.Role)
}

// Permissions is what id may publish and subscribe to: a cell only its
// own heartbeats, instance changes and commands, the staging queue and
// the log lines a cell writes (APP, STG, CELL, HEALTH); a router only wake
// requests, activity and its access lines (RTR); a controller what it
// sends and handles (the table in subjects.go), its API lines and
// JetStream's API (it makes the log and event streams and reads them).
// Each may subscribe to its own inbox.
func Permissions(id Identity) (Perms, error) {
	if err := id.Validate(); err != nil {
		return Perms{}, err
	}
	inbox := InboxPrefix(id) + ".>"
	switch id.Role {
	case RoleController:
		return Perms{
			Publish: []string{
				cellsPrefix + "*." + VerbStart, cellsPrefix + "*." + VerbStop,
				SubjectStage, EventsWildcard, logsFrom(model.LogAPI), JetStreamAPI,
			},
			Subscribe: []string{HeartbeatWildcard, InstancesWildcard, SubjectWake, SubjectActivity, inbox},
			Responses: true, // wake requests
		}, nil
	case RoleCell:
		return Perms{
			Publish: []string{HeartbeatSubject(id.Cell), InstancesSubject(id.Cell),
				logsFrom(model.LogApp), logsFrom(model.LogStaging), logsFrom(model.LogCell), logsFrom(model.LogHealth)},
			Subscribe: []string{CellCommand(id.Cell, VerbStart), CellCommand(id.Cell, VerbStop), SubjectStage, inbox},
			Responses: true, // cell commands, staging
		}, nil
	case RoleRouter:
		return Perms{
			Publish:   []string{SubjectWake, SubjectActivity, logsFrom(model.LogRouter)},
			Subscribe: []string{inbox},
		}, nil
	}
	return Perms{}, fmt.Errorf("no permissions for role %q", id.Role)
}
