// Package reconciler is the controller: it watches git sources, turns each
// commit into desired state (BuildDesired), stages releases into droplets
// (staging.go), and runs the convergence loop that plans (reconciler/plan)
// and applies (reconciler/executor) the actions that make the cells run
// what git asks for. Its state lives in Consul KV (catalog keys).
package reconciler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	consul "github.com/hashicorp/consul/api"
	"github.com/nats-io/nats.go"

	"github.com/driftless/driftless/api"
	"github.com/driftless/driftless/blobstore"
	"github.com/driftless/driftless/bus"
	"github.com/driftless/driftless/catalog"
	"github.com/driftless/driftless/model"
	"github.com/driftless/driftless/policies"
	"github.com/driftless/driftless/reconciler/executor"
	"github.com/driftless/driftless/reconciler/plan"
	"github.com/driftless/driftless/reconciler/source"
)

// SourceConfig is a git source and the space its apps belong to.
type SourceConfig struct {
	source.Config
	Space string
	// Org is the organisation of the space ("" for none), for org quotas.
	Org string
}

// Config configures a controller.
type Config struct {
	Sources []SourceConfig
	// Domain is the default domain of app routes.
	Domain string
	NATS   *nats.Conn
	Consul *consul.Client
	// Blobs is the blob store holding app sources and droplets, and
	// BlobStoreURL where cells reach it ("http://127.0.0.1:7070").
	Blobs        *blobstore.Store
	BlobStoreURL string
	// ConvergeInterval is how often the controller converges without a
	// trigger (default 2 s).
	ConvergeInterval time.Duration
	// LostAfter is how long a cell may stay silent before its instances are
	// started elsewhere (default 10 s).
	LostAfter time.Duration
	// Warmup is how long the controller listens to heartbeats after it
	// starts before acting, so that it never acts on a partial view of what
	// runs (default 3 s: more than two heartbeat intervals).
	Warmup time.Duration
	// StagingTimeout bounds one staging (default 15 min).
	StagingTimeout time.Duration
	// StagingWorkers is how many stagings run at once (default 2).
	StagingWorkers int
	// GCInterval is how often old releases and unused blobs are deleted
	// (default 10 min).
	GCInterval time.Duration
	// Crash says when crashed instances restart (zero fields: Cloud
	// Foundry's defaults, plan.DefaultCrashPolicy).
	Crash plan.CrashPolicy
	// Policies are in force until the policy source has a commit; nil
	// means the built-in bundle (policies.Default).
	Policies *policies.Set
	// PolicySource is the git source of the platform's policies (*.rego
	// and quotas.yml at its root); nil for none.
	PolicySource *source.Config
	// ID names this controller among the controllers competing for the
	// leader lock (default: host name and process id).
	ID  string
	Log *slog.Logger
}

