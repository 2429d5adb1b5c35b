// Package reconciler is the controller: it watches git sources
// (reconciler/source) and applies each commit (apply.go) as
// reconciler/decide decides — the desired state it asks for, judged by the
// policies — into the desired-state store (reconciler/store, Consul KV);
// it stages releases into droplets (staging.go, the stager), and runs the
// convergence loop (converge.go) that plans (reconciler/plan) and carries
// out through its Executor (reconciler/executor, over NATS) the actions
// that make the cells run what git asks for. What it knows is read through
// read.go; the API makes its views of that.
package reconciler

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	consul "github.com/hashicorp/consul/api"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/driftless/driftless/blobstore"
	"github.com/driftless/driftless/bus"
	"github.com/driftless/driftless/catalog"
	"github.com/driftless/driftless/model"
	"github.com/driftless/driftless/policies"
	"github.com/driftless/driftless/reconciler/decide"
	"github.com/driftless/driftless/reconciler/executor"
	"github.com/driftless/driftless/reconciler/plan"
	"github.com/driftless/driftless/reconciler/source"
	"github.com/driftless/driftless/reconciler/store"
	"github.com/driftless/driftless/secrets"
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
	// Journal keeps the spaces' log lines; nil keeps none.
	Journal Journal
	// Drains forwards apps' lines to the syslog drains of their bindings
	// while this controller leads (drains.go); nil forwards none.
	Drains Drains
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
	// StagingWorkers is the most stagings that run at once (default 32);
	// fewer when the cells' staging slots, which their heartbeats give,
	// are fewer.
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
	// PreviewIdle is how long a preview's app may go without a request
	// before it sleeps (default DefaultPreviewIdle; negative: never);
	// PreviewCheckInterval how often idle and expired previews are looked
	// for (default 10 s).
	PreviewIdle          time.Duration
	PreviewCheckInterval time.Duration
	// Forge receives commit statuses and lists open pull requests
	// (report.go, poll.go); nil for none. PullRequestPoll is how often
	// the open pull requests are listed (default 1 min).
	Forge           Forge
	PullRequestPoll time.Duration
	// Brokers are the service brokers the service instances of
	// services.yml are provisioned through (services.go).
	Brokers []ServiceBroker
	// Keys seal binding credentials and decrypt user-provided ones
	// (bindings.go), and seal the releases' env in the store (required).
	Keys *secrets.Keys
	// RoutesURL is how users reach the routes: its scheme and port (e.g.
	// "http://127.0.0.1:8080") make the URLs of the commit statuses
	// (default "http://").
	RoutesURL string
	// DockerPasswords are the registry passwords of docker images
	// (image.go); never logged or shown.
	DockerPasswords DockerPasswords
	// Metrics registers the controller's metrics (metrics.go); nil for
	// none.
	Metrics prometheus.Registerer
}

