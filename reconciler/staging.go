package reconciler

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/driftless/driftless/bus"
	"github.com/driftless/driftless/internal/ticks"
	"github.com/driftless/driftless/model"
	"github.com/driftless/driftless/reconciler/archive"
	"github.com/driftless/driftless/reconciler/decide"
	"github.com/driftless/driftless/reconciler/store"
)

// stageRequester sends a staging request to one agent of the stagers
// queue group (natsStaging; a fake in tests).
type stageRequester interface {
	Stage(ctx context.Context, req bus.StageRequest, timeout time.Duration) (bus.StageResult, error)
}

// natsStaging asks the agents over NATS (bus.SubjectStage, served by
// agents/stage.go), waiting for one to listen while the platform starts.
type natsStaging struct{ nc *nats.Conn }

// Stage sends req and waits for the result.
func (n natsStaging) Stage(ctx context.Context, req bus.StageRequest, timeout time.Duration) (bus.StageResult, error) {
	var res bus.StageResult
	var err error
	for attempt := 0; ; attempt++ {
		err = bus.Request(ctx, n.nc, bus.SubjectStage, req, &res, timeout)
		if !errors.Is(err, nats.ErrNoResponders) || attempt >= 60 {
			return res, err
		}
		// No agent listens yet (the platform is starting): wait for one.
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(2 * time.Second):
		}
	}
}

// stager turns releases into droplets: the releases waiting to be staged,
// a few workers, the staging cache, and the controller's store to record
// the outcome in. It is the controller's only way to stage.
//
// Its queue has no fixed size: it holds each release once (a release
// queued or staging is not queued again), so it is bounded by the desired
// state. A release that falls out of it unstaged (its droplet could not be
// recorded) is queued again by requeue, on every sync and every
// requeueInterval.
type stager struct {
	c   *Controller
	req stageRequester
	// wake tells an idle worker that pending has a job (capacity 1; a
	// worker that takes a job and leaves more passes the wake on).
	wake    chan struct{}
	mu      sync.Mutex
	pending []stageJob      // FIFO of releases to stage
	inJob   map[string]bool // releases pending or staging, by stageID
	// running counts the jobs being staged; next hands out no more than
	// limit allows.
	running int
	// finished are the stagings waiting to be recorded (finish); commitMu
	// is held by the worker recording them all, in one batch.
	finished []*finishing
	commitMu sync.Mutex
	// commits is, per source name, the last commit whose releases were
	// queued: what requeue stages a release from (when its source tree
	// there is the release's).
	commits map[string]Commit
}

// requeueInterval is how often the releases git asks for that are neither
// staged, failed, pending nor staging are queued again (requeue).
const requeueInterval = 30 * time.Second

// stageJob is a release to stage and the commit its source comes from.
type stageJob struct {
	rel    model.Release
	commit Commit
}

func newStager(c *Controller, req stageRequester) *stager {
	return &stager{c: c, req: req, wake: make(chan struct{}, 1)}
}

func stageID(r model.Release) string { return r.Space + "/" + r.App + "/" + r.ID }

// reset drops the queue: a new term as leader queues again what it needs.
func (s *stager) reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pending = nil
	s.inJob = map[string]bool{}
	s.commits = map[string]Commit{}
}

// queue schedules releases of source for staging from commit, skipping
// those already pending or staging, and returns how many it queued.
func (s *stager) queue(rels []model.Release, source string, commit Commit) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if commit != nil {
		s.commits[source] = commit
	}
	return s.queueLocked(rels, commit)
}

// queueLocked adds releases to pending. Caller holds s.mu.
func (s *stager) queueLocked(rels []model.Release, commit Commit) int {
	n := 0
	for _, rel := range rels {
		id := stageID(rel)
		if s.inJob[id] {
			continue
		}
		s.pending = append(s.pending, stageJob{rel: rel, commit: commit})
		s.inJob[id] = true
		n++
	}
	if n > 0 {
		s.signal()
	}
	return n
}

// signal wakes one idle worker, if none is already woken.
func (s *stager) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// limit is how many stagings may run at once: the staging slots of the
// cells (each agent stages StagingSlots at a time and queues the rest,
// so sending more only makes them wait against their timeout), at least
// one, at most StagingWorkers; StagingWorkers when no cell says.
func (s *stager) limit() int {
	slots := s.c.actual.StagingSlots(time.Now())
	if slots <= 0 {
		return s.c.cfg.StagingWorkers
	}
	return min(slots, s.c.cfg.StagingWorkers)
}

// next takes the oldest pending job, passing the wake on when more wait
// and the limit allows another.
func (s *stager) next() (stageJob, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	limit := s.limit()
	if len(s.pending) == 0 || s.running >= limit {
		return stageJob{}, false
	}
	s.running++
	job := s.pending[0]
	s.pending[0] = stageJob{} // let the release and commit be collected
	s.pending = s.pending[1:]
	if len(s.pending) == 0 {
		s.pending = nil // the backing array goes with the last job
	} else if s.running < limit {
		s.signal()
	}
	return job, true
}

