package model

import "time"

// EventKind classifies an event.
type EventKind string

// Event kinds the controller records: one per decision, each with its
// reason in the event's message.
const (
	EventCommitApplied EventKind = "commit-applied"
	EventCommitRefused EventKind = "commit-refused"
	// EventCommitDenied: a commit was refused by the policies.
	EventCommitDenied EventKind = "commit-denied"
	// EventStoreFailed: desired state could not be written; the commit is
	// retried.
	EventStoreFailed EventKind = "store-failed"
	// EventPolicyApplied and EventPolicyRefused: a policy commit took
	// effect, or was refused (the previous policies stay).
	EventPolicyApplied EventKind = "policy-applied"
	EventPolicyRefused EventKind = "policy-refused"
	EventStaging       EventKind = "staging"
	EventStaged        EventKind = "staged"
	EventStagingFailed EventKind = "staging-failed"
	// EventPlaced: a new instance was given to a cell (a missing index, a
	// scale-up or a rollout step).
	EventPlaced EventKind = "placed"
	// EventEvacuated: an instance of a lost cell was placed elsewhere.
	EventEvacuated EventKind = "evacuated"
	// EventRestarted: a crashed instance was placed again.
	EventRestarted EventKind = "restarted"
	// EventStarted: an instance passed its health check and is routable.
	EventStarted EventKind = "started"
	EventStopped EventKind = "stopped"
	// EventNotReady: a running instance fails its readiness check and is
	// out of the routers (it is not restarted).
	EventNotReady EventKind = "not-ready"
	// EventRoutesChanged: a commit's new release adds or drops routes.
	EventRoutesChanged EventKind = "routes-changed"
	EventCrashed       EventKind = "crashed"
	// EventBackoff: a crashed index waits before its next restart.
	EventBackoff EventKind = "backoff"
	// EventRolledBack: a release whose instances never became healthy was
	// abandoned for the release that still serves.
	EventRolledBack   EventKind = "rolled-back"
	EventCellLost     EventKind = "cell-lost"
	EventCellBack     EventKind = "cell-returned"
	EventUnplaced     EventKind = "unplaced"
	EventActionFailed EventKind = "action-failed"
	EventAppRemoved   EventKind = "app-removed"
	EventLeader       EventKind = "leader"
	// EventGarbage: blobs of releases no longer kept were deleted.
	EventGarbage EventKind = "garbage-collected"
	// EventAuthFailed: the API refused a request without a valid token
	// (the message names the client's address and the token's id, never
	// its secret).
	EventAuthFailed EventKind = "auth-failed"
	// EventTokenCreated and EventTokenRevoked: an API token was made or
	// revoked (by whom is in the message).
	EventTokenCreated EventKind = "token-created"
	EventTokenRevoked EventKind = "token-revoked"
	// EventPreviewDeployed: a pull request's commit was applied as its
	// preview (or refused, which the commit's own events say).
	EventPreviewDeployed EventKind = "preview-deployed"
	// EventPreviewRemoved: a closed or merged pull request's preview was
	// torn down, or one idle for longer than its TTL.
	EventPreviewRemoved EventKind = "preview-removed"
	// EventAppSleeping: an idle preview's app was scaled to zero; the
	// routers hold its next request and wake it.
	EventAppSleeping EventKind = "app-sleeping"
	// EventAppWoken: a sleeping app was woken by a request or a commit.
	EventAppWoken EventKind = "app-woken"
	// EventServiceProvisioned, EventServiceUpdated, EventServiceDeprovisioned:
	// a broker did what a services.yml asks; EventServiceFailed: it refused
	// or failed (the message says why).
	EventServiceProvisioned   EventKind = "service-provisioned"
	EventServiceUpdated       EventKind = "service-updated"
	EventServiceDeprovisioned EventKind = "service-deprovisioned"
	EventServiceFailed        EventKind = "service-failed"
	// EventServiceBound, EventServiceUnbound: an app got, or lost, a
	// binding to a service instance.
	EventServiceBound   EventKind = "service-bound"
	EventServiceUnbound EventKind = "service-unbound"
	// EventStatusFailed: a commit status could not be posted to the forge
	// (after its retries).
	EventStatusFailed EventKind = "status-failed"
)

// Event is one decision of the controller, with its reason.
type Event struct {
	Time     time.Time `json:"time"`
	Kind     EventKind `json:"kind"`
	Space    string    `json:"space,omitempty"`
	App      string    `json:"app,omitempty"`
	Instance string    `json:"instance,omitempty"`
	Index    int       `json:"index,omitempty"`
	// Process is the instance's process type, "" for web.
	Process string `json:"process,omitempty"`
	Cell    string `json:"cell,omitempty"`
	Release string `json:"release,omitempty"`
	Message string `json:"message"`
	// Seq is the event's place in the kept events, set when it is read
	// back: a reader resumes after it.
	Seq uint64 `json:"seq,omitempty"`
}

// LogSource says what printed a log line, as Cloud Foundry names it.
type LogSource string

// Log sources.
const (
	LogApp     LogSource = "APP"
	LogStaging LogSource = "STG"
	LogCell    LogSource = "CELL"
	// LogRouter lines are the router's access lines, one per request.
	LogRouter LogSource = "RTR"
	// LogHealth lines are health check results as the cell sees them.
	LogHealth LogSource = "HEALTH"
	// LogAPI lines are the controller's decisions about the app.
	LogAPI LogSource = "API"
)

// LogSources are the sources a reader may filter on.
var LogSources = []LogSource{LogApp, LogStaging, LogRouter, LogHealth, LogCell, LogAPI}

// PerInstance reports whether lines of the source belong to one instance
// (their Index means something).
func (s LogSource) PerInstance() bool {
	switch s {
	case LogApp, LogCell, LogRouter, LogHealth:
		return true
	}
	return false
}

// LogLine is one line an app instance or its staging printed.
type LogLine struct {
	Time   time.Time `json:"time"`
	Space  string    `json:"space"`
	App    string    `json:"app"`
	Source LogSource `json:"source"`
	// Index is the instance index for LogApp lines.
	Index        int    `json:"index"`
	InstanceGUID string `json:"instance_guid,omitempty"`
	Stream       string `json:"stream,omitempty"`
	Text         string `json:"text"`
	// Process is the instance's process type, "" for web.
	Process string `json:"process,omitempty"`
	// Seq is the line's place in its space's kept log, set when it is
	// read back: a reader resumes after it.
	Seq uint64 `json:"seq,omitempty"`
}
