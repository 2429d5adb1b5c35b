package reconciler

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/driftless/driftless/model"
	"github.com/driftless/driftless/reconciler/decide"
)

// A pull request's preview is a source of its own: the preview of pull
// request N of source S (space X) is the source "S#pr-N" deploying to
// space "X-pr-N", whose commit is the pull request's head fetched from S's
// repository (source.Source.FetchRef). It is applied like any commit
// (apply.go), with decide.ForPreview shaping the proposal (one instance
// per app, DRIFTLESS_PREVIEW, routes host-pr-N.domain/path) and the
// policies seeing input.preview; a refused or denied pull request changes
// nothing outside its space. Closing or merging the pull request removes
// every app of the preview source.

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
	if !pr.Action.Open() && !pr.Action.Closed() && pr.Action != model.PRLabeled || pr.Number <= 0 {
		return nil
	}
	ref := pr.Ref
	if ref == "" {
		ref = model.GitHubPullRef(pr.Number)
	}
	var names []string
	for _, parent := range c.sourcesOf(repoSet(urls)) {
		name := model.PreviewSourceName(parent.name, pr.Number)
		if pr.Action.Closed() {
			if err := c.removePreview(ctx, parent, pr.Number); err != nil {
				c.log.Warn("removing a preview", "preview", name, "err", err)
			}
			if err := parent.src.ForgetRef(ctx, ref); err != nil {
				c.log.Warn("forgetting a pull request's ref", "preview", name, "err", err)
			}
			names = append(names, name)
			continue
		}
		if pr.Action == model.PRLabeled && !c.hasPreview(name) {
			continue
		}
		snap, err := parent.src.FetchRef(ctx, ref)
		if err != nil {
			c.log.Warn("fetching a pull request", "preview", name, "ref", ref, "err", err)
			c.events.Record(model.Event{Kind: model.EventPreviewDeployed, Space: model.PreviewSpace(parent.space, pr.Number),
				Message: fmt.Sprintf("preview %s of pull request %d not deployed: %v", name, pr.Number, err)})
			names = append(names, name)
			continue
		}
		c.deployPreview(ctx, parent, pr, snap)
		names = append(names, name)
	}
	return names
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
// the problems of its last commit) and the pull request it deploys.
type PreviewState struct {
	Status model.SourceStatus
	Number int
	Branch string
	Author string
	Labels []string
}

// Previews describes the deployed previews, by name.
func (c *Controller) Previews(_ context.Context) []PreviewState {
	c.previews.mu.Lock()
	defer c.previews.mu.Unlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]PreviewState, 0, len(c.previews.entries))
	for _, se := range c.previews.entries {
		ps := PreviewState{Status: se.status}
		if p := se.preview; p != nil {
			ps.Number, ps.Branch, ps.Author, ps.Labels = p.Number, p.Branch, p.Author, slices.Clone(p.Labels)
		}
		out = append(out, ps)
	}
	slices.SortFunc(out, func(a, b PreviewState) int { return strings.Compare(a.Status.Name, b.Status.Name) })
	return out
}

// deployPreview applies commit, the head of pull request pr, as the
// preview of source parent, creating the preview's entry on its first
// commit.
func (c *Controller) deployPreview(ctx context.Context, parent *sourceEntry, pr model.PullRequest, commit Commit) {
	c.previews.mu.Lock()
	defer c.previews.mu.Unlock()
	name := model.PreviewSourceName(parent.name, pr.Number)
	space := model.PreviewSpace(parent.space, pr.Number)
	se, ok := c.previews.entries[name]
	if !ok {
		se = &sourceEntry{name: name, space: space, org: parent.org,
			status: model.SourceStatus{Name: name, URL: parent.status.URL, Space: space, Branch: pr.HeadRef}}
		if c.previews.entries == nil {
			c.previews.entries = map[string]*sourceEntry{}
		}
		c.previews.entries[name] = se
	}
	c.applyMu.Lock()
	se.preview = &decide.Preview{Number: pr.Number, Branch: pr.HeadRef, Author: pr.Author, Labels: slices.Clone(pr.Labels)}
	c.applyMu.Unlock()

	c.apply(ctx, se, commit)

	c.mu.Lock()
	applied := se.status.LastApplied == commit.ID()
	problems := len(se.status.Errors)
	c.mu.Unlock()
	msg := fmt.Sprintf("preview %s of pull request %d (%s by %s) deployed at commit %s", name, pr.Number, pr.HeadRef, pr.Author, model.ShortCommit(commit.ID()))
	if !applied {
		msg = fmt.Sprintf("preview %s of pull request %d: commit %s not applied (%d problem(s): see the commit's event); production is untouched", name, pr.Number, model.ShortCommit(commit.ID()), problems)
	}
	c.events.Record(model.Event{Kind: model.EventPreviewDeployed, Space: space, Message: msg})
}

// removePreview tears the preview of pull request n of source parent down:
// every app its source declares is removed with its releases (the cells
// stop their instances and their routes go at the next convergence), and
// its entry is forgotten. It works from what is stored, so a preview
// deployed before a restart is removed too.
func (c *Controller) removePreview(ctx context.Context, parent *sourceEntry, n int) error {
	c.previews.mu.Lock()
	defer c.previews.mu.Unlock()
	name := model.PreviewSourceName(parent.name, n)
	space := model.PreviewSpace(parent.space, n)
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
		msg := fmt.Sprintf("preview %s of pull request %d could not be removed: %v", name, n, err)
		c.events.Record(model.Event{Kind: model.EventStoreFailed, Space: space, Message: msg})
		return fmt.Errorf("removing preview %s: %w", name, err)
	}
	delete(c.previews.entries, name)
	apps := make([]string, 0, len(ch.Removed))
	for _, key := range ch.Removed {
		apps = append(apps, key.Name)
		c.events.Record(model.Event{Kind: model.EventAppRemoved, Space: key.Space, App: key.Name,
			Message: fmt.Sprintf("app removed with preview %s: pull request %d closed", name, n)})
	}
	c.events.Record(model.Event{Kind: model.EventPreviewRemoved, Space: space,
		Message: fmt.Sprintf("preview %s of pull request %d removed: %d app(s) %s", name, n, len(apps), strings.Join(apps, ", "))})
	c.Kick()
	return nil
}

// reapplyPreviews applies the last commit of every preview again, when the
// policies changed: a preview they denied deploys if it complies now.
func (c *Controller) reapplyPreviews(ctx context.Context) {
	c.previews.mu.Lock()
	defer c.previews.mu.Unlock()
	for _, se := range c.previews.entries {
		c.mu.Lock()
		last := se.last
		c.mu.Unlock()
		if last != nil {
			c.apply(ctx, se, last)
		}
	}
}