// requeue queues again the releases git asks for (each app's ReleaseID)
// that are not staged, did not fail, and are neither pending nor staging,
// from the last commit queued for their source when the release's source
// is the same there (its tree hash; an image's release needs none). It
// returns how many it queued; it forgets the commits of sources that have
// no app left.
func (s *stager) requeue() int {
	st := s.c.store
	apps := st.Apps()
	s.mu.Lock()
	defer s.mu.Unlock()
	used := make(map[string]bool, len(s.commits))
	n := 0
	for _, app := range apps {
		used[app.Source] = true
		rel := st.Release(app.Key(), app.ReleaseID)
		if rel == nil || rel.Staged() || rel.State == model.ReleaseFailed || s.inJob[stageID(*rel)] {
			continue
		}
		commit := s.commits[app.Source]
		if commit == nil {
			continue
		}
		if rel.Docker == nil {
			exclude := decide.SourceExcludes
			if decide.IsArchiveSource(commit.FS(), rel.SourcePath) {
				exclude = nil // an archive's is its blob hash (decide.Desired)
			}
			tree, err := commit.TreeHash(rel.SourcePath, exclude...)
			if err != nil || tree != rel.SourceTree {
				continue // its source is not at that commit any more: the next commit decides
			}
		}
		n += s.queueLocked([]model.Release{*rel}, commit)
	}
	for source := range s.commits {
		if !used[source] {
			delete(s.commits, source)
		}
	}
	if n > 0 {
		s.c.log.Info("releases queued again for staging", "releases", n)
	}
	return n
}

// requeueLoop runs requeue every requeueInterval until ctx ends.
func (s *stager) requeueLoop(ctx context.Context) {
	ticks.Every(ctx, requeueInterval, func() { s.requeue() })
}

// work stages queued releases until ctx ends.
func (s *stager) work(ctx context.Context) {
	for {
		job, ok := s.next()
		if !ok {
			select {
			case <-ctx.Done():
				return
			case <-s.wake:
			}
			continue
		}
		if ctx.Err() != nil {
			return
		}
		start, key := time.Now(), job.rel.Key()
		pending := !s.c.store.Release(key, job.rel.ID).Staged()
		s.stage(ctx, job)
		if pending && ctx.Err() == nil {
			s.c.metrics.staged(s.c.store.Release(key, job.rel.ID), time.Since(start))
		}
		s.mu.Lock()
		delete(s.inJob, stageID(job.rel))
		s.running--
		if len(s.pending) > 0 {
			s.signal()
		}
		s.mu.Unlock()
	}
}

// stage turns one release into a droplet: from the staging cache when the
// same source, buildpacks and stack were staged before, otherwise by one
// agent of the stagers queue group.
func (s *stager) stage(ctx context.Context, job stageJob) {
	c, key := s.c, job.rel.Key()
	rel := c.store.Release(key, job.rel.ID)
	app, ok := c.store.App(key)
	if rel == nil || !ok || app.ReleaseID != rel.ID || rel.Staged() {
		return // superseded or already done
	}
	c.keepLogs(ctx, rel.Space)
	if rel.Docker != nil {
		s.stageImage(ctx, *rel) // image.go
		return
	}
	cacheKey := decide.StagingKey(*rel)
	cached, found, err := c.store.Cached(ctx, cacheKey)
	if err == nil && found && c.cfg.Blobs.Has(cached.Droplet) {
		s.finish(ctx, *rel, bus.StageResult{Droplet: cached.Droplet, Buildpack: cached.Buildpack, Procfile: cached.Procfile,
			LogTail: []string{"droplet reused: this source was staged before with the same buildpacks and stack"}}, "")
		return
	}

	c.events.Record(model.Event{Kind: model.EventStaging, Space: rel.Space, App: rel.App, Release: rel.ID,
		Message: fmt.Sprintf("staging %s at commit %s", rel.SourcePath, model.ShortCommit(rel.Commit))})
	srcDigest, err := s.putSource(ctx, job.commit, rel.SourcePath)
	if err != nil {
		s.fail(ctx, *rel, fmt.Sprintf("packaging the app source: %v", err), nil)
		return
	}
	req := bus.StageRequest{
		ReleaseID: rel.ID, Space: rel.Space, App: rel.App,
		Source: srcDigest, BlobStore: c.cfg.BlobStoreURL,
		Buildpacks: rel.Buildpacks, Stack: rel.Stack, Command: rel.Run.Command, Env: rel.Run.Env,
		TimeoutSec: int(c.cfg.StagingTimeout / time.Second),
	}
	res, err := s.req.Stage(ctx, req, c.cfg.StagingTimeout+30*time.Second)
	switch {
	case ctx.Err() != nil:
	case err != nil:
		s.fail(ctx, *rel, fmt.Sprintf("staging request: %v", err), nil)
	case res.Error != "":
		s.fail(ctx, *rel, res.Error, res.LogTail)
	default:
		s.finish(ctx, *rel, res, cacheKey)
	}
}

// putSource stores a tar of the app's source at the commit in the blob store.
func (s *stager) putSource(ctx context.Context, commit Commit, path string) (string, error) {
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(writeSource(ctx, commit, path, pw)) }()
	digest, _, err := s.c.cfg.Blobs.Put(ctx, pr)
	pr.Close()
	return digest, err
}

