package reconciler

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/driftless/driftless/blobstore"
	"github.com/driftless/driftless/bus"
	"github.com/driftless/driftless/catalog"
	"github.com/driftless/driftless/model"
	"github.com/driftless/driftless/reconciler/source"
)

// stageJob is a release to stage and the commit its source comes from.
type stageJob struct {
	space, app, id string
	snap           *source.Snapshot
}

// queueStaging schedules a release for staging. Caller holds c.mu.
func (c *Controller) queueStaging(rel *model.Release, snap *source.Snapshot) {
	rk := releaseKey(rel.Space, rel.App, rel.ID)
	select {
	case c.stageQ <- stageJob{space: rel.Space, app: rel.App, id: rel.ID, snap: snap}:
		c.inStage[rk] = true
	default:
		c.log.Warn("staging queue full; release will be staged on the next commit or sync", "app", rel.App, "release", rel.ID)
	}
}

func (c *Controller) stagingWorker(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case job := <-c.stageQ:
			c.stage(ctx, job)
		}
	}
}

// stage turns one release into a droplet: from the staging cache when the
// same source, buildpacks and stack were staged before, otherwise by one
// agent of the stagers queue group.
func (c *Controller) stage(ctx context.Context, job stageJob) {
	rk := releaseKey(job.space, job.app, job.id)
	defer func() {
		c.mu.Lock()
		delete(c.inStage, rk)
		c.mu.Unlock()
	}()
	c.mu.Lock()
	relp := c.releases[rk]
	app := c.apps[model.AppKey{Space: job.space, Name: job.app}]
	if relp == nil || app == nil || app.ReleaseID != job.id || relp.Staged() {
		c.mu.Unlock()
		return // superseded or already done
	}
	rel := *relp
	c.mu.Unlock()

	cacheKey := StagingKey(rel)
	var cached struct {
		Droplet   string `json:"droplet"`
		Buildpack string `json:"buildpack"`
	}
	if found, err := c.kv.Get(ctx, catalog.DropletKey(cacheKey), &cached); err == nil && found && c.cfg.Blobs.Has(cached.Droplet) {
		c.finishStaging(ctx, rk, bus.StageResult{Droplet: cached.Droplet, Buildpack: cached.Buildpack,
			LogTail: []string{"droplet reused: this source was staged before with the same buildpacks and stack"}})
		return
	}

	c.events.Record(model.Event{Kind: model.EventStaging, Space: rel.Space, App: rel.App, Release: rel.ID,
		Message: fmt.Sprintf("staging %s at commit %s", rel.SourcePath, short(rel.Commit))})
	srcDigest, err := c.putSource(ctx, job.snap, rel.SourcePath)
	if err != nil {
		c.failStaging(ctx, rk, fmt.Sprintf("packaging the app source: %v", err), nil)
		return
	}
	req := bus.StageRequest{
		ReleaseID: rel.ID, Space: rel.Space, App: rel.App,
		Source: srcDigest, BlobStore: c.cfg.BlobStoreURL,
		Buildpacks: rel.Buildpacks, Stack: rel.Stack, Command: rel.Run.Command, Env: rel.Run.Env,
		TimeoutSec: int(c.cfg.StagingTimeout / time.Second),
	}
	var res bus.StageResult
	for attempt := 0; ; attempt++ {
		err = bus.Request(ctx, c.cfg.NATS, bus.SubjectStage, req, &res, c.cfg.StagingTimeout+30*time.Second)
		if !errors.Is(err, nats.ErrNoResponders) || attempt >= 60 {
			break
		}
		// No agent listens yet (the platform is starting): wait for one.
		select {
		case <-ctx.Done():
			return
		case <-time.After(2 * time.Second):
		}
	}
	switch {
	case err != nil:
		c.failStaging(ctx, rk, fmt.Sprintf("staging request: %v", err), nil)
	case res.Error != "":
		c.failStaging(ctx, rk, res.Error, res.LogTail)
	default:
		if err := c.kv.Put(ctx, catalog.DropletKey(cacheKey), map[string]string{"droplet": res.Droplet, "buildpack": res.Buildpack}); err != nil {
			c.log.Warn("recording staging cache", "err", err)
		}
		c.finishStaging(ctx, rk, res)
	}
}

// putSource stores a tar of the app's folder at the commit in the blob store.
func (c *Controller) putSource(ctx context.Context, snap *source.Snapshot, path string) (string, error) {
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(snap.WriteTar(ctx, path, pw, SourceExcludes...)) }()
	digest, _, err := c.cfg.Blobs.Put(ctx, pr)
	pr.Close()
	return digest, err
}

// finishStaging records a droplet and, if git still asks for this release,
// makes it the app's current release: the rollout starts.
func (c *Controller) finishStaging(ctx context.Context, rk string, res bus.StageResult) {
	c.mu.Lock()
	defer c.mu.Unlock()
	rel := c.releases[rk]
	if rel == nil {
		return
	}
	rel.State, rel.DropletDigest, rel.Buildpack = model.ReleaseStaged, res.Droplet, res.Buildpack
	rel.Run.Droplet = blobstore.ImageRef(c.cfg.BlobStoreURL, rel.Space, rel.App, res.Droplet)
	rel.StagingLog, rel.Error, rel.StagedAt = res.LogTail, "", time.Now().UTC()
	c.saveRelease(ctx, rel)
	if app := c.apps[model.AppKey{Space: rel.Space, Name: rel.App}]; app != nil && app.ReleaseID == rel.ID && app.CurrentID != rel.ID {
		app.PreviousID, app.CurrentID = app.CurrentID, rel.ID
		c.saveApp(ctx, app)
		c.crashes.Forget(model.AppKey{Space: rel.Space, Name: rel.App})
	}
	c.events.Record(model.Event{Kind: model.EventStaged, Space: rel.Space, App: rel.App, Release: rel.ID,
		Message: fmt.Sprintf("droplet %s ready (buildpack %s)", res.Droplet, res.Buildpack)})
	c.Kick()
}

// failStaging records why a release could not be staged; the app keeps
// running its current release.
func (c *Controller) failStaging(ctx context.Context, rk, msg string, logTail []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	rel := c.releases[rk]
	if rel == nil {
		return
	}
	rel.State, rel.Error = model.ReleaseFailed, msg
	if len(logTail) > 50 {
		logTail = logTail[len(logTail)-50:]
	}
	rel.StagingLog = logTail
	c.saveRelease(ctx, rel)
	text := "staging failed: " + msg
	if len(logTail) > 0 {
		text += "\n" + strings.Join(logTail, "\n")
	}
	c.events.Record(model.Event{Kind: model.EventStagingFailed, Space: rel.Space, App: rel.App, Release: rel.ID, Message: text})
}
