package reconciler

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/driftless/driftless/model"
	"github.com/driftless/driftless/reconciler/source"
)

// apply turns a new commit of a source into desired state. A commit with
// any error is refused as a whole: nothing of it is applied and what runs
// keeps running; the errors are shown in the source's status.
func (c *Controller) apply(ctx context.Context, se *sourceEntry, snap *source.Snapshot) {
	now := time.Now().UTC()
	prop := BuildDesired(snap, DesiredOptions{Source: se.src.Name(), Space: se.space, Commit: snap.Commit, Domain: c.cfg.Domain})

	c.mu.Lock()
	defer c.mu.Unlock()
	st := &se.status
	st.LastSeen, st.LastSeenAt = snap.Commit, now
	st.Warnings = prop.Warnings
	for _, a := range prop.Apps {
		if other := c.apps[model.AppKey{Space: a.Space, Name: a.Name}]; other != nil && other.Source != a.Source {
			prop.Errors = append(prop.Errors, model.Problem{Position: model.Position{File: a.File, Line: a.Line}, App: a.Name, Message: fmt.Sprintf("app %q is already declared in space %q by source %q", a.Name, a.Space, other.Source)})
		}
	}
	se.last = snap
	if len(prop.Errors) > 0 {
		st.Errors = prop.Errors
		c.saveSource(ctx, se)
		first := prop.Errors[0]
		c.events.Record(model.Event{Kind: model.EventCommitRefused, Space: se.space,
			Message: fmt.Sprintf("commit %s of source %s refused: %s:%d: %s (%d error(s) in all)",
				short(snap.Commit), se.src.Name(), first.File, first.Line, first.Message, len(prop.Errors))})
		return
	}
	violations, err := c.checkPolicies(ctx, se, prop)
	if err != nil {
		violations = []model.Problem{{Message: "policy evaluation failed: " + err.Error(), Kind: model.ProblemPolicy}}
	}
	var blocked []model.Problem // per-app enforcement: apps held at what they run
	if len(violations) > 0 && err == nil && c.policy.PerApp(se.space) {
		if rest, ok := c.holdBack(prop, violations); ok {
			again, err := c.checkPolicies(ctx, se, rest)
			if err == nil && len(again) == 0 {
				prop, blocked, violations = rest, violations, nil
			}
		}
	}
	if len(violations) > 0 {
		// Nothing of the commit is applied for the space: what runs keeps
		// running, and no new release is staged until it complies.
		st.Errors = violations
		c.saveSource(ctx, se)
		c.events.Record(model.Event{Kind: model.EventCommitDenied, Space: se.space,
			Message: fmt.Sprintf("commit %s of source %s denied by policy: %s", short(snap.Commit), se.src.Name(), messages(violations))})
		return
	}
	st.Errors = blocked // what per-app enforcement held back, if anything
	if len(blocked) > 0 {
		c.events.Record(model.Event{Kind: model.EventCommitDenied, Space: se.space,
			Message: fmt.Sprintf("commit %s of source %s: apps held back by policy (the rest applies): %s", short(snap.Commit), se.src.Name(), messages(blocked))})
	}

	releases := make(map[string]model.Release, len(prop.Releases))
	for _, r := range prop.Releases {
		releases[r.App] = r
	}
	var toStage []*model.Release
	seen := make(map[model.AppKey]bool, len(prop.Apps))
	for _, a := range prop.Apps {
		key := model.AppKey{Space: a.Space, Name: a.Name}
		seen[key] = true
		rk := releaseKey(a.Space, a.Name, a.ReleaseID)
		rel := c.releases[rk]
		if rel == nil {
			r := releases[a.Name]
			r.CreatedAt = now
			rel = &r
			c.releases[rk] = rel
			c.saveRelease(ctx, rel)
		}
		if !rel.Staged() && !c.inStage[rk] && rel.State != model.ReleaseFailed {
			toStage = append(toStage, rel)
		}
		rec := a
		rec.UpdatedAt = now
		if prev := c.apps[key]; prev != nil {
			rec.CurrentID, rec.PreviousID = prev.CurrentID, prev.PreviousID
		}
		if rel.Staged() && rec.CurrentID != rel.ID {
			rec.PreviousID, rec.CurrentID = rec.CurrentID, rel.ID
			c.crashes.Forget(key) // a new release starts with a clean slate
		}
		c.apps[key] = &rec
		c.saveApp(ctx, &rec)
	}
	for key, a := range c.apps {
		if a.Source == se.src.Name() && !seen[key] {
			delete(c.apps, key)
			c.deleteApp(ctx, key)
			c.events.Record(model.Event{Kind: model.EventAppRemoved, Space: key.Space, App: key.Name,
				Message: fmt.Sprintf("app removed from source %s at commit %s", se.src.Name(), short(snap.Commit))})
		}
	}
	st.LastApplied, st.LastAppliedAt = snap.Commit, now
	c.saveSource(ctx, se)
	c.events.Record(model.Event{Kind: model.EventCommitApplied, Space: se.space,
		Message: fmt.Sprintf("commit %s of source %s applied: %d app(s), %d to stage", short(snap.Commit), se.src.Name(), len(prop.Apps), len(toStage))})
	for _, rel := range toStage {
		c.queueStaging(rel, snap)
	}
	c.Kick()
}

// messages joins the messages of problems for an event.
func messages(ps []model.Problem) string {
	out := make([]string, 0, len(ps))
	for _, p := range ps {
		out = append(out, p.Message)
	}
	return strings.Join(out, "; ")
}

// short abbreviates a commit hash for messages.
func short(commit string) string {
	if len(commit) > 10 {
		return commit[:10]
	}
	return commit
}
