package reconciler

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/driftless/driftless/model"
	"github.com/driftless/driftless/policies"
	"github.com/driftless/driftless/reconciler/decide"
)

// A pull request's preview is a source of its own: the preview of pull
// request N of source S (space X) is the source "S#pr-N" deploying to
// space "X-pr-N", whose commit is the pull request's head fetched from S's
// repository (source.Source.FetchRef). It is applied like any commit
// (apply.go), with decide.ForPreview shaping the proposal (at most the
// budget's instances per app, DRIFTLESS_PREVIEW, routes host-pr-N.domain/path)
// and the policies seeing input.preview (with how many previews its source
// has deployed, for the budget); a refused or denied pull request changes
// nothing outside its space. Closing or merging the pull request removes
// every app of the preview source, and so does the preview TTL (quotas.yml
// previews.ttl) once the pull request has been quiet that long. Idle
// previews sleep (sleep.go); the forge hears how each went (report.go) and
// is asked for the open pull requests as a safety net (poll.go).

// previewSet is the previews deployed by this controller, by source name.
// Its zero value is ready; mu serialises the preview operations (held
// across fetches and applies, taken before Controller.applyMu).
type previewSet struct {
	mu      sync.Mutex
	entries map[string]*sourceEntry
}

// PullRequest acts on a pull request event of the repository known by
// urls (a webhook's, compared as Trigger compares them): opened, reopened
// or new commits deploy the preview of the pull request for every source
// of that repository (its head fetched from the source's repository, forks
// included); a label change deploys it again when it exists, for the
// policies to see the new labels; closed or merged removes it. It returns
// the names of the previews acted on, nil if none (no source matches, or
// the action asks for nothing).
func (c *Controller) PullRequest(ctx context.Context, pr model.PullRequest, urls []string) []string {
	var names []string
	for _, parent := range c.sourcesOf(repoSet(urls)) {
		if name, ok := c.pullRequest(ctx, parent, pr); ok {
			names = append(names, name)
		}
	}
	return names
}

// pullRequest acts on a pull request event for one source.
func (c *Controller) pullRequest(ctx context.Context, parent *sourceEntry, pr model.PullRequest) (string, bool) {
	if !pr.Action.Open() && !pr.Action.Closed() && pr.Action != model.PRLabeled || pr.Number <= 0 {
		return "", false
	}
	if pr.Ref == "" {
		pr.Ref = model.GitHubPullRef(pr.Number)
	}
	name := model.PreviewSourceName(parent.name, pr.Number)
	if pr.Action.Closed() {
		reason := fmt.Sprintf("pull request %d closed", pr.Number)
		if pr.Merged {
			reason = fmt.Sprintf("pull request %d merged", pr.Number)
		}
		if err := c.removePreview(ctx, parent, pr.Number, reason); err != nil {
			c.log.Warn("removing a preview", "preview", name, "err", err)
		}
		if err := parent.src.ForgetRef(ctx, pr.Ref); err != nil {
			c.log.Warn("forgetting a pull request's ref", "preview", name, "err", err)
		}
		return name, true
	}
	if pr.Action == model.PRLabeled && !c.hasPreview(name) {
		return "", false
	}
	snap, err := parent.src.FetchRef(ctx, pr.Ref)
	if err != nil {
		c.log.Warn("fetching a pull request", "preview", name, "ref", pr.Ref, "err", err)
		c.events.Record(model.Event{Kind: model.EventPreviewDeployed, Space: model.PreviewSpace(parent.space, pr.Number),
			Message: fmt.Sprintf("preview %s of pull request %d not deployed: %v", name, pr.Number, err)})
		if pr.HeadSHA != "" {
			c.report(parent, pr.HeadSHA, model.StatusContextPreview, "", model.CommitFailure, "could not fetch "+pr.Ref+": "+err.Error())
		}
		return name, true
	}
	c.deployPreview(ctx, parent, pr, snap)
	return name, true
}