func (c *Config) defaults() {
	if c.ConvergeInterval == 0 {
		c.ConvergeInterval = 2 * time.Second
	}
	if c.LostAfter == 0 {
		c.LostAfter = DefaultLostAfter
	}
	if c.Warmup == 0 {
		c.Warmup = 3 * time.Second
	}
	if c.StagingTimeout == 0 {
		c.StagingTimeout = model.DefaultStagingTimeout
	}
	if c.StagingWorkers == 0 {
		c.StagingWorkers = 32
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
	if c.PreviewIdle == 0 {
		c.PreviewIdle = DefaultPreviewIdle
	}
	if c.PreviewCheckInterval == 0 {
		c.PreviewCheckInterval = 10 * time.Second
	}
	if c.PullRequestPoll == 0 {
		c.PullRequestPoll = time.Minute
	}
}

// DefaultLostAfter is how long a cell may stay silent before its instances
// are started elsewhere.
const DefaultLostAfter = 10 * time.Second

// Executor carries plan actions out on the cells (reconciler/executor
// over NATS; a fake in tests).
type Executor interface {
	Apply(ctx context.Context, actions []plan.Action) []executor.Result
}

// Controller is the driftless controller. It decides with reconciler/decide
// and reconciler/plan, stores desired state in reconciler/store, stages with
// its stager and acts through its Executor.
//
// Locks: store has its own; applyMu serialises the application of commits
// (held across policy evaluation and store writes, never taken by reads);
// mu guards the small state below it and is never held across I/O.
type Controller struct {
	cfg    Config
	log    *slog.Logger
	store  *store.Store
	actual *Actual
	events *Events
	exec   Executor
	stager *stager

	metrics *controllerMetrics
	sources []*sourceEntry
	kick    chan struct{}
	applyMu sync.Mutex
	// storeRetry is how long a commit whose desired state could not be
	// stored waits before it is applied again.
	storeRetry time.Duration

	mu       sync.Mutex
	role     string
	unplaced map[model.AppKey][]plan.Unplaced
	started  time.Time
	crashes  *crashTracker
	// policy is the policy set in force, policySrc its source.
	policy       *policies.Set
	policySrc    *source.Source
	policyStatus model.PolicyStatus
	// lostCells remembers which cells were lost at the last convergence,
	// for cell-lost and cell-returned events.
	lostCells map[string]bool
	wake      *time.Timer
	// previews are the pull requests' previews (previews.go).
	previews previewSet
	// repos are how the forge names the sources' repositories, by
	// normalised URL; serving the commits whose status awaits their apps
	// serving, by source name (report.go).
	repos   map[string]model.RepoRef
	serving map[string]servingWait
	// activity is when each app last got a request through a router
	// (sleep.go).
	activity map[model.AppKey]time.Time
	// svc is the service converger's state (services.go); waiting says,
	// per app, which binding its instances wait for (bindings.go).
	svc     serviceWork
	waiting map[model.AppKey]string
	// journalWarned is when keeping a space's logs last failed (journal.go).
	journalWarned map[string]time.Time
}

type sourceEntry struct {
	name  string
	src   *source.Source // nil in unit tests
	space string
	org   string
	// status, last (the source's last commit seen, checked again when the
	// policies change) and retry are guarded by Controller.mu.
	status model.SourceStatus
	last   Commit
	retry  *time.Timer
	// preview is the pull request a preview's entry deploys (previews.go);
	// nil for a configured source. Set under Controller.applyMu.
	preview *decide.Preview
}

// Commit is one commit of a source as the controller uses it: its files
// and tree hashes (decide.Tree), its hash, and a tar of a folder for
// staging. reconciler/source.Snapshot implements it.
type Commit interface {
	decide.Tree
	ID() string
	WriteTar(ctx context.Context, path string, w io.Writer, exclude ...string) error
}

// New checks the configuration and prepares a controller; Run starts it.
func New(cfg Config) (*Controller, error) {
	cfg.defaults()
	if cfg.NATS == nil || cfg.Consul == nil || cfg.Blobs == nil || cfg.BlobStoreURL == "" {
		return nil, errors.New("controller needs NATS, Consul, a blob store and its URL")
	}
	st, err := store.New(catalog.NewKV(cfg.Consul), cfg.Keys)
	if err != nil {
		return nil, fmt.Errorf("creating the controller's store: %w", err)
	}
	c := newController(cfg, st, executor.New(cfg.NATS), natsStaging{cfg.NATS})
	if c.metrics, err = newControllerMetrics(cfg.Metrics, c); err != nil {
		return nil, err
	}
	if cfg.Policies == nil {
		set, err := policies.Default(context.Background())
		if err != nil {
			return nil, fmt.Errorf("built-in policies: %w", err)
		}
		c.policy = set
		c.policyStatus = model.PolicyStatus{Source: "built-in", Files: set.Files}
	}
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
		c.policyStatus = model.PolicyStatus{Source: src.Name(), URL: src.URL(), Files: c.policy.Files}
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
		c.sources = append(c.sources, &sourceEntry{name: src.Name(), src: src, space: sc.Space, org: sc.Org,
			status: model.SourceStatus{Name: src.Name(), URL: src.URL(), Space: sc.Space}})
	}
	return c, nil
}

// newController assembles a controller from its parts (unit tests give
// fakes of the store's KV, the executor and the stagers).
func newController(cfg Config, st *store.Store, exec Executor, stagers stageRequester) *Controller {
	c := &Controller{
		cfg:        cfg,
		log:        cfg.Log.With("component", "controller"),
		store:      st,
		actual:     NewActual(cfg.LostAfter),
		events:     NewEvents(1000, cfg.NATS, cfg.Log.With("component", "events")),
		exec:       exec,
		kick:       make(chan struct{}, 1),
		role:       RoleStandby,
		storeRetry: storeRetry,
		policy:     cfg.Policies,
		svc: serviceWork{kick: make(chan struct{}, 1), busy: map[model.ServiceKey]bool{},
			retryAt: map[model.ServiceKey]time.Time{}},
	}
	if cfg.Policies != nil {
		c.policyStatus = model.PolicyStatus{Source: "built-in", Files: cfg.Policies.Files}
	}
	c.stager = newStager(c, stagers)
	c.reset()
	return c
}

