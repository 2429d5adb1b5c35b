// Package bus is driftless's NATS contract and nothing more: the subjects
// (this file), the message envelopes sent on them (messages.go; the nouns
// inside them are model's), their JSON encoding (conn.go: Publish, Request,
// Respond, Decode, each naming the subject in its errors) and the embedded
// server (embedded.go). Every message is JSON; these types and their JSON
// field names are the wire contract between processes of different
// versions.
//
// Who sends and who handles each subject (grep the Go name to find the
// line; nothing else in the tree uses NATS):
//
//	HeartbeatSubject(cell)  CellHeartbeat, every few seconds
//	  sent by     agents/heartbeat.go, Agent.sendHeartbeat (role cell, its own cell only)
//	  handled by  reconciler/controller.go, Controller.subscribe (HeartbeatWildcard) → Actual.Heartbeat
//	              (reconciler/actual.go); a body whose cell_id is not the subject's cell is dropped
//	InstancesSubject(cell)  InstanceChanged, when an instance changes state
//	  sent by     agents/instances.go, Agent.setState (role cell, its own cell only)
//	  handled by  reconciler/controller.go, Controller.subscribe (InstancesWildcard) → Actual.Changed
//	              (reconciler/actual.go); a body whose cell_id is not the subject's cell is dropped
//	CellCommand(cell, VerbStart | VerbStop)  StartInstance | StopInstance → Reply (request/reply)
//	  sent by     reconciler/executor/executor.go, Executor.send (role controller)
//	  handled by  agents/agent.go, Agent.subscribe → handleStart, handleStop (agents/commands.go)
//	              (role cell, its own cell only)
//	SubjectStage            StageRequest → StageResult (request/reply, queue group QueueStagers)
//	  sent by     reconciler/staging.go, natsStaging.Stage (role controller, for the stager)
//	  handled by  agents/agent.go, Agent.subscribe → Agent.handleStage (agents/stage.go) (role cell)
//	LogSubject(line)        model.LogLine, kept by JetStream in the space's LogStream
//	  sent by     agents/logs.go, Agent.shipLogs (APP), Agent.publishCellLine (CELL, HEALTH);
//	              agents/stage.go, Agent.handleStage (STG) (role cell); router/handlers/applog.go,
//	              AppLog (RTR) (role router); reconciler/events.go, Events.Record (API) (role controller)
//	  handled by  journal/read.go, Journal.Logs (an ordered JetStream consumer per reader), served to
//	              `driftless logs` and the dashboard by api/logs.go (role controller)
//	SubjectWake             WakeRequest → Reply (request/reply), when a request reaches a sleeping app
//	  sent by     router/wake (the router, holding the request) (role router)
//	  handled by  reconciler/sleep.go, Controller.subscribeSleep → Controller.Wake (role controller)
//	SubjectActivity         RouterActivity, every few seconds while apps get requests
//	  sent by     router/wake (the router's request counts) (role router)
//	  handled by  reconciler/sleep.go, Controller.subscribeSleep → Controller.sawActivity (role controller)
//	EventSubject(space, app) model.Event, kept by JetStream in EventStream
//	  sent by     reconciler/events.go, Events.Record (role controller)
//	  handled by  journal/read.go, Journal.Events, served to `driftless events` and the
//	              dashboard by api/events.go (role controller)
//
// The hollow cells of benchmarks and scale tests (sim/cell.go) send and
// handle the cell's subjects as agents do: HeartbeatSubject,
// InstancesSubject, CellCommand and SubjectStage.
//
// Replies to requests go to the requester's inbox, under a prefix of its
// own (InboxPrefix: _INBOX.controller, _INBOX.router, _INBOX.cell.<cell>);
// only the requester may subscribe there and a responder may publish there
// only in answer to a request it received. Which role may publish and
// subscribe to what is Permissions (permissions.go); every client
// authenticates (auth.go), and the embedded server enforces them.
package bus

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/driftless/driftless/model"
)

// Version is the message schema version carried in every subject. A
// breaking change to a message type gets a new version and new subjects.
const Version = "v1"

// Prefix starts every subject driftless publishes or subscribes to.
const Prefix = "driftless." + Version

