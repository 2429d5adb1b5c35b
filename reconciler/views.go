package reconciler

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/driftless/driftless/api"
	"github.com/driftless/driftless/model"
	"github.com/driftless/driftless/reconciler/plan"
)

// viewSnapshot is the actual state as users see it: instances of lost
// cells are shown LOST (their cell may still run them, but nobody knows).
func (c *Controller) viewSnapshot() []plan.Instance {
	insts, cells := c.actual.Snapshot(time.Now())
	lost := map[string]bool{}
	for _, cell := range cells {
		lost[cell.ID] = cell.Lost
	}
	for i := range insts {
		if lost[insts[i].Cell] {
			insts[i].State = model.StateLost
		}
	}
	return insts
}

// Apps lists every desired app with what runs of it.
func (c *Controller) Apps(_ context.Context) []api.App {
	insts := c.viewSnapshot()
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]api.App, 0, len(c.apps))
	for key, a := range c.apps {
		out = append(out, c.appView(key, a, insts))
	}
	slices.SortFunc(out, func(a, b api.App) int { return cmp.Or(cmp.Compare(a.Space, b.Space), cmp.Compare(a.Name, b.Name)) })
	return out
}

// App describes one app in detail; ok is false when no source declares it.
func (c *Controller) App(_ context.Context, space, name string) (api.AppDetail, bool) {
	insts := c.viewSnapshot()
	c.mu.Lock()
	defer c.mu.Unlock()
	key := model.AppKey{Space: space, Name: name}
	a := c.apps[key]
	if a == nil {
		return api.AppDetail{}, false
	}
	d := api.AppDetail{App: c.appView(key, a, insts), File: a.File, Line: a.Line}
	for idx, r := range c.crashes.Records(key) {
		cr := api.Crash{Index: idx, Count: r.Count, LastAt: r.LastAt, ExitStatus: r.ExitStatus,
			Reason: r.Reason, LastOutput: r.LastOutput}
		if r.RestartAt.After(time.Now()) {
			cr.RestartAt = r.RestartAt
		}
		d.Crashes = append(d.Crashes, cr)
	}
	slices.SortFunc(d.Crashes, func(a, b api.Crash) int { return cmp.Compare(a.Index, b.Index) })
	for _, in := range insts {
		if in.Key() != key {
			continue
		}
		d.Instances = append(d.Instances, api.Instance{InstanceStatus: in, Address: c.instanceAddress(in)})
	}
	slices.SortFunc(d.Instances, func(x, y api.Instance) int { return cmp.Or(cmp.Compare(x.Index, y.Index), x.Since.Compare(y.Since)) })
	for _, r := range c.releases {
		if r.Space != space || r.App != name {
			continue
		}
		d.Releases = append(d.Releases, api.Release{ID: r.ID, Commit: r.Commit, State: r.State, Droplet: r.DropletDigest,
			Buildpack: r.Buildpack, Error: r.Error, StagingLog: r.StagingLog, CreatedAt: r.CreatedAt, Current: r.ID == a.CurrentID})
	}
	slices.SortFunc(d.Releases, func(x, y api.Release) int { return y.CreatedAt.Compare(x.CreatedAt) })
	for _, u := range c.unplaced[key] {
		d.Unplaced = append(d.Unplaced, api.Unplaced{Index: u.Index, Reason: u.Reason})
	}
	return d, true
}

func (c *Controller) instanceAddress(in plan.Instance) string {
	if in.HostPort == 0 {
		return ""
	}
	return fmt.Sprintf("%s:%d", c.actual.Address(in.Cell), in.HostPort)
}

