package reconciler

import (
	"context"
	"path/filepath"
	"strings"

	"github.com/driftless/driftless/model"
)

// Trigger starts a fetch of every source, the policy source included, whose
// repository is one of urls (a webhook's repository URLs), compared as
// model.NormalizeRepoURL makes them: a source of https://host/o/r matches a
// payload naming https://host/o/r.git, and a source that is a path matches
// the file:// URL of that path. The fetches run in the background
// (source.Source.Trigger); Trigger returns the names of the sources that
// matched, nil if none did.
func (c *Controller) Trigger(_ context.Context, urls []string) []string {
	want := repoSet(urls)
	var names []string
	for _, se := range c.sourcesOf(want) {
		se.src.Trigger()
		names = append(names, se.name)
	}
	c.mu.Lock()
	pol := c.policySrc
	c.mu.Unlock()
	if pol != nil && want[sourceKey(pol.URL())] {
		pol.Trigger()
		names = append(names, pol.Name())
	}
	if len(names) > 0 {
		c.log.Debug("sources triggered by a webhook", "sources", names)
	}
	return names
}

// repoSet is a webhook's repository URLs as sourceKey compares them.
func repoSet(urls []string) map[string]bool {
	want := map[string]bool{}
	for _, u := range urls {
		if n := model.NormalizeRepoURL(u); n != "" {
			want[n] = true
		}
	}
	return want
}

// sourcesOf returns the app sources whose repository is in want.
func (c *Controller) sourcesOf(want map[string]bool) []*sourceEntry {
	var out []*sourceEntry
	for _, se := range c.sources {
		if se.src != nil && want[sourceKey(se.src.URL())] {
			out = append(out, se)
		}
	}
	return out
}

// sourceKey is the normalised repository URL of a source's URL (redacted
// of its credentials, which normalising drops anyway); a relative path is
// made absolute first, as the source itself does.
func sourceKey(u string) string {
	if !strings.Contains(u, "://") && !filepath.IsAbs(u) {
		if abs, err := filepath.Abs(u); err == nil {
			u = abs
		}
	}
	return model.NormalizeRepoURL(u)
}
