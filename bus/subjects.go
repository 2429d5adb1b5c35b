// Package bus defines every NATS subject driftless uses and the JSON messages
// sent on them, so that a reader finds in one place who talks to whom.
//
// Senders and handlers, by subject:
//
//	Heartbeat        agents/heartbeat.go   → reconciler/actual.go
//	InstanceChanged  agents/instances.go   → reconciler/actual.go
//	CellCommand      reconciler/executor   → agents/commands.go   (request/reply)
//	Stage            reconciler/staging.go → agents/staging.go    (queue group, request/reply)
//	Logs             agents/logs.go        → api/logs.go (streamed to the CLI)
//	Events           reconciler/events.go  → api/events.go
package bus

import (
	"fmt"
	"strings"
)

// Version is the message schema version carried in every subject. A
// breaking change to a message type gets a new version and new subjects.
const Version = "v1"

// Prefix starts every subject driftless publishes or subscribes to.
const Prefix = "driftless." + Version

// Subjects with fixed names.
const (
	// SubjectHeartbeat carries a CellHeartbeat from every agent on a fixed
	// interval.
	SubjectHeartbeat = Prefix + ".cells.heartbeat"
	// SubjectInstanceChanged carries an InstanceChanged as soon as an
	// instance's state changes on a cell (started, healthy, crashed, stopped).
	SubjectInstanceChanged = Prefix + ".instances.changed"
	// SubjectStage is a request/reply subject served by a queue group of
	// agents: a StageRequest is answered with a StageResult.
	SubjectStage = Prefix + ".staging.requests"
	// SubjectEvents carries the controller's Event records.
	SubjectEvents = Prefix + ".events"
)

// QueueStagers is the queue group of agents that serve SubjectStage: each
// staging request goes to exactly one of them.
const QueueStagers = "driftless-stagers"

// Cell command verbs, the last token of CellCommand subjects.
const (
	// VerbStart asks a cell to start an instance (StartInstance → Reply).
	VerbStart = "start"
	// VerbStop asks a cell to stop and remove an instance (StopInstance → Reply).
	VerbStop = "stop"
)

// CellCommand is the request/reply subject on which one cell accepts a verb.
func CellCommand(cellID, verb string) string {
	return fmt.Sprintf("%s.cells.%s.%s", Prefix, Token(cellID), verb)
}

// Logs is the subject carrying LogLine messages of one app.
func Logs(space, app string) string {
	return fmt.Sprintf("%s.logs.%s.%s", Prefix, Token(space), Token(app))
}

// LogsWildcard matches the log subjects of every app.
const LogsWildcard = Prefix + ".logs.>"

// Token makes s safe as a single NATS subject token: the separators '.', '*',
// '>' and whitespace are replaced by '_'. App, space and cell names are
// validated elsewhere to avoid these characters; Token is the last guard.
func Token(s string) string {
	if s == "" {
		return "_"
	}
	return strings.Map(func(r rune) rune {
		switch r {
		case '.', '*', '>', ' ', '\t', '\r', '\n':
			return '_'
		}
		return r
	}, s)
}