// appView summarises an app. Caller holds c.mu.
func (c *Controller) appView(key model.AppKey, a *model.App, insts []plan.Instance) api.App {
	v := api.App{Name: a.Name, Space: a.Space, Desired: a.Instances, ReleaseID: a.CurrentID,
		Commit: a.Commit, Source: a.Source, Routes: a.Routes}
	if v.Routes == nil {
		v.Routes = []string{}
	}
	cur := c.releases[releaseKey(key.Space, key.Name, a.CurrentID)]
	target := c.releases[releaseKey(key.Space, key.Name, a.ReleaseID)]
	if cur != nil {
		v.Release = cur.Commit
	}
	if a.ReleaseID != a.CurrentID {
		v.Target = a.ReleaseID
	}
	var others, crashed, starting int
	for _, in := range insts {
		if in.Key() != key {
			continue
		}
		switch {
		case in.State == model.StateCrashed:
			crashed++
		case in.ReleaseID != a.CurrentID:
			if in.State == model.StateRunning || in.State == model.StateStarting {
				others++
			}
		case in.State == model.StateRunning && in.Index < a.Instances:
			v.Running++
		case in.State == model.StateStarting:
			starting++
		}
	}
	if target != nil && target.State == model.ReleaseFailed {
		if target.DropletDigest != "" {
			v.Problems = append(v.Problems, fmt.Sprintf("release %s (commit %s) %s", target.ID, short(target.Commit), target.Error))
		} else {
			v.Problems = append(v.Problems, fmt.Sprintf("release %s (commit %s) failed to stage: %s", target.ID, short(target.Commit), target.Error))
		}
	}
	if crashed > 0 {
		v.Problems = append(v.Problems, fmt.Sprintf("%d crashed instance(s)", crashed))
	}
	now := time.Now()
	for idx, r := range c.crashes.Records(key) {
		if r.RestartAt.After(now) {
			v.Problems = append(v.Problems, fmt.Sprintf("instance %d crashed %d times in a row (%s); next restart in %s",
				idx, r.Count, r.Reason, r.RestartAt.Sub(now).Round(time.Second)))
		}
	}
	for _, p := range c.flagged(key) {
		v.Problems = append(v.Problems, "last commit denied: "+p.Message)
	}
	if us := c.unplaced[key]; len(us) > 0 {
		v.Problems = append(v.Problems, fmt.Sprintf("%d instance(s) cannot be placed: %s", len(us), us[0].Reason))
	}
	switch {
	case cur == nil && target != nil && target.State == model.ReleaseFailed:
		v.State = api.AppStagingFailed
	case cur == nil:
		v.State = api.AppStaging
	case target != nil && target.State == model.ReleaseStaging && a.ReleaseID != a.CurrentID:
		v.State = api.AppStaging
	case others > 0:
		v.State = api.AppRollingOut
	case v.Running >= a.Instances:
		v.State = api.AppRunning
	case starting > 0:
		v.State = api.AppStarting
	default:
		v.State = api.AppDegraded
	}
	return v
}

// Status describes the controller, every source and cell, and the apps
// that need attention.
func (c *Controller) Status(ctx context.Context) api.Status {
	leading, leader := c.Leading(ctx)
	role := RoleStandby
	if leading {
		role = RoleLeader
	}
	c.mu.Lock()
	pol := c.policyStatus
	c.mu.Unlock()
	if pol.Errors == nil {
		pol.Errors = []model.Problem{}
	}
	st := api.Status{Controller: api.Controller{ID: c.cfg.ID, Role: role, Leader: leader}, Policies: pol,
		Sources: c.sourceViews(), Cells: c.actual.Cells(time.Now()), Problems: []api.AppProblem{}}
	slices.SortFunc(st.Cells, func(a, b api.Cell) int { return cmp.Compare(a.ID, b.ID) })
	if leading {
		for _, a := range c.Apps(ctx) {
			for _, p := range a.Problems {
				st.Problems = append(st.Problems, api.AppProblem{Space: a.Space, App: a.Name, Message: p})
			}
		}
	}
	return st
}

func (c *Controller) sourceViews() []api.Source {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]api.Source, 0, len(c.sources))
	for _, se := range c.sources {
		s := api.Source{SourceStatus: se.status, Branch: se.src.Branch()}
		if t := se.src.LastFetch(); !t.IsZero() {
			s.LastFetch = t
		}
		if err := se.src.LastError(); err != nil {
			s.FetchError = err.Error()
		}
		if s.Errors == nil {
			s.Errors = []model.Problem{}
		}
		if s.Warnings == nil {
			s.Warnings = []model.Problem{}
		}
		out = append(out, s)
	}
	return out
}

// Sync fetches every source now and applies what changed. With wait it
// then waits, until ctx ends, for every app to run its target release at
// the desired count (or for its staging to fail).
func (c *Controller) Sync(ctx context.Context, wait bool) api.SyncResult {
	for _, se := range c.sources {
		if _, err := se.src.Sync(ctx); err != nil {
			c.log.Warn("sync", "source", se.src.Name(), "err", err)
		}
	}
	res := api.SyncResult{}
	if wait {
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
	loop:
		for {
			if done, msg := c.settled(); done {
				res.Converged, res.Message = true, msg
				break
			}
			select {
			case <-ctx.Done():
				res.Message = "gave up waiting: " + ctx.Err().Error()
				break loop
			case <-t.C:
			}
		}
	}
	res.Sources = c.sourceViews()
	return res
}

// settled reports whether every app runs what git asks for, or cannot.
func (c *Controller) settled() (bool, string) {
	for _, a := range c.Apps(context.Background()) {
		switch {
		case a.State == api.AppStagingFailed, a.Target != "" && len(a.Problems) > 0:
			continue // staging failed: nothing more will happen by itself
		case a.Target != "" || a.State != api.AppRunning:
			return false, ""
		}
	}
	return true, "every app runs its target release"
}
