package reconciler

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/driftless/driftless/model"
)

// Forge is the forge hosting the sources' repositories, as far as the
// controller talks back to it (platform wires package forge; nil for
// none). PostStatus must not block: the implementation queues the status
// and retries it; OpenPullRequests lists a repository's open pull requests
// (poll.go).
type Forge interface {
	PostStatus(repo model.RepoRef, sha string, st model.CommitStatus)
	OpenPullRequests(ctx context.Context, repo model.RepoRef) ([]model.PullRequest, error)
}

// servingWait is a commit whose status turns to success once every app it
// declares serves (or to failure when its staging fails).
type servingWait struct {
	parent  *sourceEntry
	sha     string
	context string
	since   time.Time
}

// SawRepository records how a forge names a repository (a verified
// webhook delivery tells it), for the statuses and pull request lists of
// the sources in that repository.
func (c *Controller) SawRepository(ref model.RepoRef) {
	key := model.NormalizeRepoURL(ref.URL)
	if key == "" {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.repos == nil {
		c.repos = map[string]model.RepoRef{}
	}
	c.repos[key] = ref
}

// repoOf is the forge's name of a source's repository: what a webhook told,
// else its URL alone (the forge derives the path).
func (c *Controller) repoOf(se *sourceEntry) model.RepoRef {
	c.mu.Lock()
	defer c.mu.Unlock()
	u := se.status.URL
	if ref, ok := c.repos[sourceKey(u)]; ok {
		return ref
	}
	return model.RepoRef{URL: u}
}

// report posts a commit status for a commit of source parent's repository;
// nothing without a forge. target "" is the URL of the first route of the
// source's apps (name: parent's or its preview's).
func (c *Controller) report(parent *sourceEntry, sha, context, target string, state model.CommitState, desc string) {
	if c.cfg.Forge == nil || sha == "" {
		return
	}
	if desc == "" {
		desc = string(state)
	}
	c.cfg.Forge.PostStatus(c.repoOf(parent), sha, model.CommitStatus{State: state, Context: context, TargetURL: target, Description: desc})
}

// awaitServing reports success on commit sha of source se (parent's
// repository) once every app of se serves its release.
func (c *Controller) awaitServing(se, parent *sourceEntry, sha, context string) {
	if c.cfg.Forge == nil {
		return
	}
	c.mu.Lock()
	if c.serving == nil {
		c.serving = map[string]servingWait{}
	}
	c.serving[se.name] = servingWait{parent: parent, sha: sha, context: context, since: time.Now()}
	c.mu.Unlock()
	c.Kick()
}

// forgetServing stops waiting on source name (removed).
func (c *Controller) forgetServing(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.serving, name)
}

// checkServing reports the commits awaited whose apps all serve (success,
// with the URL of their first route) or whose staging failed (failure,
// with the staging error). It runs after each convergence.
func (c *Controller) checkServing(insts []model.InstanceStatus) {
	c.mu.Lock()
	waits := make(map[string]servingWait, len(c.serving))
	for k, v := range c.serving {
		waits[k] = v
	}
	c.mu.Unlock()
	if len(waits) == 0 {
		return
	}
	running := map[model.AppKey]map[string]int{} // app → release → running instances
	for _, in := range insts {
		if in.State == model.StateRunning {
			key := model.AppKey{Space: in.Space, Name: in.App}
			if running[key] == nil {
				running[key] = map[string]int{}
			}
			running[key][in.ReleaseID]++
		}
	}
	apps := c.store.Apps()
	for name, w := range waits {
		state, desc, target, done := c.servingState(name, apps, running)
		if !done {
			continue
		}
		c.mu.Lock()
		if cur, ok := c.serving[name]; ok && cur.sha == w.sha {
			delete(c.serving, name)
		}
		c.mu.Unlock()
		c.report(w.parent, w.sha, w.context, target, state, desc)
	}
}

// servingState says whether the apps of source name all serve their
// desired release (done, success), one failed staging (done, failure), or
// neither yet.
func (c *Controller) servingState(name string, apps []model.App, running map[model.AppKey]map[string]int) (model.CommitState, string, string, bool) {
	var target string
	n := 0
	for _, a := range apps {
		if a.Source != name {
			continue
		}
		n++
		if target == "" && len(a.Routes) > 0 {
			target = c.routeURL(a.Routes[0])
		}
		if rel := c.store.Release(a.Key(), a.ReleaseID); rel != nil && rel.State == model.ReleaseFailed {
			return model.CommitFailure, fmt.Sprintf("staging %s failed: %s", a.Name, rel.Error), target, true
		}
		if _, asleep := c.store.Sleeping(a.Key()); asleep {
			continue
		}
		if a.CurrentID != a.ReleaseID || running[a.Key()][a.ReleaseID] < min(a.Instances, 1) {
			return "", "", "", false
		}
	}
	return model.CommitSuccess, fmt.Sprintf("%d app(s) serving", n), target, true
}

// routeURL is the URL of route ("host[/path]") through the routers:
// Config.RoutesURL's scheme and port with the route's host and path.
func (c *Controller) routeURL(route string) string {
	host, path := model.SplitRoute(route)
	scheme, port := "http", ""
	if u, err := url.Parse(c.cfg.RoutesURL); err == nil && u.Scheme != "" {
		scheme, port = u.Scheme, u.Port()
	}
	if port != "" {
		host += ":" + port
	}
	if path == "" {
		path = "/"
	}
	return scheme + "://" + host + "/" + strings.TrimPrefix(path, "/")
}
