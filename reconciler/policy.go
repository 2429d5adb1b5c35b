package reconciler

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/driftless/driftless/model"
	"github.com/driftless/driftless/policies"
	"github.com/driftless/driftless/reconciler/decide"
)

// checkPolicies evaluates the policy set on the desired state a commit of
// se proposes for its space (decide.PolicyInput: the commit's apps plus
// the apps other sources declare in the same space, so quotas are checked
// on totals) and returns the violations located in the manifests.
func (c *Controller) checkPolicies(ctx context.Context, set *policies.Set, se *sourceEntry, prop decide.Proposal, st decide.State) ([]model.Problem, error) {
	if set == nil {
		return nil, nil
	}
	orgOf := map[string]string{} // source name → org
	for _, other := range c.sources {
		orgOf[other.name] = other.org
	}
	in := decide.PolicyInput(decide.Scope{Space: se.space, Org: se.org, Source: se.name,
		OrgOf: func(src string) string { return orgOf[src] }}, prop, st)
	in.Preview = se.preview.Policy() // null but for a pull request's preview
	start := time.Now()
	vs, err := set.Evaluate(ctx, in)
	c.metrics.decided("deploy", time.Since(start))
	if err != nil {
		return nil, err
	}
	return decide.Violations(vs), nil
}

// applyPolicies compiles a new commit of the policy source. A broken one
// is refused as a whole (the policies in force stay); a good one takes
// effect at once: the last commit of every app source is checked again,
// so a commit denied under the old policies applies now if it complies,
// and apps that no longer comply are flagged (and get no new release).
func (c *Controller) applyPolicies(ctx context.Context, snap Commit) {
	set, err := policies.Load(ctx, snap.FS())
	now := time.Now().UTC()
	c.mu.Lock()
	c.policyStatus.LastSeen, c.policyStatus.LastSeenAt = snap.ID(), now
	if err != nil {
		c.policyStatus.Errors = policyProblems(err)
		c.mu.Unlock()
		c.events.Record(model.Event{Kind: model.EventPolicyRefused,
			Message: fmt.Sprintf("policy commit %s refused, the previous policies stay in force: %v", model.ShortCommit(snap.ID()), err)})
		return
	}
	c.policy = set
	c.policyStatus.Errors, c.policyStatus.Files = nil, set.Files
	c.policyStatus.LastApplied, c.policyStatus.LastAppliedAt = snap.ID(), now
	var again []*sourceEntry
	for _, se := range c.sources {
		if se.last != nil {
			again = append(again, se)
		}
	}
	c.mu.Unlock()
	c.events.Record(model.Event{Kind: model.EventPolicyApplied,
		Message: fmt.Sprintf("policy commit %s applied: %s", model.ShortCommit(snap.ID()), strings.Join(set.Files, ", "))})
	for _, se := range again {
		c.apply(ctx, se, se.last)
	}
	c.reapplyPreviews(ctx) // and every preview's (previews.go)
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
func (c *Controller) flagged(key model.AppKey) []model.Problem {
	c.mu.Lock()
	defer c.mu.Unlock()
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