// hasPreview reports whether the preview source name is deployed.
func (c *Controller) hasPreview(name string) bool {
	c.previews.mu.Lock()
	defer c.previews.mu.Unlock()
	_, ok := c.previews.entries[name]
	return ok
}

// PreviewState is what the controller knows of one deployed preview: its
// source's status (name S#pr-N, space X-pr-N, head commit seen and applied,
// the problems of its last commit, the pull request it deploys), whether
// its apps sleep, and when it expires.
type PreviewState struct {
	Status   model.SourceStatus
	Sleeping bool
	Expires  time.Time
}

// Previews describes the deployed previews, sorted by name.
func (c *Controller) Previews(_ context.Context) []PreviewState {
	c.previews.mu.Lock()
	defer c.previews.mu.Unlock()
	sleeping := c.store.AllSleeping()
	ttl := c.previewBudget().TTL
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]PreviewState, 0, len(c.previews.entries))
	for _, se := range c.previews.entries {
		ps := PreviewState{Status: se.status}
		if p := se.status.Preview; p != nil {
			cp := *p
			cp.Labels = slices.Clone(p.Labels)
			ps.Status.Preview = &cp
			ps.Expires = p.LastActivity.Add(ttl)
		}
		for key := range sleeping {
			if key.Space == se.space {
				ps.Sleeping = true
			}
		}
		out = append(out, ps)
	}
	slices.SortFunc(out, func(a, b PreviewState) int { return strings.Compare(a.Status.Name, b.Status.Name) })
	return out
}

// previewBudget is the budget of the policies in force (the defaults
// when there are none).
func (c *Controller) previewBudget() policies.PreviewBudget {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.policy == nil {
		return policies.PreviewBudget{Instances: 1, TTL: policies.DefaultPreviewTTL}
	}
	return c.policy.Previews
}

// deployPreview applies commit, the head of pull request pr, as the
// preview of source parent, creating the preview's entry on its first
// commit.
func (c *Controller) deployPreview(ctx context.Context, parent *sourceEntry, pr model.PullRequest, commit Commit) {
	c.previews.mu.Lock()
	defer c.previews.mu.Unlock()
	name := model.PreviewSourceName(parent.name, pr.Number)
	space := model.PreviewSpace(parent.space, pr.Number)
	now := time.Now().UTC()
	c.mu.Lock()
	se, ok := c.previews.entries[name]
	if !ok {
		se = &sourceEntry{name: name, space: space, org: parent.org,
			status: model.SourceStatus{Name: name, URL: parent.status.URL, Space: space}}
		if c.previews.entries == nil {
			c.previews.entries = map[string]*sourceEntry{}
		}
		c.previews.entries[name] = se
	}
	se.status.Branch = pr.HeadRef
	se.status.Preview = &model.PreviewOf{Source: parent.name, Number: pr.Number, Branch: pr.HeadRef, Author: pr.Author,
		Labels: slices.Clone(pr.Labels), Ref: pr.Ref, HeadSHA: commit.ID(), LastActivity: now}
	c.mu.Unlock()
	c.preparePreview(se)
	c.wakeSource(ctx, se.name, "a new commit of pull request "+fmt.Sprint(pr.Number))
	c.report(parent, commit.ID(), model.StatusContextPreview, "", model.CommitPending, "deploying the preview")

	c.apply(ctx, se, commit)

	c.mu.Lock()
	applied := se.status.LastApplied == commit.ID()
	var first string
	if len(se.status.Errors) > 0 {
		first = se.status.Errors[0].String()
	}
	problems := len(se.status.Errors)
	c.mu.Unlock()
	msg := fmt.Sprintf("preview %s of pull request %d (%s by %s) deployed at commit %s", name, pr.Number, pr.HeadRef, pr.Author, model.ShortCommit(commit.ID()))
	if !applied {
		msg = fmt.Sprintf("preview %s of pull request %d: commit %s not applied (%d problem(s): see the commit's event); production is untouched", name, pr.Number, model.ShortCommit(commit.ID()), problems)
		c.report(parent, commit.ID(), model.StatusContextPreview, "", model.CommitFailure, first)
	} else {
		c.awaitServing(se, parent, commit.ID(), model.StatusContextPreview)
	}
	c.events.Record(model.Event{Kind: model.EventPreviewDeployed, Space: space, Message: msg})
}