// reset forgets everything learnt in a term as leader: the next term
// starts from what is stored in Consul and what the cells report.
func (c *Controller) reset() {
	c.actual.Reset() // the pointer stays: the API reads it at any time
	c.stager.reset()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.unplaced = make(map[model.AppKey][]plan.Unplaced)
	c.crashes = newCrashTracker(c.cfg.Crash)
	c.lostCells = make(map[string]bool)
	c.journalWarned = make(map[string]time.Time)
	c.activity = make(map[model.AppKey]time.Time)
	c.serving = make(map[string]servingWait)
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
			// A term that cannot start (the desired state does not load,
			// e.g. keys that do not open it) waits before it tries again,
			// leaving the lock to a controller that can lead.
			c.log.Error("term as leader ended", "err", err)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(2 * time.Second):
			}
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
	if err := c.restorePreviews(ctx); err != nil {
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
		wg.Go(func() { c.stager.work(ctx) })
	}
	wg.Go(func() { c.stager.requeueLoop(ctx) })
	for _, se := range c.sources {
		wg.Go(func() {
			if err := se.src.Run(ctx, func(ctx context.Context, snap *source.Snapshot) { c.apply(ctx, se, snap) }); err != nil && ctx.Err() == nil {
				c.log.Error("source stopped", "source", se.src.Name(), "err", err)
			}
		})
	}
	if c.policySrc != nil {
		wg.Go(func() {
			if err := c.policySrc.Run(ctx, func(ctx context.Context, snap *source.Snapshot) { c.applyPolicies(ctx, snap) }); err != nil && ctx.Err() == nil {
				c.log.Error("policy source stopped", "err", err)
			}
		})
	}
	wg.Go(func() { c.convergeLoop(ctx) })
	wg.Go(func() { c.gcLoop(ctx, c.cfg.GCInterval) })
	wg.Go(func() { c.previewLoop(ctx) })
	wg.Go(func() { c.serviceLoop(ctx) })
	wg.Go(func() { c.drainLoop(ctx) })
	if c.cfg.Forge != nil {
		wg.Go(func() { c.pollLoop(ctx) })
	}
	wg.Wait()
	c.stopRetries()
	return nil
}

// subscribe listens to heartbeats and instance changes.
func (c *Controller) subscribe() ([]*nats.Subscription, error) {
	hb, err := c.cfg.NATS.Subscribe(bus.HeartbeatWildcard, func(m *nats.Msg) {
		var h bus.CellHeartbeat
		if err := bus.Decode(m, &h); err != nil {
			c.log.Warn("bad heartbeat", "err", err)
			return
		}
		if !c.fromCell(m, h.CellID) {
			return
		}
		if c.actual.Heartbeat(h, time.Now()) {
			c.Kick()
		}
	})
	if err != nil {
		return nil, fmt.Errorf("subscribing to heartbeats: %w", err)
	}
	ch, err := c.cfg.NATS.Subscribe(bus.InstancesWildcard, func(m *nats.Msg) {
		var ic bus.InstanceChanged
		if err := bus.Decode(m, &ic); err != nil {
			c.log.Warn("bad instance change", "err", err)
			return
		}
		if !c.fromCell(m, ic.CellID) {
			return
		}
		c.actual.Changed(ic, time.Now())
		if in := ic.Instance; in.State == model.StateRunning {
			ev := model.Event{Kind: model.EventStarted, Space: in.Space, App: in.App, Instance: in.GUID, Index: in.Index,
				Process: in.Process, Cell: ic.CellID, Release: in.ReleaseID, Message: "instance is healthy: " + in.Reason}
			if in.NotReady {
				ev.Kind, ev.Message = model.EventNotReady, "instance fails its readiness check: out of the routers until it passes"
			}
			c.events.Record(ev)
		}
		c.Kick()
	})
	if err != nil {
		_ = hb.Unsubscribe()
		return nil, fmt.Errorf("subscribing to instance changes: %w", err)
	}
	sleep, err := c.subscribeSleep()
	if err != nil {
		_ = hb.Unsubscribe()
		_ = ch.Unsubscribe()
		return nil, err
	}
	return append([]*nats.Subscription{hb, ch}, sleep...), nil
}

// fromCell reports whether a message on a cell's subject speaks for that
// cell: NATS lets a cell publish on its own subjects only, so a body
// naming another cell is a cell impersonating another, dropped with a
// warning.
func (c *Controller) fromCell(m *nats.Msg, cellID string) bool {
	if subj := bus.SubjectCell(m.Subject); subj == "" || subj != bus.Token(cellID) {
		c.log.Warn("dropped a message from a cell speaking for another", "subject", m.Subject, "cell_id", cellID)
		return false
	}
	return true
}
