package decide

import (
	"slices"
	"time"

	"github.com/driftless/driftless/model"
	"github.com/driftless/driftless/reconciler/plan"
)

// Changes is what applying a commit changes in the stored desired state.
type Changes struct {
	// Releases are releases the store does not have yet.
	Releases []model.Release
	// Apps are the commit's apps as they are to be stored.
	Apps []model.App
	// Removed are the apps of the source that the commit no longer
	// declares: removed with their releases.
	Removed []model.AppKey
	// Stage are the releases the commit asks for that have no droplet and
	// did not fail to stage.
	Stage []model.Release
	// Promoted are the apps whose current release changes (a new release
	// starts with a clean crash record).
	Promoted []model.AppKey
	// Services are the service instances to store: declared, changed, or
	// marked deleted (services.go).
	Services []model.ServiceInstance
}

// Apply decides what an accepted proposal of source changes: every app of
// it is stored with the release it asks for (new releases are created at
// now), an app whose release is already staged moves to it at once, and
// the source's apps it no longer declares are removed.
func Apply(prop Proposal, st State, source string, now time.Time) Changes {
	var ch Changes
	proposed := make(map[string]model.Release, len(prop.Releases))
	for _, r := range prop.Releases {
		proposed[r.App] = r
	}
	seen := make(map[model.AppKey]bool, len(prop.Apps))
	for _, a := range prop.Apps {
		key := a.Key()
		seen[key] = true
		if prev, ok := st.App(key); ok {
			// A release the platform pinned to rotated bindings is the
			// one git asks for: git's does not name generations.
			if cur := st.Release(key, prev.CurrentID); cur != nil && len(cur.Run.BindingGenerations) > 0 && UnpinnedID(*cur) == a.ReleaseID {
				a.ReleaseID = cur.ID
			}
		}
		rel := st.Release(key, a.ReleaseID)
		if rel == nil {
			r := proposed[a.Name]
			r.CreatedAt = now
			ch.Releases = append(ch.Releases, r)
			rel = &r
		}
		if !rel.Staged() && rel.State != model.ReleaseFailed {
			ch.Stage = append(ch.Stage, *rel)
		}
		rec := a
		rec.UpdatedAt = now
		if prev, ok := st.App(key); ok {
			rec.CurrentID, rec.PreviousID = prev.CurrentID, prev.PreviousID
		}
		if next, ok := Promote(rec, rel); ok {
			rec = next
			ch.Promoted = append(ch.Promoted, key)
		}
		ch.Apps = append(ch.Apps, rec)
	}
	for key, a := range st.Apps {
		if a.Source == source && !seen[key] {
			ch.Removed = append(ch.Removed, key)
		}
	}
	applyServices(&ch, prop, st, source, now)
	return ch
}

// Promote makes rel the app's current release when git asks for it and it
// is staged: the rollout to it starts. ok is false when nothing changes.
func Promote(app model.App, rel *model.Release) (model.App, bool) {
	if !rel.Staged() || app.ReleaseID != rel.ID || app.CurrentID == rel.ID {
		return app, false
	}
	app.PreviousID, app.CurrentID = app.CurrentID, rel.ID
	return app, true
}

// Undo is how a failed rollout is undone: the app goes back to a release
// that still runs, and the failed release is marked so that git asking
// for it again does nothing until a new commit changes it.
type Undo struct {
	App    model.App
	Failed *model.Release
	To     string
}

// NothingToUndo is Rollback's reason when the app moved on or is gone.
const NothingToUndo = "the app no longer runs that release"

// Rollback decides how to undo the rollout rb. ok is false when there is
// nothing to undo (the app moved on, or is gone) or nowhere to go back to
// (reason says which).
func Rollback(rb plan.Rollback, st State) (u Undo, ok bool, reason string) {
	app, found := st.App(rb.App)
	if !found || app.CurrentID != rb.Release {
		return Undo{}, false, NothingToUndo
	}
	to := rb.To
	if !st.Release(rb.App, to).Staged() {
		to = app.PreviousID
	}
	if !st.Release(rb.App, to).Staged() {
		return Undo{}, false, "no staged release to go back to"
	}
	if failed := st.Release(rb.App, rb.Release); failed != nil {
		failed.State, failed.Error = model.ReleaseFailed, "rolled back: "+rb.Reason
		u.Failed = failed
	}
	app.CurrentID, app.PreviousID = to, ""
	u.App, u.To = app, to
	return u, true, ""
}

// UnpinnedID is the id release r would have without its binding
// generations (what git's proposal of the same release is).
func UnpinnedID(r model.Release) string {
	r.Run.BindingGenerations = nil
	return ReleaseID(r)
}

// RouteChange is how a commit changes an app's routes: those its new
// release adds and drops, against the release it runs now.
type RouteChange struct {
	Key            model.AppKey
	Release        string
	Added, Dropped []string
}

// RouteChanges are the route changes of ch's new releases against st (an
// app new to the store adds all its routes).
func RouteChanges(st State, ch Changes) []RouteChange {
	var out []RouteChange
	for _, r := range ch.Releases {
		key := model.AppKey{Space: r.Space, Name: r.App}
		var old []string
		if a, ok := st.App(key); ok {
			if cur := st.Release(key, a.CurrentID); cur != nil {
				old = cur.Run.Routes
			}
		}
		rc := RouteChange{Key: key, Release: r.ID}
		for _, route := range r.Run.Routes {
			if !slices.Contains(old, route) {
				rc.Added = append(rc.Added, route)
			}
		}
		for _, route := range old {
			if !slices.Contains(r.Run.Routes, route) {
				rc.Dropped = append(rc.Dropped, route)
			}
		}
		if len(rc.Added)+len(rc.Dropped) > 0 {
			out = append(out, rc)
		}
	}
	return out
}