// preparePreview sets what the decisions need of a preview entry: its pull
// request, how many previews its source has deployed counting it (those
// refused do not count), and the budget's instances. Callers hold
// c.previews.mu.
func (c *Controller) preparePreview(se *sourceEntry) {
	budget := c.previewBudget()
	c.mu.Lock()
	pv := se.status.Preview
	open := 1
	for _, other := range c.previews.entries {
		if other != se && other.status.Preview != nil && other.status.Preview.Source == pv.Source && other.status.LastApplied != "" {
			open++
		}
	}
	p := &decide.Preview{Number: pv.Number, Branch: pv.Branch, Author: pv.Author, Labels: slices.Clone(pv.Labels),
		Source: pv.Source, Open: open, MaxInstances: budget.Instances}
	c.mu.Unlock()
	c.applyMu.Lock()
	se.preview = p
	c.applyMu.Unlock()
}

// removePreview tears the preview of pull request n of source parent down
// for reason: every app its source declares is removed with its releases
// (the cells stop their instances and their routes go at the next
// convergence), its stored status is deleted and its entry forgotten.
// Previews of the same source refused for the budget are tried again. It
// works from what is stored, so a preview deployed before a restart is
// removed too.
func (c *Controller) removePreview(ctx context.Context, parent *sourceEntry, n int, reason string) error {
	c.previews.mu.Lock()
	defer c.previews.mu.Unlock()
	name := model.PreviewSourceName(parent.name, n)
	space := model.PreviewSpace(parent.space, n)
	if err := c.removePreviewLocked(ctx, name, space, reason); err != nil {
		return err
	}
	c.retryRefused(ctx, parent.name)
	return nil
}

// removePreviewLocked removes the preview source name. Callers hold
// c.previews.mu.
func (c *Controller) removePreviewLocked(ctx context.Context, name, space, reason string) error {
	c.applyMu.Lock()
	defer c.applyMu.Unlock()
	if se := c.previews.entries[name]; se != nil {
		c.mu.Lock()
		if se.retry != nil {
			se.retry.Stop()
			se.retry = nil
		}
		c.mu.Unlock()
	}
	ch := decide.Apply(decide.Proposal{}, c.store.State(), name, time.Now().UTC())
	if err := c.store.Apply(ctx, ch); err != nil {
		msg := fmt.Sprintf("preview %s could not be removed (%s): %v", name, reason, err)
		c.events.Record(model.Event{Kind: model.EventStoreFailed, Space: space, Message: msg})
		return fmt.Errorf("removing preview %s: %w", name, err)
	}
	if err := c.store.DeleteSourceStatus(ctx, name); err != nil {
		c.log.Warn("deleting a removed preview's status", "preview", name, "err", err)
	}
	delete(c.previews.entries, name)
	c.forgetServing(name)
	apps := make([]string, 0, len(ch.Removed))
	for _, key := range ch.Removed {
		apps = append(apps, key.Name)
		c.events.Record(model.Event{Kind: model.EventAppRemoved, Space: key.Space, App: key.Name,
			Message: fmt.Sprintf("app removed with preview %s: %s", name, reason)})
	}
	c.events.Record(model.Event{Kind: model.EventPreviewRemoved, Space: space,
		Message: fmt.Sprintf("preview %s removed (%s): %d app(s) %s", name, reason, len(apps), strings.Join(apps, ", "))})
	c.Kick()
	return nil
}

