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
//	SubjectHeartbeat        CellHeartbeat, every few seconds
//	  sent by     agents/heartbeat.go, Agent.sendHeartbeat
//	  handled by  reconciler/controller.go, Controller.subscribe → Actual.Heartbeat (reconciler/actual.go)
//	SubjectInstanceChanged  InstanceChanged, when an instance changes state
//	  sent by     agents/instances.go, Agent.setState
//	  handled by  reconciler/controller.go, Controller.subscribe → Actual.Changed (reconciler/actual.go)
//	CellCommand(cell, VerbStart | VerbStop)  StartInstance | StopInstance → Reply (request/reply)
//	  sent by     reconciler/executor/executor.go, Executor.send
//	  handled by  agents/agent.go, Agent.subscribe → handleStart, handleStop (agents/commands.go)
//	SubjectStage            StageRequest → StageResult (request/reply, queue group QueueStagers)
//	  sent by     reconciler/staging.go, natsStaging.Stage (for the stager)
//	  handled by  agents/agent.go, Agent.subscribe → Agent.handleStage (agents/stage.go)
//	Logs(space, app)        model.LogLine
//	  sent by     agents/logs.go, Agent.shipLogs (instances); agents/stage.go, Agent.handleStage (staging)
//	  handled by  api/logs.go, NewLogHub (LogsWildcard), served to `driftless logs`
//	SubjectWake             WakeRequest → Reply (request/reply), when a request reaches a sleeping app
//	  sent by     router/wake (the router, holding the request)
//	  handled by  reconciler/sleep.go, Controller.subscribeSleep → Controller.Wake
//	SubjectActivity         RouterActivity, every few seconds while apps get requests
//	  sent by     router/wake (the router's request counts)
//	  handled by  reconciler/sleep.go, Controller.subscribeSleep → Controller.sawActivity
//	SubjectEvents           model.Event
//	  sent by     reconciler/events.go, Events.Record
//	  handled by  no subscriber in the tree: `driftless events` reads the
//	              controller's own ring through the API (GET /v1/events)
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
	// SubjectEvents carries the controller's decisions, each a model.Event.
	SubjectEvents = Prefix + ".events"
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

// CellCommand is the request/reply subject on which one cell accepts a verb.
func CellCommand(cellID, verb string) string {
	return fmt.Sprintf("%s.cells.%s.%s", Prefix, Token(cellID), verb)
}

// Logs is the subject carrying the model.LogLine messages of one app.
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