func (c *Config) defaults() {
	if c.ConvergeInterval == 0 {
		c.ConvergeInterval = 2 * time.Second
	}
	if c.LostAfter == 0 {
		c.LostAfter = 10 * time.Second
	}
	if c.Warmup == 0 {
		c.Warmup = 3 * time.Second
	}
	if c.StagingTimeout == 0 {
		c.StagingTimeout = model.DefaultStagingTimeout
	}
	if c.StagingWorkers == 0 {
		c.StagingWorkers = 2
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	if c.ID == "" {
		host, _ := os.Hostname()
		c.ID = fmt.Sprintf("%s-%d", host, os.Getpid())
	}
	c.Crash = c.Crash.WithDefaults()
	if c.GCInterval == 0 {
		c.GCInterval = 10 * time.Minute
	}
}

// Controller is the driftless controller.
type Controller struct {
	cfg    Config
	log    *slog.Logger
	kv     *catalog.KV
	actual *Actual
	events *Events
	exec   *executor.Executor

	sources []*sourceEntry
	stageQ  chan stageJob
	kick    chan struct{}

	mu       sync.Mutex
	role     string
	apps     map[model.AppKey]*model.App
	releases map[string]*model.Release // by releaseKey
	unplaced map[model.AppKey][]plan.Unplaced
	inStage  map[string]bool // releaseKey of stagings queued or running
	started  time.Time
	crashes  *crashTracker
	// policy is the policy set in force, policySrc its source.
	policy       *policies.Set
	policySrc    *source.Source
	policyStatus api.Policies
	// lostCells remembers which cells were lost at the last convergence,
	// for cell-lost and cell-returned events.
	lostCells map[string]bool
	wake      *time.Timer
}

type sourceEntry struct {
	src    *source.Source
	space  string
	org    string
	status model.SourceStatus
	// last is the source's last commit seen, checked again when the
	// policies change. Guarded by Controller.mu.
	last *source.Snapshot
}

// New checks the configuration and prepares a controller; Run starts it.
func New(cfg Config) (*Controller, error) {
	cfg.defaults()
	if cfg.NATS == nil || cfg.Consul == nil || cfg.Blobs == nil || cfg.BlobStoreURL == "" {
		return nil, errors.New("controller needs NATS, Consul, a blob store and its URL")
	}
	c := &Controller{
		cfg:    cfg,
		log:    cfg.Log.With("component", "controller"),
		kv:     catalog.NewKV(cfg.Consul),
		actual: NewActual(cfg.LostAfter),
		events: NewEvents(1000, cfg.NATS, cfg.Log.With("component", "events")),
		exec:   executor.New(cfg.NATS),
		kick:   make(chan struct{}, 1),
		role:   RoleStandby,
	}
	c.reset()
	if cfg.Policies == nil {
		set, err := policies.Default(context.Background())
		if err != nil {
			return nil, fmt.Errorf("built-in policies: %w", err)
		}
		cfg.Policies = set
		c.policyStatus = api.Policies{Source: "built-in"}
	}
	c.policy = cfg.Policies
	c.policyStatus.Files = cfg.Policies.Files
	if cfg.PolicySource != nil {
		pc := *cfg.PolicySource
		if pc.Log == nil {
			pc.Log = cfg.Log.With("component", "source", "source", pc.Name)
		}
		src, err := source.New(pc)
		if err != nil {
			return nil, fmt.Errorf("policy source: %w", err)
		}
		c.policySrc = src
		c.policyStatus = api.Policies{Source: src.Name(), URL: src.URL(), Files: cfg.Policies.Files}
	}
	names := map[string]bool{}
	for _, sc := range cfg.Sources {
		if sc.Log == nil {
			sc.Log = cfg.Log.With("component", "source", "source", sc.Name)
		}
		src, err := source.New(sc.Config)
		if err != nil {
			return nil, fmt.Errorf("source %q: %w", sc.Name, err)
		}
		if names[src.Name()] {
			return nil, fmt.Errorf("two sources are named %q", src.Name())
		}
		names[src.Name()] = true
		c.sources = append(c.sources, &sourceEntry{src: src, space: sc.Space, org: sc.Org,
			status: model.SourceStatus{Name: src.Name(), URL: src.URL(), Space: sc.Space}})
	}
	return c, nil
}

// reset forgets everything learnt in a term as leader: the next term
// starts from what is stored in Consul and what the cells report.
func (c *Controller) reset() {
	c.actual.Reset() // the pointer stays: the API reads it at any time
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stageQ = make(chan stageJob, 1024)
	c.apps = make(map[model.AppKey]*model.App)
	c.releases = make(map[string]*model.Release)
	c.unplaced = make(map[model.AppKey][]plan.Unplaced)
	c.inStage = make(map[string]bool)
	c.crashes = newCrashTracker(c.cfg.Crash)
	c.lostCells = make(map[string]bool)
}

// Run competes for the leader lock and, while it holds it, acts: it loads
// the stored desired state, listens to the cells, watches the sources and
// converges. Losing the lock stops all of that until the lock is won
// again. Run returns when ctx ends, after giving the lock up.
func (c *Controller) Run(ctx context.Context) error {
	for {
		l, err := c.lead(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			c.log.Warn("leader election", "err", err)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(2 * time.Second):
			}
			continue
		}
		err = c.term(ctx, l)
		l.release()
		c.setRole(RoleStandby)
		if ctx.Err() != nil {
			return err
		}
		if err != nil {
			c.log.Error("term as leader ended", "err", err)
		}
		c.log.Warn("leadership lost: standing by")
	}
}