// retryRefused applies again the last commit of the previews of source
// parent that were never applied (refused, perhaps for the budget), now
// that one of its previews is gone. Callers hold c.previews.mu.
func (c *Controller) retryRefused(ctx context.Context, parent string) {
	for _, se := range c.sortedPreviews() {
		c.mu.Lock()
		last, refused := se.last, se.status.LastApplied == "" && se.status.Preview != nil && se.status.Preview.Source == parent
		c.mu.Unlock()
		if last != nil && refused {
			c.preparePreview(se)
			c.apply(ctx, se, last)
		}
	}
}

// sortedPreviews is the preview entries by pull request number (lower
// numbers first: the oldest pull requests win the budget). Callers hold
// c.previews.mu.
func (c *Controller) sortedPreviews() []*sourceEntry {
	out := make([]*sourceEntry, 0, len(c.previews.entries))
	for _, se := range c.previews.entries {
		out = append(out, se)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	slices.SortFunc(out, func(a, b *sourceEntry) int {
		if a.status.Preview != nil && b.status.Preview != nil && a.status.Preview.Number != b.status.Preview.Number {
			return a.status.Preview.Number - b.status.Preview.Number
		}
		return strings.Compare(a.name, b.name)
	})
	return out
}

// reapplyPreviews applies the last commit of every preview again, when the
// policies changed: a preview they denied deploys if it complies now.
func (c *Controller) reapplyPreviews(ctx context.Context) {
	c.previews.mu.Lock()
	defer c.previews.mu.Unlock()
	for _, se := range c.sortedPreviews() {
		c.mu.Lock()
		last := se.last
		c.mu.Unlock()
		if last != nil {
			c.preparePreview(se)
			c.apply(ctx, se, last)
		}
	}
}

// expirePreviews removes the previews whose pull request has been quiet
// (no event, no new commit) for longer than the budget's TTL.
func (c *Controller) expirePreviews(ctx context.Context, now time.Time) {
	ttl := c.previewBudget().TTL
	c.previews.mu.Lock()
	defer c.previews.mu.Unlock()
	for _, se := range c.sortedPreviews() {
		c.mu.Lock()
		pv := se.status.Preview
		c.mu.Unlock()
		if pv == nil || now.Sub(pv.LastActivity) <= ttl {
			continue
		}
		reason := fmt.Sprintf("pull request %d quiet for %s, longer than the preview TTL %s", pv.Number, now.Sub(pv.LastActivity).Round(time.Second), ttl)
		if err := c.removePreviewLocked(ctx, se.name, se.space, reason); err != nil {
			c.log.Warn("removing an expired preview", "preview", se.name, "err", err)
			continue
		}
		c.retryRefused(ctx, pv.Source)
	}
}

// restorePreviews rebuilds the entries of the previews deployed before
// this term (by this controller before a restart, or by another): every
// stored app of a preview source whose parent is configured brings its
// preview back with its stored status, so it is listed, expires, sleeps
// and is removed like the others. Its commit is fetched again at the next
// event or poll of its pull request.
func (c *Controller) restorePreviews(ctx context.Context) error {
	c.previews.mu.Lock()
	defer c.previews.mu.Unlock()
	parents := map[string]*sourceEntry{}
	for _, se := range c.sources {
		parents[se.name] = se
	}
	for _, a := range c.store.Apps() {
		if !model.IsPreviewSource(a.Source) || c.previews.entries[a.Source] != nil {
			continue
		}
		st, found, err := c.store.SourceStatus(ctx, a.Source)
		if err != nil {
			return err
		}
		if !found || st.Preview == nil || parents[st.Preview.Source] == nil {
			c.log.Warn("a stored preview's source is unknown: left as it is", "preview", a.Source)
			continue
		}
		if c.previews.entries == nil {
			c.previews.entries = map[string]*sourceEntry{}
		}
		se := &sourceEntry{name: st.Name, space: st.Space, org: parents[st.Preview.Source].org, status: st}
		c.previews.entries[st.Name] = se
		c.preparePreview(se)
	}
	return nil
}
