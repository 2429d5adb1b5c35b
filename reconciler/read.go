package reconciler

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/driftless/driftless/model"
	"github.com/driftless/driftless/policies"
	"github.com/driftless/driftless/reconciler/plan"
)

// AppState is everything the controller knows of one app: what is stored
// (the app and its releases) and what runs. The API makes its views of it.
type AppState struct {
	App model.App
	// Releases are the app's releases, newest first.
	Releases []model.Release
	// Instances are what the cells report, sorted by index then age; an
	// instance of a lost cell is shown LOST (its cell may still run it,
	// but nobody knows). Address is "cell-address:host-port" per GUID.
	Instances []model.InstanceStatus
	Addresses map[string]string
	// Crashes is the crash history of each index (of each process type)
	// that crashed recently.
	Crashes map[model.IndexKey]model.CrashRecord
	// Unplaced are the instances that fit on no cell.
	Unplaced []plan.Unplaced
	// Flagged are the policy problems of the app's last checked commit.
	Flagged []model.Problem
	// Sleeping is set while the app sleeps (an idle preview's, sleep.go).
	Sleeping *model.Sleeping
	// Waiting says which service binding its instances wait for before
	// they start (bindings.go); "" when none.
	Waiting string
}

// Release returns the app's release id, or nil.
func (s AppState) Release(id string) *model.Release {
	for i := range s.Releases {
		if s.Releases[i].ID == id {
			return &s.Releases[i]
		}
	}
	return nil
}

// Status is the controller's own state, its sources and cells.
type Status struct {
	ID string
	// Leading says whether this controller acts; Leader names the one that
	// does, as far as it knows.
	Leading  bool
	Leader   string
	Policies model.PolicyStatus
	Sources  []model.SourceStatus
	Cells    []model.CellStatus
}

// viewInstances is the actual state as users see it, by app.
func (c *Controller) viewInstances() map[model.AppKey][]model.InstanceStatus {
	insts, cells := c.actual.Snapshot(time.Now())
	lost := map[string]bool{}
	for _, cell := range cells {
		lost[cell.ID] = cell.Lost
	}
	out := map[model.AppKey][]model.InstanceStatus{}
	for _, in := range insts {
		if lost[in.Cell] {
			in.State = model.StateLost
		}
		out[in.Key()] = append(out[in.Key()], in)
	}
	return out
}

// AppStates describes every desired app, sorted by space and name.
func (c *Controller) AppStates(_ context.Context) []AppState {
	insts := c.viewInstances()
	apps := c.store.Apps()
	out := make([]AppState, 0, len(apps))
	for _, a := range apps {
		out = append(out, c.appState(a, insts[a.Key()]))
	}
	slices.SortFunc(out, func(a, b AppState) int {
		return cmp.Or(cmp.Compare(a.App.Space, b.App.Space), cmp.Compare(a.App.Name, b.App.Name))
	})
	return out
}

// AppState describes one app; ok is false when no source declares it.
func (c *Controller) AppState(_ context.Context, space, name string) (AppState, bool) {
	key := model.AppKey{Space: space, Name: name}
	a, ok := c.store.App(key)
	if !ok {
		return AppState{}, false
	}
	return c.appState(a, c.viewInstances()[key]), true
}

func (c *Controller) appState(a model.App, insts []model.InstanceStatus) AppState {
	key := a.Key()
	s := AppState{App: a, Releases: c.store.Releases(key), Instances: insts,
		Addresses: map[string]string{}, Crashes: c.crashes.Records(key), Flagged: c.flagged(key)}
	if sl, ok := c.store.Sleeping(key); ok {
		s.Sleeping = &sl
	}
	s.Waiting = c.waitingFor(key)
	slices.SortFunc(s.Releases, func(x, y model.Release) int { return y.CreatedAt.Compare(x.CreatedAt) })
	slices.SortFunc(s.Instances, func(x, y model.InstanceStatus) int {
		return cmp.Or(cmp.Compare(x.Process, y.Process), cmp.Compare(x.Index, y.Index), x.Since.Compare(y.Since))
	})
	for _, in := range insts {
		if in.HostPort != 0 {
			s.Addresses[in.GUID] = fmt.Sprintf("%s:%d", c.actual.Address(in.Cell), in.HostPort)
		}
	}
	c.mu.Lock()
	s.Unplaced = c.unplaced[key]
	c.mu.Unlock()
	return s
}

// Status describes the controller, every source and cell.
func (c *Controller) Status(ctx context.Context) Status {
	leading, leader := c.Leading(ctx)
	c.mu.Lock()
	pol := c.policyStatus
	c.mu.Unlock()
	st := Status{ID: c.cfg.ID, Leading: leading, Leader: leader, Policies: pol,
		Sources: c.Sources(), Cells: c.actual.Cells(time.Now())}
	slices.SortFunc(st.Cells, func(a, b model.CellStatus) int { return cmp.Compare(a.ID, b.ID) })
	return st
}

// Sources describes every source: what is kept of it and how its last
// fetch went.
func (c *Controller) Sources() []model.SourceStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]model.SourceStatus, 0, len(c.sources))
	for _, se := range c.sources {
		s := se.status
		if se.src != nil {
			s.Branch = se.src.Branch()
			s.LastFetch = se.src.LastFetch()
			if err := se.src.LastError(); err != nil {
				s.FetchError = err.Error()
			}
		}
		out = append(out, s)
	}
	return out
}

// Sync fetches every source of space ("" for all) now and applies what
// changed, then queues again for staging the releases git asks for that
// are neither staged, failed, queued nor staging (stager.requeue: those a
// staging could not record); it returns the statuses of those sources.
func (c *Controller) Sync(ctx context.Context, space string) []model.SourceStatus {
	for _, se := range c.sources {
		if space != "" && se.space != space || se.src == nil {
			continue
		}
		if _, err := se.src.Sync(ctx); err != nil {
			c.log.Warn("sync", "source", se.name, "err", err)
		}
	}
	if c.Leads() {
		c.stager.requeue()
	}
	out := c.Sources()
	if space != "" {
		out = slices.DeleteFunc(out, func(s model.SourceStatus) bool { return s.Space != space })
	}
	return out
}

// RecordEvent records an event of another part of the controller's
// process (the API's).
func (c *Controller) RecordEvent(ev model.Event) { c.events.Record(ev) }

// Authorize asks the policies in force (their driftless.authz, or the
// built-in roles) whether in is allowed.
func (c *Controller) Authorize(ctx context.Context, in policies.AuthzInput) (policies.Decision, error) {
	c.mu.Lock()
	set := c.policy
	c.mu.Unlock()
	start := time.Now()
	defer func() { c.metrics.decided("authz", time.Since(start)) }()
	return set.Authorize(ctx, in)
}

// Events returns the last events this controller recorded, optionally of
// one app: its own memory, lost on restart. The API reads the kept ones
// from the journal (every controller's, across restarts).
func (c *Controller) Events(space, app string) []model.Event { return c.events.List(space, app) }