// term is one period as leader. It ends when ctx ends or the lock is lost.
func (c *Controller) term(ctx context.Context, l *leadership) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-l.lost:
			cancel()
		case <-ctx.Done():
		}
	}()
	c.reset()
	if err := c.load(ctx); err != nil {
		return err
	}
	c.mu.Lock()
	c.started = time.Now()
	c.role = RoleLeader
	c.mu.Unlock()
	c.events.Record(model.Event{Kind: model.EventLeader, Message: fmt.Sprintf("controller %s leads; acting in %s, once the cells have reported", c.cfg.ID, c.cfg.Warmup)})

	subs, err := c.subscribe()
	if err != nil {
		return err
	}
	defer func() {
		for _, s := range subs {
			_ = s.Unsubscribe()
		}
	}()

	var wg sync.WaitGroup
	for range c.cfg.StagingWorkers {
		wg.Go(func() { c.stagingWorker(ctx) })
	}
	for _, se := range c.sources {
		wg.Go(func() {
			if err := se.src.Run(ctx, func(ctx context.Context, snap *source.Snapshot) { c.apply(ctx, se, snap) }); err != nil && ctx.Err() == nil {
				c.log.Error("source stopped", "source", se.src.Name(), "err", err)
			}
		})
	}
	if c.policySrc != nil {
		wg.Go(func() {
			if err := c.policySrc.Run(ctx, c.applyPolicies); err != nil && ctx.Err() == nil {
				c.log.Error("policy source stopped", "err", err)
			}
		})
	}
	wg.Go(func() { c.convergeLoop(ctx) })
	wg.Go(func() { c.gcLoop(ctx, c.cfg.GCInterval) })
	wg.Wait()
	return nil
}

// subscribe listens to heartbeats and instance changes.
func (c *Controller) subscribe() ([]*nats.Subscription, error) {
	hb, err := c.cfg.NATS.Subscribe(bus.SubjectHeartbeat, func(m *nats.Msg) {
		var h bus.CellHeartbeat
		if err := bus.Decode(m, &h); err != nil {
			c.log.Warn("bad heartbeat", "err", err)
			return
		}
		if c.actual.Heartbeat(h, time.Now()) {
			c.Kick()
		}
	})
	if err != nil {
		return nil, fmt.Errorf("subscribing to heartbeats: %w", err)
	}
	ch, err := c.cfg.NATS.Subscribe(bus.SubjectInstanceChanged, func(m *nats.Msg) {
		var ic bus.InstanceChanged
		if err := bus.Decode(m, &ic); err != nil {
			c.log.Warn("bad instance change", "err", err)
			return
		}
		c.actual.Changed(ic, time.Now())
		if in := ic.Instance; in.State == model.StateRunning {
			c.events.Record(model.Event{Kind: model.EventStarted, Space: in.Space, App: in.App, Instance: in.GUID,
				Index: in.Index, Cell: ic.CellID, Release: in.ReleaseID, Message: "instance is healthy: " + in.Reason})
		}
		c.Kick()
	})
	if err != nil {
		_ = hb.Unsubscribe()
		return nil, fmt.Errorf("subscribing to instance changes: %w", err)
	}
	return []*nats.Subscription{hb, ch}, nil
}

// Kick asks for a convergence as soon as possible.
func (c *Controller) Kick() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

func (c *Controller) convergeLoop(ctx context.Context) {
	t := time.NewTicker(c.cfg.ConvergeInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-c.kick:
		}
		c.converge(ctx)
	}
}

