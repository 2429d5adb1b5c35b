package api

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/driftless/driftless/model"
	"github.com/driftless/driftless/reconciler"
)

// appView summarises an app as `driftless apps` shows it: how many of its
// instances run its current release, its state from the user's point of
// view, and the problems that need attention.
func appView(s reconciler.AppState, now time.Time) App {
	a := s.App
	v := App{Name: a.Name, Space: a.Space, Desired: a.Instances, ReleaseID: a.CurrentID,
		Commit: a.Commit, Source: a.Source, Routes: a.Routes}
	if v.Routes == nil {
		v.Routes = []string{}
	}
	cur, target := s.Release(a.CurrentID), s.Release(a.ReleaseID)
	if cur != nil {
		v.Release = cur.Commit
	}
	if a.ReleaseID != a.CurrentID {
		v.Target = a.ReleaseID
	}
	var others, crashed, starting int
	running := map[string]int{}
	for _, in := range s.Instances {
		switch {
		case in.State == model.StateCrashed:
			crashed++
		case in.ReleaseID != a.CurrentID:
			if in.State.Active() {
				others++
			}
		case in.State == model.StateRunning && in.Index < a.InstancesOf(in.Process):
			running[model.ProcessOf(in.Process)]++
		case in.State == model.StateStarting:
			starting++
		}
	}
	v.Running = running[model.ProcessWeb]
	allRunning := v.Running >= a.Instances
	if cur != nil && len(cur.Processes) > 0 {
		for _, t := range cur.ProcessTypes() {
			v.Processes = append(v.Processes, Process{Type: t, Desired: a.InstancesOf(t), Running: running[t]})
			allRunning = allRunning && running[t] >= a.InstancesOf(t)
		}
	}
	if target != nil && target.State == model.ReleaseFailed {
		if target.DropletDigest != "" {
			v.Problems = append(v.Problems, fmt.Sprintf("release %s (commit %s) %s", target.ID, model.ShortCommit(target.Commit), target.Error))
		} else {
			v.Problems = append(v.Problems, fmt.Sprintf("release %s (commit %s) failed to stage: %s", target.ID, model.ShortCommit(target.Commit), target.Error))
		}
	}
	if crashed > 0 {
		v.Problems = append(v.Problems, fmt.Sprintf("%d crashed instance(s)", crashed))
	}
	for _, idx := range sortedIndexes(s.Crashes) {
		if r := s.Crashes[idx]; r.RestartAt.After(now) {
			v.Problems = append(v.Problems, fmt.Sprintf("instance %s crashed %d times in a row (%s); next restart in %s",
				idx, r.Count, r.Reason, r.RestartAt.Sub(now).Round(time.Second)))
		}
	}
	for _, p := range s.Flagged {
		v.Problems = append(v.Problems, "last commit denied: "+p.Message)
	}
	if s.Waiting != "" {
		v.Problems = append(v.Problems, "instances wait: "+s.Waiting)
	}
	if us := s.Unplaced; len(us) > 0 {
		v.Problems = append(v.Problems, fmt.Sprintf("%d instance(s) cannot be placed: %s", len(us), us[0].Reason))
	}
	switch {
	case cur == nil && target != nil && target.State == model.ReleaseFailed:
		v.State = AppStagingFailed
	case cur == nil:
		v.State = AppStaging
	case target != nil && target.State == model.ReleaseStaging && a.ReleaseID != a.CurrentID:
		v.State = AppStaging
	case others > 0:
		v.State = AppRollingOut
	case s.Sleeping != nil && v.Running == 0 && starting == 0:
		v.State = AppSleeping
	case allRunning:
		v.State = AppRunning
	case starting > 0:
		v.State = AppStarting
	default:
		v.State = AppDegraded
	}
	return v
}

