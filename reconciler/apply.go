package reconciler

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/driftless/driftless/model"
	"github.com/driftless/driftless/reconciler/decide"
)

// storeRetry is how long a commit whose desired state could not be stored
// waits before it is applied again (Controller.storeRetry; tests shorten it).
const storeRetry = 5 * time.Second

// apply turns a new commit of a source into desired state. A commit with
// any error is refused as a whole: nothing of it is applied and what runs
// keeps running; the errors are shown in the source's status. So is a
// commit whose desired state the store refuses: it is applied again after
// storeRetry until it is stored or a newer commit replaces it.
func (c *Controller) apply(ctx context.Context, se *sourceEntry, commit Commit) {
	c.applyMu.Lock()
	defer c.applyMu.Unlock()
	now := time.Now().UTC()
	st := c.store.State()
	prop := decide.Desired(commit, decide.Options{Source: se.name, Space: se.space, Commit: commit.ID(), Domain: c.cfg.Domain, Preview: se.preview != nil})
	if se.preview != nil {
		prop = decide.ForPreview(prop, *se.preview) // a pull request's preview (previews.go)
	}
	prop.Errors = append(prop.Errors, decide.Conflicts(prop, st)...)
	routeErrs, routeWarns := decide.RouteClaims(prop, st)
	prop.Errors, prop.Warnings = append(prop.Errors, routeErrs...), append(prop.Warnings, routeWarns...)
	if len(prop.Errors) == 0 {
		prop.Errors = append(prop.Errors, decide.ServiceProblems(prop, st, se.name, se.space)...)
	}

	c.mu.Lock()
	if se.retry != nil {
		se.retry.Stop()
		se.retry = nil
	}
	se.last = commit
	// A tracked branch's new commit is reported to the forge (report.go);
	// a preview's are reported by deployPreview.
	deploy := se.preview == nil && se.status.LastSeen != commit.ID()
	se.status.LastSeen, se.status.LastSeenAt = commit.ID(), now
	se.status.Warnings = prop.Warnings
	c.mu.Unlock()

	if deploy {
		c.report(se, commit.ID(), model.StatusContextDeploy, "", model.CommitPending, "deploying")
	}
	if len(prop.Errors) > 0 {
		c.setErrors(ctx, se, prop.Errors)
		first := prop.Errors[0]
		if deploy {
			c.report(se, commit.ID(), model.StatusContextDeploy, "", model.CommitFailure, first.String())
		}
		c.events.Record(model.Event{Kind: model.EventCommitRefused, Space: se.space,
			Message: fmt.Sprintf("commit %s of source %s refused: %s:%d: %s (%d error(s) in all)",
				model.ShortCommit(commit.ID()), se.name, first.File, first.Line, first.Message, len(prop.Errors))})
		return
	}
	prop, blocked, violations := c.judge(ctx, se, prop, st)
	if len(violations) > 0 {
		// Nothing of the commit is applied for the space: what runs keeps
		// running, and no new release is staged until it complies.
		c.setErrors(ctx, se, violations)
		if deploy {
			c.report(se, commit.ID(), model.StatusContextDeploy, "", model.CommitFailure, "denied by policy: "+violations[0].String())
		}
		c.events.Record(model.Event{Kind: model.EventCommitDenied, Space: se.space,
			Message: fmt.Sprintf("commit %s of source %s denied by policy: %s", model.ShortCommit(commit.ID()), se.name, messages(violations))})
		return
	}
	if len(blocked) > 0 {
		c.events.Record(model.Event{Kind: model.EventCommitDenied, Space: se.space,
			Message: fmt.Sprintf("commit %s of source %s: apps held back by policy (the rest applies): %s", model.ShortCommit(commit.ID()), se.name, messages(blocked))})
	}

	ch := decide.Apply(prop, st, se.name, now)
	routes := decide.RouteChanges(st, ch)
	if err := c.store.Apply(ctx, ch); err != nil {
		problem := model.Problem{Kind: model.ProblemStore, Message: fmt.Sprintf("commit %s is not applied: the desired state could not be stored (retried in %s): %v", model.ShortCommit(commit.ID()), c.storeRetry, err)}
		c.setErrors(ctx, se, append(blocked, problem))
		c.events.Record(model.Event{Kind: model.EventStoreFailed, Space: se.space, Message: problem.Message})
		c.retryLater(ctx, se, commit)
		return
	}
	for _, key := range ch.Promoted {
		c.crashes.Forget(key) // a new release starts with a clean slate
	}
	if len(ch.Services) > 0 {
		c.kickServices() // services.go
	}
	for _, rc := range routes {
		c.events.Record(model.Event{Kind: model.EventRoutesChanged, Space: rc.Key.Space, App: rc.Key.Name, Release: rc.Release,
			Message: fmt.Sprintf("release %s adds routes %v and drops %v (at commit %s)", rc.Release, rc.Added, rc.Dropped, model.ShortCommit(commit.ID()))})
	}
	for _, key := range ch.Removed {
		c.events.Record(model.Event{Kind: model.EventAppRemoved, Space: key.Space, App: key.Name,
			Message: fmt.Sprintf("app removed from source %s at commit %s", se.name, model.ShortCommit(commit.ID()))})
	}
	c.mu.Lock()
	se.status.LastApplied, se.status.LastAppliedAt = commit.ID(), now
	c.mu.Unlock()
	c.setErrors(ctx, se, blocked) // what per-app enforcement held back, if anything
	queued := c.stager.queue(ch.Stage, se.name, commit)
	if deploy {
		c.awaitServing(se, se, commit.ID(), model.StatusContextDeploy)
	}
	c.events.Record(model.Event{Kind: model.EventCommitApplied, Space: se.space,
		Message: fmt.Sprintf("commit %s of source %s applied: %d app(s), %d to stage", model.ShortCommit(commit.ID()), se.name, len(prop.Apps), queued)})
	c.Kick()
}

