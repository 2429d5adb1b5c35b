// Package plan decides how to make the actual state of the platform match
// the desired state. It is pure: Compute takes a snapshot of both and returns
// the actions to take, without talking to anything. The controller applies
// the plan (reconciler/executor) and calls Compute again on the next change
// or tick — the way Nomad's scheduler returns a plan that the server applies,
// and a controller-runtime Reconcile returns what to do and when to look again.
package plan

import (
	"time"

	"github.com/driftless/driftless/model"
)

// App is the desired state of one process type of one app (an app with
// web and worker processes is two Apps; Process tells them apart).
type App struct {
	Space, Name string
	// Process is the process type, "" for web: its instances are counted
	// and indexed on their own.
	Process string
	// Instances is how many instances should run.
	Instances int
	// Release is what the instances should run: a staged release whose
	// Run (the process type's run spec: see model.Release.RunFor) and
	// Run.Droplet say how and where cells pull it. Nil means nothing is runnable
	// yet (the first release is still staging, or failed): the app's
	// instances are left as they are.
	Release *model.Release
	// MaxInFlight bounds how many instances are replaced at once during a
	// rollout; 0 means DefaultMaxInFlight.
	MaxInFlight int
	// RestartAt holds, per instance index that crashed recently, when it
	// may be started again (crash backoff, see CrashPolicy). An index is
	// not started before that time; once it is past, the start is a
	// restart.
	RestartAt map[int]time.Time
}

// Key identifies the app across spaces.
func (a App) Key() model.AppKey { return model.AppKey{Space: a.Space, Name: a.Name} }

// ProcessKey identifies the app's process type.
func (a App) ProcessKey() model.ProcessKey {
	return model.ProcessKey{AppKey: a.Key(), Process: model.ProcessOf(a.Process)}
}

// Instance is an instance as last reported by its cell, with the cell.
type Instance = model.InstanceStatus

// Cell is an agent able to run instances.
type Cell struct {
	ID       string
	Zone     string
	Capacity model.Resources
	// Lost is true when the cell's heartbeats stopped: its instances are
	// treated as gone and started elsewhere, and no command is sent to it.
	Lost bool
}

// Input is everything Compute looks at.
type Input struct {
	Apps      []App
	Instances []Instance
	Cells     []Cell
	Now       time.Time
}

// Kind is what an action does.
type Kind string

// Action kinds.
const (
	// Start runs a new instance on a cell.
	Start Kind = "start"
	// Stop stops an instance and removes it from its cell.
	Stop Kind = "stop"
)

// Cause classifies why an action is taken, for events.
type Cause string

// Causes of actions.
const (
	// CausePlace starts an instance at an index that has none.
	CausePlace Cause = "placed"
	// CauseEvacuate starts an instance whose predecessor was on a lost cell.
	CauseEvacuate Cause = "evacuated"
	// CauseRestart starts an instance whose predecessor crashed.
	CauseRestart Cause = "restarted"
	// CauseRollout starts or stops an instance to move to a new release.
	CauseRollout Cause = "rollout"
	// CauseCleanup stops crashed, duplicate, surplus or unwanted instances.
	CauseCleanup Cause = "cleanup"
)

// Action is one step of a plan. For Start, Instance.GUID is empty: the
// executor names the new instance.
type Action struct {
	Kind     Kind
	Cell     string
	Instance model.InstanceRef
	// Run is what a Start runs.
	Run *model.RunSpec
	// Cause classifies the action; Reason says why, for events and logs.
	Cause  Cause
	Reason string
}

// Unplaced is an instance that should run but fits on no cell.
type Unplaced struct {
	App model.AppKey
	// Process is the instance's process type, "" for web.
	Process string
	Index   int
	Reason  string
}

// Waiting is an instance index held back by crash backoff.
type Waiting struct {
	App model.AppKey
	// Process is the instance's process type, "" for web.
	Process string
	Index   int
	Until   time.Time
}

// Rollback says that an app's rollout failed: an instance of the new
// release crashed before it ever became healthy while instances of an
// older release still serve. The app should go back to To, the release
// those instances run.
type Rollback struct {
	App     model.AppKey
	Release string
	To      string
	Reason  string
}

// Plan is the result of Compute.
type Plan struct {
	Actions  []Action
	Unplaced []Unplaced
	Waiting  []Waiting
	// Rollbacks are rollouts to undo; Compute plans nothing new for
	// their apps until the controller switched them back.
	Rollbacks []Rollback
	// NextCheck, when not zero, is when Compute wants to look again
	// even if nothing changes (the end of the earliest backoff).
	NextCheck time.Time
}

// DefaultMaxInFlight is how many instances of an app a rollout replaces at
// once when the app does not say.
const DefaultMaxInFlight = 1
