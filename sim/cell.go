// Package sim simulates cells for benchmarks and scale tests, and for
// nothing else: a hollow cell (as kubemark's hollow nodes) joins a
// controller through the real NATS and Consul and behaves as a cell agent
// on the wire, with no containers behind it.
//
// A hollow cell, as its agent would:
//   - connects to NATS as its own identity (role cell, its cell id), so
//     that the server's per-cell permissions (bus.Permissions) hold;
//   - sends a bus.CellHeartbeat on bus.HeartbeatSubject every
//     HeartbeatInterval and, on its own clock (CellRenewInterval), renews
//     its liveness in Consul, a session holding its key
//     (agents.Registry.RenewCell, catalog.Presence; taken again when
//     gone);
//   - answers bus.VerbStart and bus.VerbStop with a bus.Reply carrying its
//     boot id and generation; an accepted instance is STARTING at once and
//     RUNNING after StartLatency, each change sent on
//     bus.InstancesSubject;
//   - registers each RUNNING instance in Consul through the agent's own
//     registry (agents.NewConsulRegistry: the app's service, tags, meta
//     and routes, catalog.InstanceOps, in the cell's batched transactions,
//     catalog.Writer) at
//     Address and a port of its Port function, as a process-type instance
//     (no check), registers again every RenewInterval those
//     missing from Consul (as the agent's registry sync does), and
//     deregisters it on stop;
//   - optionally (Stage) answers staging requests (bus.SubjectStage, queue
//     group bus.QueueStagers) after StageLatency with a made-up droplet
//     digest, so that a controller's staging path runs without buildpacks.
//
// It does not pull droplets, run processes, probe health, ship logs,
// enforce network policy, crash, adopt instances after a restart, drain
// before a stop, or report usage. Ending its Run (killing the process) is
// a cell lost: heartbeats stop and its session lapses, which takes its
// instances out of the routers; nothing is deregistered.
package sim

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/driftless/driftless/agents"
	"github.com/driftless/driftless/bus"
	"github.com/driftless/driftless/internal/ticks"
	"github.com/driftless/driftless/model"
)

// Config configures one hollow cell.
type Config struct {
	// CellID names the cell; NATS is connected as role cell with this id.
	CellID string
	NATS   *nats.Conn
	// Registry is where RUNNING instances are registered
	// (agents.NewConsulRegistry for the cell).
	Registry agents.Registry
	// Address is where the cell's instances are said to be reachable.
	Address  string
	Capacity model.Resources
	// StartLatency is how long an accepted instance stays STARTING.
	StartLatency time.Duration
	// Stage makes the cell answer staging requests, after StageLatency,
	// and say in its heartbeats it has StagingSlots (default 1, the
	// agent's).
	Stage        bool
	StageLatency time.Duration
	StagingSlots int
	// HeartbeatInterval is how often the cell reports (default 1 s, the
	// agent's); CellRenewInterval how often it renews its liveness
	// (default 5 s, a third of the agent's default cell TTL);
	// RenewInterval how often it compares its instances with their
	// registrations (default 2 s, the agent's SyncInterval).
	HeartbeatInterval, CellRenewInterval, RenewInterval time.Duration
	// Port gives the port of a new RUNNING instance.
	Port func() int
	Log  *slog.Logger
}

// processCheck is the health check every hollow instance is registered
// with, as for a "process" app: there is no process or port to probe, and
// its health is its cell's.
var processCheck = model.HealthCheck{Type: model.HealthProcess}

// Cell is one hollow cell.
type Cell struct {
	cfg    Config
	log    *slog.Logger
	bootID string

	mu    sync.Mutex
	gen   uint64
	insts map[string]*instance
	// ctx is Run's; set when it starts (nil before).
	ctx context.Context
}

// instance is one hollow instance. Guarded by Cell.mu.
type instance struct {
	status   model.InstanceStatus
	run      model.RunSpec
	stopping bool
}