// writeSource writes to w the tar staging sends the buildpacks: the app's
// folder at the commit without decide.SourceExcludes or, for a .jar, .war
// or .zip file (decide.IsArchiveSource), the archive's contents, so that
// buildpacks see the unpacked tree as if it were a folder.
func writeSource(ctx context.Context, commit Commit, path string, w io.Writer) error {
	if !decide.IsArchiveSource(commit.FS(), path) {
		return commit.WriteTar(ctx, path, w, decide.SourceExcludes...)
	}
	f, err := archive.Open(commit.FS(), path)
	if err != nil {
		return fmt.Errorf("commit %s: %w", commit.ID(), err)
	}
	defer f.Close()
	if err := archive.WriteTar(ctx, path, f, f.Size, w); err != nil {
		return fmt.Errorf("commit %s: %w", commit.ID(), err)
	}
	return nil
}

// finishing is one staging to record.
type finishing struct {
	rel      model.Release
	res      bus.StageResult
	cacheKey string // the staging cache's key, "" when it came from there
	done     bool   // recorded (or refused); guarded by stager.commitMu
}

// finish records a droplet (and, with cacheKey, the staging cache's
// entry) and, if git still asks for this release, makes it the app's
// current release: the rollout starts. It returns once that is stored.
// Workers finishing at the same time are recorded together, in as few
// Consul transactions as fit (a group commit: the first to hold commitMu
// records what every worker queued meanwhile), so that recording is not
// one Consul write after another under applyMu, which bounded a commit
// of 1,000 apps by Consul's write latency.
func (s *stager) finish(ctx context.Context, rel model.Release, res bus.StageResult, cacheKey string) {
	f := &finishing{rel: rel, res: res, cacheKey: cacheKey}
	s.mu.Lock()
	s.finished = append(s.finished, f)
	s.mu.Unlock()
	s.commitMu.Lock()
	defer s.commitMu.Unlock()
	if f.done {
		return // recorded by the worker that held commitMu before
	}
	s.mu.Lock()
	batch := s.finished
	s.finished = nil
	s.mu.Unlock()
	s.record(ctx, batch)
}

// record stores a batch of finished stagings and promotes their releases.
// Caller holds commitMu.
func (s *stager) record(ctx context.Context, batch []*finishing) {
	c := s.c
	c.applyMu.Lock()
	defer c.applyMu.Unlock()
	stagings := make([]store.Staging, 0, len(batch))
	apps := map[model.AppKey]model.App{}
	for _, f := range batch {
		f.done = true
		rel, res := f.rel, f.res
		rel.State, rel.DropletDigest, rel.Buildpack = model.ReleaseStaged, res.Droplet, res.Buildpack
		rel.StagingLog, rel.Error, rel.StagedAt = res.LogTail, "", time.Now().UTC()
		rel.ProcfileCommands = res.Procfile
		f.rel = rel
		st := store.Staging{Release: rel, CacheKey: f.cacheKey,
			Cached: store.Staged{Droplet: res.Droplet, Buildpack: res.Buildpack, Procfile: res.Procfile}}
		app, ok := apps[rel.Key()]
		if !ok {
			app, ok = c.store.App(rel.Key())
		}
		if ok {
			if next, promoted := decide.Promote(app, &rel); promoted {
				apps[rel.Key()] = next
				st.App = &next
			}
		}
		stagings = append(stagings, st)
	}
	failed, err := c.store.PutStagings(ctx, stagings)
	refused := map[string]bool{}
	for _, st := range failed {
		// The droplet is in the blob store: the next commit, sync or
		// requeue stages the release again (from the cache when its
		// entry was stored).
		c.storeFailed(st.Release.Key(), "recording droplet "+st.Release.DropletDigest, err)
		refused[stageID(st.Release)] = true
	}
	for _, st := range stagings {
		if refused[stageID(st.Release)] {
			continue
		}
		if st.App != nil {
			c.crashes.Forget(st.Release.Key())
		}
		c.events.Record(model.Event{Kind: model.EventStaged, Space: st.Release.Space, App: st.Release.App, Release: st.Release.ID,
			Message: fmt.Sprintf("droplet %s ready (buildpack %s)", st.Release.DropletDigest, st.Release.Buildpack)})
	}
	c.Kick()
}

// fail records why a release could not be staged; the app keeps running
// its current release.
func (s *stager) fail(ctx context.Context, rel model.Release, msg string, logTail []string) {
	c := s.c
	if len(logTail) > 50 {
		logTail = logTail[len(logTail)-50:]
	}
	rel.State, rel.Error, rel.StagingLog = model.ReleaseFailed, msg, logTail
	if err := c.store.PutRelease(ctx, rel); err != nil {
		c.storeFailed(rel.Key(), "recording a failed staging", err)
	}
	text := "staging failed: " + msg
	if len(logTail) > 0 {
		text += "\n" + strings.Join(logTail, "\n")
	}
	c.events.Record(model.Event{Kind: model.EventStagingFailed, Space: rel.Space, App: rel.App, Release: rel.ID, Message: text})
}