// appDetail is `driftless app NAME`: the app, its instances, releases and
// crash history. Release views leave out the run spec (it holds the app's
// environment).
func appDetail(s reconciler.AppState, now time.Time) AppDetail {
	d := AppDetail{App: appView(s, now), File: s.App.File, Line: s.App.Line}
	for idx, r := range s.Crashes {
		cr := Crash{Process: idx.Process, Index: idx.Index, CrashRecord: r}
		if !r.RestartAt.After(now) {
			cr.RestartAt = time.Time{}
		}
		d.Crashes = append(d.Crashes, cr)
	}
	slices.SortFunc(d.Crashes, func(a, b Crash) int { return cmp.Or(cmp.Compare(a.Process, b.Process), cmp.Compare(a.Index, b.Index)) })
	for _, in := range s.Instances {
		v := Instance{InstanceStatus: in, Address: s.Addresses[in.GUID]}
		if in.State == model.StateRunning {
			ready := !in.NotReady
			v.Ready = &ready
		}
		d.Instances = append(d.Instances, v)
	}
	for _, r := range s.Releases {
		rel := Release{ID: r.ID, Commit: r.Commit, State: r.State, Droplet: r.DropletDigest,
			Buildpack: r.Buildpack, Error: r.Error, StagingLog: r.StagingLog, CreatedAt: r.CreatedAt, Current: r.ID == s.App.CurrentID}
		if r.Docker != nil {
			rel.Image = r.Docker.Image
		}
		d.Releases = append(d.Releases, rel)
	}
	for _, u := range s.Unplaced {
		d.Unplaced = append(d.Unplaced, Unplaced{Process: u.Process, Index: u.Index, Reason: u.Reason})
	}
	return d
}

// sortedIndexes returns the crash histories' keys, web's first, then by
// process type and index.
func sortedIndexes(m map[model.IndexKey]model.CrashRecord) []model.IndexKey {
	return slices.SortedFunc(maps.Keys(m), func(a, b model.IndexKey) int {
		return cmp.Or(cmp.Compare(a.Process, b.Process), cmp.Compare(a.Index, b.Index))
	})
}

// statusView is `driftless status`: the controller, its policies, sources
// and cells, and (on the leader) the problems of every app.
func statusView(st reconciler.Status, apps []App) Status {
	role := "standby"
	if st.Leading {
		role = "leader"
	}
	out := Status{Controller: Controller{ID: st.ID, Role: role, Leader: st.Leader}, Policies: st.Policies,
		Sources: sourceViews(st.Sources), Cells: st.Cells, Problems: []AppProblem{}}
	if out.Policies.Errors == nil {
		out.Policies.Errors = []model.Problem{}
	}
	if out.Cells == nil {
		out.Cells = []model.CellStatus{}
	}
	for _, a := range apps {
		for _, p := range a.Problems {
			out.Problems = append(out.Problems, AppProblem{Space: a.Space, App: a.Name, Message: p})
		}
	}
	return out
}

// sourceViews makes empty problem lists [] rather than null.
func sourceViews(in []model.SourceStatus) []model.SourceStatus {
	out := make([]model.SourceStatus, 0, len(in))
	for _, s := range in {
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

// settled reports whether every app runs what git asks for, or cannot.
func settled(apps []App) (bool, string) {
	for _, a := range apps {
		switch {
		case a.State == AppStagingFailed, a.Target != "" && len(a.Problems) > 0:
			continue // staging failed: nothing more will happen by itself
		case a.State == AppSleeping && a.Target == "":
			continue // asleep until its next request
		case a.Target != "" || a.State != AppRunning:
			return false, ""
		}
	}
	return true, "every app runs its target release"
}

// previewViews shows each preview with the state of its apps (apps: every
// app's view): refused when its last commit was not applied, failed when
// an app's staging failed, sleeping when idle, serving when every app
// runs, else starting.
func previewViews(states []reconciler.PreviewState, apps []App) []Preview {
	out := make([]Preview, 0, len(states))
	for _, ps := range states {
		st := ps.Status
		source, _, _ := strings.Cut(st.Name, "#pr-")
		v := Preview{Name: st.Name, Source: source, Space: st.Space, Head: st.LastSeen, Applied: st.LastApplied,
			URLs: []string{}, Since: st.LastSeenAt, Expires: ps.Expires}
		if p := st.Preview; p != nil {
			v.Number, v.Branch, v.Author = p.Number, p.Branch, p.Author
		}
		running, total := 0, 0
		for _, a := range apps {
			if a.Space != st.Space {
				continue
			}
			total++
			for _, r := range a.Routes {
				v.URLs = append(v.URLs, "http://"+r)
			}
			switch {
			case a.State == AppRunning:
				running++
			case a.State == AppStagingFailed && v.State == "":
				v.State = PreviewFailed
				if len(a.Problems) > 0 {
					v.Reason = a.Problems[0]
				}
			}
		}
		switch {
		case len(st.Errors) > 0 && st.LastApplied != st.LastSeen:
			v.State, v.Reason = PreviewRefused, st.Errors[0].String()
		case v.State == PreviewFailed:
		case ps.Sleeping:
			v.State, v.Reason = PreviewSleeping, "idle: its next request wakes it"
		case total > 0 && running == total:
			v.State = PreviewServing
		default:
			v.State = PreviewStarting
		}
		out = append(out, v)
	}
	return out
}