// New prepares a hollow cell; Run starts it.
func New(cfg Config) (*Cell, error) {
	if cfg.CellID == "" || cfg.NATS == nil || cfg.Registry == nil || cfg.Port == nil {
		return nil, errors.New("a hollow cell needs a cell id, NATS, a registry and a port function")
	}
	if cfg.HeartbeatInterval <= 0 {
		cfg.HeartbeatInterval = time.Second
	}
	if cfg.RenewInterval <= 0 {
		cfg.RenewInterval = 2 * time.Second
	}
	if cfg.Stage && cfg.StagingSlots <= 0 {
		cfg.StagingSlots = 1
	}
	if !cfg.Stage {
		cfg.StagingSlots = 0
	}
	if cfg.CellRenewInterval <= 0 {
		cfg.CellRenewInterval = agents.DefaultCellTTL / 3
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	return &Cell{cfg: cfg, log: cfg.Log.With("component", "sim", "cell", cfg.CellID), bootID: rand.Text(),
		insts: map[string]*instance{}}, nil
}

// Run serves the cell until ctx ends, then stops as a killed agent
// would: nothing deregistered, no last report.
func (c *Cell) Run(ctx context.Context) error {
	c.mu.Lock()
	c.ctx = ctx
	c.mu.Unlock()
	if err := c.cfg.Registry.RegisterCell(); err != nil {
		return fmt.Errorf("hollow cell %s: %w", c.cfg.CellID, err)
	}
	var subs []*nats.Subscription
	defer func() {
		for _, s := range subs {
			_ = s.Unsubscribe()
		}
	}()
	for verb, h := range map[string]nats.MsgHandler{bus.VerbStart: c.handleStart, bus.VerbStop: c.handleStop} {
		s, err := c.cfg.NATS.Subscribe(bus.CellCommand(c.cfg.CellID, verb), h)
		if err != nil {
			return fmt.Errorf("hollow cell %s: subscribing to %s: %w", c.cfg.CellID, verb, err)
		}
		subs = append(subs, s)
	}
	if c.cfg.Stage {
		s, err := c.cfg.NATS.QueueSubscribe(bus.SubjectStage, bus.QueueStagers, c.handleStage)
		if err != nil {
			return fmt.Errorf("hollow cell %s: subscribing to staging requests: %w", c.cfg.CellID, err)
		}
		subs = append(subs, s)
	}
	if err := c.cfg.NATS.Flush(); err != nil {
		return fmt.Errorf("hollow cell %s: subscribing: %w", c.cfg.CellID, err)
	}
	var wg sync.WaitGroup
	wg.Go(func() { ticks.NowAndEvery(ctx, c.cfg.HeartbeatInterval, c.heartbeat) })
	wg.Go(func() { ticks.NowAndEvery(ctx, c.cfg.CellRenewInterval, c.renewCell) })
	wg.Go(func() { ticks.Every(ctx, c.cfg.RenewInterval, c.renew) })
	wg.Wait()
	return nil
}

// Heartbeat is the cell's current report.
func (c *Cell) Heartbeat() bus.CellHeartbeat {
	c.mu.Lock()
	defer c.mu.Unlock()
	hb := bus.CellHeartbeat{CellID: c.cfg.CellID, BootID: c.bootID, Generation: c.gen, Address: c.cfg.Address,
		Capacity: c.cfg.Capacity, Instances: make([]model.InstanceStatus, 0, len(c.insts)), SentAt: time.Now().UTC(),
		StagingSlots: c.cfg.StagingSlots}
	for _, in := range c.insts {
		hb.Instances = append(hb.Instances, in.status)
	}
	return hb
}

// heartbeat sends the report.
func (c *Cell) heartbeat() {
	if err := bus.Publish(c.cfg.NATS, bus.HeartbeatSubject(c.cfg.CellID), c.Heartbeat()); err != nil {
		c.log.Warn("sending heartbeat", "err", err)
	}
}

// renewCell keeps the cell live, registering the cell again when its
// liveness is gone.
func (c *Cell) renewCell() {
	if err := c.cfg.Registry.RenewCell(); err != nil {
		if err := c.cfg.Registry.RegisterCell(); err != nil {
			c.log.Warn("registering the cell again", "err", err)
		}
	}
}

// renew registers again every RUNNING instance missing from Consul
// (Consul restarted).
func (c *Cell) renew() {
	registered, err := c.cfg.Registry.Instances()
	if err != nil {
		c.log.Warn("listing the cell's registrations", "err", err)
		return
	}
	c.mu.Lock()
	var missing []model.Endpoint
	for guid, in := range c.insts {
		if _, ok := registered[guid]; !ok && in.status.State == model.StateRunning && !in.stopping {
			missing = append(missing, c.endpoint(in))
		}
	}
	c.mu.Unlock()
	for _, ep := range missing {
		if !c.stillRunning(ep.GUID) {
			continue
		}
		if err := c.cfg.Registry.Register(ep, processCheck); err != nil {
			c.log.Warn("registering an instance again", "guid", ep.GUID, "err", err)
		}
	}
}

// stillRunning reports whether an instance is RUNNING and not stopping:
// one stopped since renew listed it is not registered again.
func (c *Cell) stillRunning(guid string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	in := c.insts[guid]
	return in != nil && in.status.State == model.StateRunning && !in.stopping
}

// endpoint is where an instance is registered. Caller holds c.mu.
func (c *Cell) endpoint(in *instance) model.Endpoint {
	run := in.run
	return model.Endpoint{InstanceRef: in.status.InstanceRef, Cell: c.cfg.CellID, Address: c.cfg.Address,
		Port: in.status.HostPort, Routes: run.Routes, Balance: run.Balance, HTTP2Routes: run.HTTP2Routes}
}

// setState moves an instance to st and tells the controller at once.
// Caller holds c.mu.
func (c *Cell) setState(in *instance, st model.InstanceState, reason string) {
	c.gen++
	in.status.State, in.status.Since, in.status.Reason = st, time.Now().UTC(), reason
	ic := bus.InstanceChanged{CellID: c.cfg.CellID, BootID: c.bootID, Generation: c.gen, Instance: in.status}
	if err := bus.Publish(c.cfg.NATS, bus.InstancesSubject(c.cfg.CellID), ic); err != nil {
		c.log.Warn("reporting instance change", "err", err)
	}
}

// handleStart serves bus.VerbStart as the agent does: the instance is
// accepted (STARTING) at once, or refused when it does not fit, and
// becomes RUNNING, registered, after StartLatency.
func (c *Cell) handleStart(m *nats.Msg) {
	var req bus.StartInstance
	if err := bus.Decode(m, &req); err != nil {
		c.reply(m, err)
		return
	}
	c.reply(m, c.accept(req.Instance, req.Run))
}

// accept takes an instance to start.
func (c *Cell) accept(ref model.InstanceRef, run model.RunSpec) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ref.GUID == "" || ref.App == "" || ref.Space == "" || run.Droplet == "" {
		return errors.New("start needs an instance guid, app, space and droplet")
	}
	if _, exists := c.insts[ref.GUID]; exists {
		return nil // a retried request: already accepted
	}
	if free := c.freeMemoryLocked(); c.cfg.Capacity.MemoryMB > 0 && run.MemoryMB > free {
		return fmt.Errorf("cell %s has %d MB free, instance needs %d MB", c.cfg.CellID, free, run.MemoryMB)
	}
	in := &instance{status: model.InstanceStatus{InstanceRef: ref, MemoryMB: run.MemoryMB, DiskMB: run.DiskMB},
		run: model.RunSpec{Routes: run.Routes, Balance: run.Balance, HTTP2Routes: run.HTTP2Routes}}
	c.insts[ref.GUID] = in
	c.setState(in, model.StateStarting, "accepted")
	ctx := c.ctx
	go c.launch(ctx, in)
	return nil
}