// judge evaluates the policies on a proposal. It returns the proposal to
// apply, the problems of the apps per-app enforcement held back, and the
// violations that refuse the whole commit.
func (c *Controller) judge(ctx context.Context, se *sourceEntry, prop decide.Proposal, st decide.State) (decide.Proposal, []model.Problem, []model.Problem) {
	c.mu.Lock()
	set := c.policy
	c.mu.Unlock()
	violations, err := c.checkPolicies(ctx, set, se, prop, st)
	if err != nil {
		return prop, nil, []model.Problem{{Message: "policy evaluation failed: " + err.Error(), Kind: model.ProblemPolicy}}
	}
	if len(violations) == 0 || !set.PerApp(se.space) {
		return prop, nil, violations
	}
	rest, ok := decide.HoldBack(prop, violations, st)
	if !ok {
		return prop, nil, violations
	}
	if again, err := c.checkPolicies(ctx, set, se, rest, st); err != nil || len(again) > 0 {
		return prop, nil, violations
	}
	return rest, violations, nil
}

// setErrors records the problems of a source's last commit and stores its
// status. A status that cannot be stored is still shown (it is kept in
// memory); the next write stores it.
func (c *Controller) setErrors(ctx context.Context, se *sourceEntry, problems []model.Problem) {
	c.mu.Lock()
	se.status.Errors = problems
	st := se.status
	c.mu.Unlock()
	if err := c.store.PutSourceStatus(ctx, st); err != nil {
		c.log.Warn("storing a source's status", "source", se.name, "err", err)
	}
}

// retryLater applies commit again after storeRetry unless a newer commit
// comes first.
func (c *Controller) retryLater(ctx context.Context, se *sourceEntry, commit Commit) {
	c.mu.Lock()
	defer c.mu.Unlock()
	se.retry = time.AfterFunc(c.storeRetry, func() {
		if ctx.Err() != nil {
			return
		}
		c.mu.Lock()
		current := se.last != nil && se.last.ID() == commit.ID()
		c.mu.Unlock()
		if current {
			c.apply(ctx, se, commit)
		}
	})
}

// stopRetries cancels the pending retries when a term ends.
func (c *Controller) stopRetries() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, se := range c.sources {
		if se.retry != nil {
			se.retry.Stop()
			se.retry = nil
		}
	}
}

// messages joins the messages of problems for an event.
func messages(ps []model.Problem) string {
	out := make([]string, 0, len(ps))
	for _, p := range ps {
		out = append(out, p.Message)
	}
	return strings.Join(out, "; ")
}