// converge plans once and applies the plan.
func (c *Controller) converge(ctx context.Context) {
	now := time.Now()
	c.mu.Lock()
	if now.Sub(c.started) < c.cfg.Warmup {
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()

	insts, cells := c.actual.Snapshot(now)
	for _, cr := range c.crashes.Observe(insts, now) {
		c.recordCrash(cr)
	}
	c.noteCells(insts, cells)
	c.mu.Lock()
	apps := c.planApps(now)
	c.mu.Unlock()
	p := plan.Compute(plan.Input{Apps: apps, Instances: insts, Cells: cells, Now: now})
	c.recordUnplaced(p.Unplaced)
	for _, rb := range p.Rollbacks {
		c.rollBack(ctx, rb)
	}
	if !p.NextCheck.IsZero() {
		c.wakeAt(p.NextCheck)
	}
	if len(p.Actions) == 0 && len(p.Rollbacks) == 0 {
		return
	}
	for _, r := range c.exec.Apply(ctx, p.Actions) {
		c.applied(r)
	}
	c.Kick() // look again soon: replies may allow the next rollout step
}

// wakeAt asks for a convergence at t (the end of a crash backoff).
func (c *Controller) wakeAt(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.wake != nil {
		c.wake.Stop()
	}
	c.wake = time.AfterFunc(time.Until(t)+10*time.Millisecond, c.Kick)
}

// planApps turns the desired state into planner input. Caller holds c.mu.
func (c *Controller) planApps(now time.Time) []plan.App {
	out := make([]plan.App, 0, len(c.apps))
	for key, a := range c.apps {
		pa := plan.App{Space: key.Space, Name: key.Name, Instances: a.Instances, RestartAt: c.crashes.RestartAt(key)}
		if rel := c.releases[releaseKey(key.Space, key.Name, a.CurrentID)]; rel.Staged() {
			pa.Release = &plan.Release{ID: rel.ID, Commit: rel.Commit, Run: rel.Run}
			// Cells fetch the droplet from this controller's blob store,
			// whichever controller staged it.
			pa.Release.Run.Droplet = blobstore.ImageRef(c.cfg.BlobStoreURL, rel.Space, rel.App, rel.DropletDigest)
			pa.Release.Run.DropletPlainHTTP = strings.HasPrefix(c.cfg.BlobStoreURL, "http://")
		}
		out = append(out, pa)
	}
	return out
}

// applied records the outcome of one action.
func (c *Controller) applied(r executor.Result) {
	a := r.Action
	ev := model.Event{Space: a.Instance.Space, App: a.Instance.App, Instance: a.Instance.GUID,
		Index: a.Instance.Index, Cell: a.Cell, Release: a.Instance.ReleaseID}
	if r.Err != nil {
		ev.Kind, ev.Message = model.EventActionFailed, r.Err.Error()
		c.events.Record(ev)
		return
	}
	switch a.Kind {
	case plan.Start:
		c.actual.Accepted(a.Cell, r.Reply, model.InstanceStatus{InstanceRef: a.Instance, State: model.StateStarting,
			MemoryMB: a.Run.MemoryMB, DiskMB: a.Run.DiskMB, Since: time.Now()})
		ev.Kind, ev.Message = model.EventPlaced, "placed on cell "+a.Cell+": "+a.Reason
		switch a.Cause {
		case plan.CauseEvacuate:
			ev.Kind = model.EventEvacuated
		case plan.CauseRestart:
			ev.Kind = model.EventRestarted
		}
	case plan.Stop:
		c.actual.Accepted(a.Cell, r.Reply, model.InstanceStatus{InstanceRef: a.Instance, State: model.StateStopping, Since: time.Now()})
		ev.Kind, ev.Message = model.EventStopped, "stopping instance: "+a.Reason
	}
	c.events.Record(ev)
}

// recordCrash records a newly seen crash and, when its restart waits, the
// backoff.
func (c *Controller) recordCrash(cr Crash) {
	in := cr.Instance
	ev := model.Event{Kind: model.EventCrashed, Space: in.Space, App: in.App, Instance: in.GUID, Index: in.Index,
		Cell: cr.Cell, Release: in.ReleaseID,
		Message: fmt.Sprintf("instance crashed (exit status %d, crash %d in a row): %s", in.ExitStatus, cr.Record.Count, in.Reason)}
	c.events.Record(ev)
	if cr.Delay > 0 {
		ev.Kind, ev.Instance = model.EventBackoff, ""
		ev.Message = fmt.Sprintf("index %d crashed %d times in a row: next restart in %s", in.Index, cr.Record.Count, cr.Delay.Round(time.Second))
		c.events.Record(ev)
	}
}

// noteCells records cells that were lost or came back since the last look.
func (c *Controller) noteCells(insts []plan.Instance, cells []plan.Cell) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, cell := range cells {
		switch {
		case cell.Lost && !c.lostCells[cell.ID]:
			c.lostCells[cell.ID] = true
			n := 0
			for _, in := range insts {
				if in.Cell == cell.ID && (in.State == model.StateRunning || in.State == model.StateStarting) {
					n++
				}
			}
			c.events.Record(model.Event{Kind: model.EventCellLost, Cell: cell.ID,
				Message: fmt.Sprintf("no heartbeat from cell %s for %s: its %d instance(s) are placed elsewhere", cell.ID, c.cfg.LostAfter, n)})
		case !cell.Lost && c.lostCells[cell.ID]:
			delete(c.lostCells, cell.ID)
			c.events.Record(model.Event{Kind: model.EventCellBack, Cell: cell.ID,
				Message: "cell " + cell.ID + " reports again: duplicates of instances placed elsewhere are stopped"})
		}
	}
}

