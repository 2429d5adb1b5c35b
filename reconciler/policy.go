package reconciler

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/driftless/driftless/model"
	"github.com/driftless/driftless/policies"
	"github.com/driftless/driftless/reconciler/source"
)

// checkPolicies evaluates the policies on the desired state a commit of se
// proposes for its space: the commit's apps plus the apps other sources
// declare in the same space, so quotas are checked on totals. It returns
// the violations as problems located in the manifests. Caller holds c.mu.
func (c *Controller) checkPolicies(ctx context.Context, se *sourceEntry, prop Proposal) ([]model.Problem, error) {
	if c.policy == nil {
		return nil, nil
	}
	in := policies.Input{Space: se.space, Org: se.org}
	orgOf := map[string]string{} // source name → org
	for _, other := range c.sources {
		orgOf[other.src.Name()] = other.org
	}
	rels := map[string]model.Release{}
	for _, r := range prop.Releases {
		rels[r.App] = r
	}
	for _, a := range prop.Apps {
		in.Apps = append(in.Apps, policyApp(a, rels[a.Name]))
	}
	for key, a := range c.apps {
		if key.Space != se.space {
			if se.org != "" && orgOf[a.Source] == se.org {
				if r := c.releases[releaseKey(key.Space, key.Name, a.ReleaseID)]; r != nil {
					in.OrgApps = append(in.OrgApps, policyApp(*a, *r))
				}
			}
			continue
		}
		if r := c.releases[releaseKey(key.Space, key.Name, a.CurrentID)]; r != nil {
			in.Usage.Apps++
			in.Usage.Instances += a.Instances
			in.Usage.MemoryMB += int64(a.Instances) * r.Run.MemoryMB
		}
		if a.Source == se.src.Name() {
			continue
		}
		if r := c.releases[releaseKey(key.Space, key.Name, a.ReleaseID)]; r != nil {
			in.Apps = append(in.Apps, policyApp(*a, *r))
		}
	}
	vs, err := c.policy.Evaluate(ctx, in)
	if err != nil {
		return nil, err
	}
	out := make([]model.Problem, 0, len(vs))
	for _, v := range vs {
		out = append(out, model.Problem{Position: model.Position{File: v.File, Line: v.Line}, App: v.App, Message: "policy " + v.Policy + ": " + v.Message, Kind: model.ProblemPolicy})
	}
	return out, nil
}

func policyApp(a model.App, r model.Release) policies.App {
	return policies.App{Name: a.Name, Instances: a.Instances, MemoryMB: r.Run.MemoryMB, DiskMB: r.Run.DiskMB,
		Routes: a.Routes, Buildpacks: r.Buildpacks, Stack: r.Stack, File: a.File, Line: a.Line}
}

// applyPolicies compiles a new commit of the policy source. A broken one
// is refused as a whole (the policies in force stay); a good one takes
// effect at once: the last commit of every app source is checked again,
// so a commit denied under the old policies applies now if it complies,
// and apps that no longer comply are flagged (and get no new release).
func (c *Controller) applyPolicies(ctx context.Context, snap *source.Snapshot) {
	set, err := policies.Load(ctx, snap.FS())
	now := time.Now().UTC()
	c.mu.Lock()
	c.policyStatus.LastSeen, c.policyStatus.LastSeenAt = snap.Commit, now
	if err != nil {
		c.policyStatus.Errors = policyProblems(err)
		c.mu.Unlock()
		c.events.Record(model.Event{Kind: model.EventPolicyRefused,
			Message: fmt.Sprintf("policy commit %s refused, the previous policies stay in force: %v", short(snap.Commit), err)})
		return
	}
	c.policy = set
	c.policyStatus.Errors, c.policyStatus.Files = nil, set.Files
	c.policyStatus.LastApplied, c.policyStatus.LastAppliedAt = snap.Commit, now
	var again []*sourceEntry
	for _, se := range c.sources {
		if se.last != nil {
			again = append(again, se)
		}
	}
	c.mu.Unlock()
	c.events.Record(model.Event{Kind: model.EventPolicyApplied,
		Message: fmt.Sprintf("policy commit %s applied: %s", short(snap.Commit), strings.Join(set.Files, ", "))})
	for _, se := range again {
		c.apply(ctx, se, se.last)
	}
	c.Kick()
}

func policyProblems(err error) []model.Problem {
	var le *policies.LoadError
	if !errors.As(err, &le) {
		return []model.Problem{{Message: err.Error()}}
	}
	return le.Problems
}

// flagged reports the policy problems of an app's last checked commit.
// Caller holds c.mu.
func (c *Controller) flagged(key model.AppKey) []model.Problem {
	var out []model.Problem
	for _, se := range c.sources {
		if se.space != key.Space {
			continue
		}
		for _, p := range se.status.Errors {
			if p.Kind == model.ProblemPolicy && (p.App == "" || p.App == key.Name) {
				out = append(out, p)
			}
		}
	}
	return out
}

// holdBack returns the proposal with every app a violation names put back
// to what it runs now (an app new in the commit is left out), for per-app
// enforcement. ok is false when a violation names no app: it is about the
// space as a whole, and the whole commit is refused. Caller holds c.mu.
func (c *Controller) holdBack(prop Proposal, violations []model.Problem) (Proposal, bool) {
	held := map[string]bool{}
	for _, v := range violations {
		if v.App == "" {
			return prop, false
		}
		held[v.App] = true
	}
	out := Proposal{Warnings: prop.Warnings}
	for _, r := range prop.Releases {
		if !held[r.App] {
			out.Releases = append(out.Releases, r)
		}
	}
	for _, a := range prop.Apps {
		if !held[a.Name] {
			out.Apps = append(out.Apps, a)
			continue
		}
		cur := c.apps[model.AppKey{Space: a.Space, Name: a.Name}]
		if cur == nil {
			continue // new in this commit: not deployed until it complies
		}
		out.Apps = append(out.Apps, *cur)
		if r := c.releases[releaseKey(cur.Space, cur.Name, cur.ReleaseID)]; r != nil {
			out.Releases = append(out.Releases, *r)
		}
	}
	return out, true
}