// Subjects with fixed names.
const (
	// SubjectStage is a request/reply subject served by a queue group of
	// agents: a StageRequest is answered with a StageResult.
	SubjectStage = Prefix + ".staging.requests"
	// SubjectWake is a request/reply subject on which the leading controller
	// wakes a sleeping app (WakeRequest → Reply).
	SubjectWake = Prefix + ".apps.wake"
	// SubjectActivity carries each router's RouterActivity: the apps that
	// got requests lately, so that the controller knows which are idle.
	SubjectActivity = Prefix + ".routers.activity"
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

// Per-cell subjects: driftless.v1.cells.<cell>.<last token>.
const (
	// cellsPrefix starts the subjects of one cell.
	cellsPrefix = Prefix + ".cells."
	// heartbeatToken ends a cell's HeartbeatSubject.
	heartbeatToken = "heartbeat"
	// instancesToken ends a cell's InstancesSubject.
	instancesToken = "instances"
	// HeartbeatWildcard matches the HeartbeatSubject of every cell.
	HeartbeatWildcard = cellsPrefix + "*." + heartbeatToken
	// InstancesWildcard matches the InstancesSubject of every cell.
	InstancesWildcard = cellsPrefix + "*." + instancesToken
)

// HeartbeatSubject is the subject on which one cell's agent publishes its
// CellHeartbeat on a fixed interval.
func HeartbeatSubject(cellID string) string {
	return cellsPrefix + Token(cellID) + "." + heartbeatToken
}

// InstancesSubject is the subject on which one cell's agent publishes an
// InstanceChanged as soon as an instance's state changes there (started,
// healthy, crashed, stopped).
func InstancesSubject(cellID string) string {
	return cellsPrefix + Token(cellID) + "." + instancesToken
}

// SubjectCell is the cell token of a per-cell subject (HeartbeatSubject,
// InstancesSubject, CellCommand), or "" for any other subject. A handler
// compares it with the cell id in the body (as Token(id)): only the cell
// itself may publish on its subjects.
func SubjectCell(subject string) string {
	rest, ok := strings.CutPrefix(subject, cellsPrefix)
	if !ok {
		return ""
	}
	cell, last, ok := strings.Cut(rest, ".")
	if !ok || strings.Contains(last, ".") {
		return ""
	}
	return cell
}

// CellCommand is the request/reply subject on which one cell accepts a verb.
func CellCommand(cellID, verb string) string {
	return fmt.Sprintf("%s.cells.%s.%s", Prefix, Token(cellID), verb)
}

// logsPrefix starts every log subject:
// driftless.v1.logs.<space>.<app>.<source>.<instance>.
const logsPrefix = Prefix + ".logs."

// LogsWildcard matches the log subjects of every app.
const LogsWildcard = logsPrefix + ">"

// LogSubject is the subject of one log line:
// driftless.v1.logs.<space>.<app>.<source>.<instance>, where source is
// the first part of the line's source (APP for "APP/SIDECAR/x") and
// instance its index, or "_" for sources without one (STG, API). Readers
// filter on those tokens (LogFilter); JetStream keeps the lines of a
// space in its LogStream.
func LogSubject(l model.LogLine) string {
	src, _, _ := strings.Cut(string(l.Source), "/")
	inst := "_"
	if model.LogSource(src).PerInstance() {
		inst = strconv.Itoa(l.Index)
	}
	return logsPrefix + Token(l.Space) + "." + Token(l.App) + "." + Token(src) + "." + inst
}

// LogFilter is the subject matching an app's lines from one source
// ("" for any) of one instance index (nil for any).
func LogFilter(space, app string, source model.LogSource, index *int) string {
	src, inst := "*", "*"
	if source != "" {
		src = Token(string(source))
	}
	if index != nil {
		inst = strconv.Itoa(*index)
	}
	return logsPrefix + Token(space) + "." + Token(app) + "." + src + "." + inst
}

// logsFrom matches the lines of one source of every app, what one role
// may publish (Permissions).
func logsFrom(source model.LogSource) string {
	return logsPrefix + "*.*." + string(source) + ".*"
}

// LogStream is the name of the JetStream stream keeping a space's log
// lines (LogStreamSubjects). Stream names cannot hold '.', '*', '>',
// '/', a backslash or whitespace; those become '_'.
func LogStream(space string) string { return "DRIFTLESS_LOGS_" + streamToken(space) }

// LogStreamSubjects is the subject filter of a space's LogStream.
func LogStreamSubjects(space string) string { return logsPrefix + Token(space) + ".>" }

// eventsPrefix starts every event subject: driftless.v1.events.<space>.<app>.
const eventsPrefix = Prefix + ".events."

// EventsWildcard matches every event subject, the subjects of EventStream.
const EventsWildcard = eventsPrefix + ">"

// EventStream is the JetStream stream keeping the controller's events.
const EventStream = "DRIFTLESS_EVENTS"

// EventSubject is the subject of an event about one app ("_" for an
// event of no space or app, such as a token's creation).
func EventSubject(space, app string) string {
	return eventsPrefix + Token(space) + "." + Token(app)
}

// EventFilter matches the events of one space and app ("" for any).
func EventFilter(space, app string) string {
	s, a := "*", "*"
	if space != "" {
		s = Token(space)
	}
	if app != "" {
		a = Token(app)
	}
	return eventsPrefix + s + "." + a
}

// JetStreamAPI is the subject space of JetStream's API, which only
// controllers use (they make the streams and read them).
const JetStreamAPI = "$JS.API.>"

func streamToken(s string) string {
	if s == "" {
		return "_"
	}
	return strings.Map(func(r rune) rune {
		switch r {
		case '.', '*', '>', '/', '\\', ' ', '\t', '\r', '\n':
			return '_'
		}
		return r
	}, s)
}

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
