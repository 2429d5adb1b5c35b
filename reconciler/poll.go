package reconciler

import (
	"context"
	"fmt"
	"slices"

	"github.com/driftless/driftless/internal/ticks"
	"github.com/driftless/driftless/model"
)

// Polling is the safety net of the webhooks (GitHub never sends a failed
// delivery again): with a forge configured, the open pull requests of every
// source's repository are listed every Config.PullRequestPoll and the
// previews converge to that list — a pull request open without a preview,
// or whose head moved, is deployed; a preview whose pull request is no
// longer open is removed. A list that cannot be read changes nothing.

// pollLoop lists the open pull requests until ctx ends.
func (c *Controller) pollLoop(ctx context.Context) {
	ticks.NowAndEvery(ctx, c.cfg.PullRequestPoll, func() {
		for _, se := range c.sources {
			c.pollPullRequests(ctx, se)
		}
	})
}

// pollPullRequests converges the previews of source se to its repository's
// open pull requests.
func (c *Controller) pollPullRequests(ctx context.Context, se *sourceEntry) {
	if se.src == nil {
		return
	}
	prs, err := c.cfg.Forge.OpenPullRequests(ctx, c.repoOf(se))
	if err != nil {
		if ctx.Err() == nil {
			c.log.Warn("listing open pull requests; previews left as they are", "source", se.name, "err", err)
		}
		return
	}
	open := map[int]bool{}
	for _, pr := range prs {
		open[pr.Number] = true
		if c.previewCurrent(model.PreviewSourceName(se.name, pr.Number), pr) {
			continue
		}
		pr.Action = model.PROpened
		c.log.Info("open pull request without its preview at its head: deploying", "source", se.name, "number", pr.Number, "head", pr.HeadSHA)
		c.pullRequest(ctx, se, pr)
	}
	for _, n := range c.previewNumbers(se.name) {
		if open[n] {
			continue
		}
		c.log.Info("preview of a pull request no longer open: removing", "source", se.name, "number", n)
		if err := c.removePreview(ctx, se, n, fmt.Sprintf("pull request %d is no longer open", n)); err != nil {
			c.log.Warn("removing a preview", "source", se.name, "number", n, "err", err)
		}
	}
}

// previewCurrent reports whether preview name is deployed from pr's head
// with its labels (a commit in hand, not only restored from the store).
func (c *Controller) previewCurrent(name string, pr model.PullRequest) bool {
	c.previews.mu.Lock()
	defer c.previews.mu.Unlock()
	se := c.previews.entries[name]
	if se == nil {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	p := se.status.Preview
	return se.last != nil && p != nil && (pr.HeadSHA == "" || p.HeadSHA == pr.HeadSHA) && slices.Equal(p.Labels, pr.Labels)
}

// previewNumbers lists the pull request numbers of source parent's
// previews.
func (c *Controller) previewNumbers(parent string) []int {
	c.previews.mu.Lock()
	defer c.previews.mu.Unlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []int
	for _, se := range c.previews.entries {
		if p := se.status.Preview; p != nil && p.Source == parent {
			out = append(out, p.Number)
		}
	}
	slices.Sort(out)
	return out
}