// rollBack abandons a release whose instances never became healthy: the
// release is marked failed (git asking for it again does nothing until a
// new commit changes it) and the app goes back to the release still serving.
func (c *Controller) rollBack(ctx context.Context, rb plan.Rollback) {
	c.mu.Lock()
	defer c.mu.Unlock()
	app := c.apps[rb.App]
	if app == nil || app.CurrentID != rb.Release {
		return
	}
	to := rb.To
	if r := c.releases[releaseKey(rb.App.Space, rb.App.Name, to)]; !r.Staged() {
		to = app.PreviousID
	}
	if r := c.releases[releaseKey(rb.App.Space, rb.App.Name, to)]; !r.Staged() {
		c.log.Warn("cannot roll back: no staged release to go back to", "app", rb.App, "release", rb.Release)
		return
	}
	if rel := c.releases[releaseKey(rb.App.Space, rb.App.Name, rb.Release)]; rel != nil {
		rel.State, rel.Error = model.ReleaseFailed, "rolled back: "+rb.Reason
		c.saveRelease(ctx, rel)
	}
	app.CurrentID, app.PreviousID = to, ""
	c.saveApp(ctx, app)
	c.crashes.Forget(rb.App)
	c.events.Record(model.Event{Kind: model.EventRolledBack, Space: rb.App.Space, App: rb.App.Name, Release: rb.Release,
		Message: fmt.Sprintf("release %s rolled back to %s: %s", rb.Release, to, rb.Reason)})
	c.Kick()
}

// recordUnplaced remembers which instances fit nowhere, with an event the
// first time each does.
func (c *Controller) recordUnplaced(us []plan.Unplaced) {
	byApp := make(map[model.AppKey][]plan.Unplaced)
	for _, u := range us {
		byApp[u.App] = append(byApp[u.App], u)
	}
	c.mu.Lock()
	prev := c.unplaced
	c.unplaced = byApp
	c.mu.Unlock()
	for key, list := range byApp {
		if len(prev[key]) != len(list) {
			c.events.Record(model.Event{Kind: model.EventUnplaced, Space: key.Space, App: key.Name,
				Message: fmt.Sprintf("%d instance(s) cannot be placed: %s", len(list), list[0].Reason)})
		}
	}
}

// Events returns the recorded events, optionally of one app.
func (c *Controller) Events(space, app string) []model.Event { return c.events.List(space, app) }

func releaseKey(space, app, id string) string { return space + "/" + app + "/" + id }
