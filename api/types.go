// Package api is the controller's REST API (JSON over HTTP, 127.0.0.1:7070
// by default) and the client the CLI uses. The types below are the JSON
// contract of `driftless … --json`: fields are only ever added.
package api

import (
	"time"

	"github.com/driftless/driftless/model"
)

// App is one app as `driftless apps` shows it.
type App struct {
	Name  string `json:"name"`
	Space string `json:"space"`
	// Desired is the instance count git asks for; Running how many
	// instances of the current release pass their health check.
	Desired int `json:"desired"`
	Running int `json:"running"`
	// Release is the git commit of the release the instances run.
	Release string `json:"release"`
	// ReleaseID is that release's id.
	ReleaseID string `json:"release_id"`
	// Target is the release id git asks for when it differs from
	// ReleaseID (staging, rolling out, or failed).
	Target string `json:"target_release_id,omitempty"`
	// Commit is the last applied commit that declared the app.
	Commit string   `json:"commit"`
	Source string   `json:"source"`
	State  string   `json:"state"`
	Routes []string `json:"routes"`
	// Problems explains a state that needs attention (staging failed,
	// instances that fit nowhere…).
	Problems []string `json:"problems,omitempty"`
	// Processes are the counts per process type, web first, for an app
	// with types other than web (Desired and Running are web's).
	Processes []Process `json:"processes,omitempty"`
}

// Process is one process type of an app: how many instances git asks
// for and how many of the current release pass their health check.
type Process struct {
	Type    string `json:"type"`
	Desired int    `json:"desired"`
	Running int    `json:"running"`
}

// App states, from the user's point of view.
const (
	AppStaging       = "staging"
	AppStagingFailed = "staging-failed"
	AppStarting      = "starting"
	AppRunning       = "running"
	AppRollingOut    = "rolling-out"
	AppDegraded      = "degraded"
	// AppSleeping is an idle preview's app scaled to zero: its next
	// request wakes it.
	AppSleeping = "sleeping"
)

// AppEnv is GET /v1/apps/{name}/env (`driftless env APP`): the
// environment the app's manifest declares. Service credentials are never
// part of it.
type AppEnv struct {
	Space string            `json:"space"`
	App   string            `json:"app"`
	Env   map[string]string `json:"env"`
}

// AppDetail is `driftless app NAME`: the app, its instances and releases.
type AppDetail struct {
	App
	File      string     `json:"file"`
	Line      int        `json:"line"`
	Instances []Instance `json:"instances"`
	Releases  []Release  `json:"releases"`
	Unplaced  []Unplaced `json:"unplaced,omitempty"`
	// Crashes is the crash history of each index that crashed recently.
	Crashes []Crash `json:"crashes,omitempty"`
}

// Crash is the crash history of one instance index; its RestartAt is set
// only while the index waits (crash backoff).
type Crash struct {
	// Process is the index's process type, "" for web.
	Process string `json:"process,omitempty"`
	Index   int    `json:"index"`
	model.CrashRecord
}

// Instance is one running (or crashed) instance of an app: what its cell
// reports (model.InstanceStatus: a cell on which it is LOST no longer
// reports) and the address it answers at.
type Instance struct {
	model.InstanceStatus
	Address string `json:"address,omitempty"`
	// Ready is set for a RUNNING instance: false while it fails its
	// readiness check (alive, but out of the routers).
	Ready *bool `json:"ready,omitempty"`
}

// Release is one release of an app.
type Release struct {
	ID         string             `json:"id"`
	Commit     string             `json:"commit"`
	State      model.ReleaseState `json:"state"`
	Droplet    string             `json:"droplet,omitempty"`
	Buildpack  string             `json:"buildpack,omitempty"`
	Error      string             `json:"error,omitempty"`
	StagingLog []string           `json:"staging_log,omitempty"`
	CreatedAt  time.Time          `json:"created_at"`
	Current    bool               `json:"current"`
	// Image is the docker image the release runs (manifest docker:), ""
	// for a buildpack release; Droplet is then the image's digest.
	Image string `json:"image,omitempty"`
}

// Unplaced is an instance that fits on no cell.
type Unplaced struct {
	// Process is the instance's process type, "" for web.
	Process string `json:"process,omitempty"`
	Index   int    `json:"index"`
	Reason  string `json:"reason"`
}

// Status is `driftless status`.
type Status struct {
	Controller Controller           `json:"controller"`
	Policies   model.PolicyStatus   `json:"policies"`
	Sources    []model.SourceStatus `json:"sources"`
	Cells      []model.CellStatus   `json:"cells"`
	// Problems lists the apps that need attention: failed stagings,
	// rolled-back releases, crash loops, instances that fit nowhere.
	Problems []AppProblem `json:"problems"`
}

// Controller says which controller answered and which one leads.
type Controller struct {
	ID string `json:"id"`
	// Role is "leader" or "standby".
	Role   string `json:"role"`
	Leader string `json:"leader,omitempty"`
}

// AppProblem is a problem of one app.
type AppProblem struct {
	Space   string `json:"space"`
	App     string `json:"app"`
	Message string `json:"message"`
}

// SyncResult answers POST /v1/sync.
type SyncResult struct {
	Sources []model.SourceStatus `json:"sources"`
	// Converged is set with ?wait when every app of the synced sources
	// runs its target release at the desired count.
	Converged bool   `json:"converged"`
	Message   string `json:"message,omitempty"`
}

// Preview is one pull-request preview as `driftless previews` shows it.
type Preview struct {
	// Name is the preview's source, S#pr-N; Source is S.
	Name   string `json:"name"`
	Source string `json:"source"`
	Number int    `json:"number"`
	Branch string `json:"branch"`
	Author string `json:"author,omitempty"`
	Space  string `json:"space"`
	// Head is the pull request's head commit last seen, Applied the last
	// one applied.
	Head    string `json:"head"`
	Applied string `json:"applied,omitempty"`
	// URLs are where the preview's apps answer (through the router).
	URLs []string `json:"urls"`
	// State is PreviewStarting, PreviewServing, PreviewSleeping,
	// PreviewRefused or PreviewFailed; Reason says why when it is not serving.
	State  string `json:"state"`
	Reason string `json:"reason,omitempty"`
	// Since is when its head commit was seen; Expires when it is removed
	// unless its pull request has news before (the preview TTL).
	Since   time.Time `json:"since,omitzero"`
	Expires time.Time `json:"expires,omitzero"`
}

// Preview states.
const (
	PreviewStarting = "starting"
	PreviewServing  = "serving"
	PreviewSleeping = "sleeping"
	PreviewRefused  = "refused"
	PreviewFailed   = "failed"
)

// Error is the body of every non-2xx answer.
type Error struct {
	Error string `json:"error"`
}