// launch makes an instance RUNNING after StartLatency: registered first,
// as the agent's last lifecycle step is its registration.
func (c *Cell) launch(ctx context.Context, in *instance) {
	select {
	case <-ctx.Done():
		return
	case <-time.After(c.cfg.StartLatency):
	}
	c.mu.Lock()
	if in.stopping || in.status.State != model.StateStarting {
		c.mu.Unlock()
		return
	}
	in.status.HostPort = c.cfg.Port()
	ep := c.endpoint(in)
	c.mu.Unlock()
	err := c.cfg.Registry.Register(ep, processCheck)
	c.mu.Lock()
	stopping := in.stopping
	switch {
	case stopping:
	case err != nil:
		c.setState(in, model.StateCrashed, err.Error())
	default:
		in.status.WasHealthy = true
		c.setState(in, model.StateRunning, "hollow instance started")
	}
	c.mu.Unlock()
	if stopping && err == nil {
		// The stop came while it registered: its deregistration may have
		// come first.
		c.deregister(ep.InstanceRef)
	}
}

// deregister takes an instance out of Consul (a missing one is no error).
func (c *Cell) deregister(ref model.InstanceRef) {
	if err := c.cfg.Registry.Deregister(ref); err != nil {
		c.log.Debug("deregistering instance", "guid", ref.GUID, "err", err)
	}
}

// handleStop serves bus.VerbStop: the instance is deregistered and gone.
// Stopping an instance the cell does not have succeeds (a retry).
func (c *Cell) handleStop(m *nats.Msg) {
	var req bus.StopInstance
	if err := bus.Decode(m, &req); err != nil {
		c.reply(m, err)
		return
	}
	c.mu.Lock()
	in := c.insts[req.GUID]
	if in == nil || in.stopping {
		c.mu.Unlock()
		c.reply(m, nil)
		return
	}
	in.stopping = true
	c.setState(in, model.StateStopping, req.Reason)
	ref := in.status.InstanceRef
	c.mu.Unlock()
	c.deregister(ref)
	c.mu.Lock()
	delete(c.insts, req.GUID)
	c.setState(in, model.StateStopped, "stopped")
	c.mu.Unlock()
	c.reply(m, nil)
}

// freeMemoryLocked is the memory not promised to instances. Caller holds c.mu.
func (c *Cell) freeMemoryLocked() int64 {
	used := int64(0)
	for _, in := range c.insts {
		if in.status.State != model.StateCrashed {
			used += in.status.MemoryMB
		}
	}
	return c.cfg.Capacity.MemoryMB - used
}

// reply answers a command with the cell's boot id and generation.
func (c *Cell) reply(m *nats.Msg, err error) {
	c.mu.Lock()
	r := bus.Reply{OK: err == nil, BootID: c.bootID, Generation: c.gen}
	c.mu.Unlock()
	if err != nil {
		r.Error = err.Error()
		c.log.Warn("command refused", "subject", m.Subject, "err", err)
	}
	if err := bus.Respond(m, r); err != nil {
		c.log.Warn("replying to command", "err", err)
	}
}

// handleStage answers a staging request after StageLatency with a droplet
// digest made from the request's source and release: the controller
// records it as it would a real droplet (nothing pulls it).
func (c *Cell) handleStage(m *nats.Msg) {
	var req bus.StageRequest
	if err := bus.Decode(m, &req); err != nil {
		if err := bus.Respond(m, bus.StageResult{Error: err.Error()}); err != nil {
			c.log.Warn("replying to a staging request", "err", err)
		}
		return
	}
	c.mu.Lock()
	ctx := c.ctx
	c.mu.Unlock()
	go func() {
		select {
		case <-ctx.Done():
			return
		case <-time.After(c.cfg.StageLatency):
		}
		sum := sha256.Sum256([]byte(req.Source + "\x00" + req.ReleaseID))
		res := bus.StageResult{Droplet: "sha256:" + hex.EncodeToString(sum[:]), Buildpack: "hollow",
			StartCommand: "hollow", LogTail: []string{"staged by hollow cell " + c.cfg.CellID}}
		if err := bus.Respond(m, res); err != nil {
			c.log.Warn("replying to a staging request", "err", err)
		}
	}()
}
