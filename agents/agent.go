// Package agents is a cell: it runs app instances in containers
// (agents/runtime, agents/network), checks their health (agents/health),
// registers healthy ones in Consul (registry.go), reports them over NATS
// (heartbeat.go, instances.go), serves the controller's commands
// (commands.go), ships instance output (logs.go) and stages droplets
// (stage.go, agents/staging).
//
// An instance's life on the cell is a lifecycle of ordered, undoable steps
// (lifecycle.go): host port → network → droplet → bindings → container →
// health check → registration. A step that fails, and a stop, undo the steps in
// reverse; an instance adopted after an agent restart gets its lifecycle
// with every step done. Compile steps run through the same runner
// (runtime.Runner) and a lifecycle of their own. Two loops repair drift:
// Consul against the cell's instances (registry.go), containerd against
// them (drift.go). The side effects sit behind small interfaces
// (boundaries.go), so all of this is unit tested on fakes.
package agents

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	consul "github.com/hashicorp/consul/api"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/driftless/driftless/agents/network"
	"github.com/driftless/driftless/agents/runtime"
	"github.com/driftless/driftless/agents/staging"
	"github.com/driftless/driftless/blobstore"
	"github.com/driftless/driftless/bus"
	"github.com/driftless/driftless/internal/pki"
	"github.com/driftless/driftless/model"
)

// Config configures a cell agent.
type Config struct {
	// CellID names the cell; it must be unique and stable across restarts.
	CellID string
	// Token is the cell's credential (a driftless token of role cell):
	// droplets and stacks are pulled, and staging results uploaded, with
	// it. Never logged.
	Token string
	// CA is a PEM file of the roots the controller's blob store is
	// checked against when it serves HTTPS ("" for the system's).
	CA string
	// Address is where the cell's mapped host ports are reachable, and the
	// address host ports are mapped on (127.0.0.1 in dev).
	Address  string
	Zone     string
	Capacity model.Resources
	NATS     *nats.Conn
	Consul   *consul.Client
	Runtime  runtime.Config
	Network  network.Config
	// PortMin and PortMax bound the host ports given to instances.
	PortMin, PortMax int
	// DataDir keeps instance records and the staging cache.
	DataDir string
	// HeartbeatInterval is how often the cell reports (default 1 s).
	HeartbeatInterval time.Duration
	// ProbeInterval is how often a starting instance is probed (default 100 ms).
	ProbeInterval time.Duration
	// CheckInterval is how often Consul checks a running instance (default 1 s).
	CheckInterval time.Duration
	// SyncInterval is how often registrations are compared with Consul and
	// repaired (default 2 s).
	SyncInterval time.Duration
	// Drain is the time between deregistering an instance and stopping it,
	// so routers stop sending it requests first (default 1 s).
	Drain time.Duration
	// StopGrace is how long an instance may take to exit after SIGTERM
	// (default 10 s).
	StopGrace time.Duration
	// CellTTL is how long the cell stays live in Consul without the agent
	// renewing it (catalog.Presence: Consul's least is 20 s); when it
	// lapses, the cell's instances leave the routers (default 15 s, so
	// 20 s: longer than the controller's 10 s to place replacements, so
	// instances whose processes still run keep serving until their
	// replacements do).
	CellTTL time.Duration
	// StagingSlots bounds concurrent stagings on this cell (default 1).
	StagingSlots int
	// StacksDir holds the stacks built on this cell (scripts/build-stack.sh).
	StacksDir string
	// Buildpacks is what the cell offers buildpacks: a Go toolchain, the
	// module proxy and npm registry, the static server binary.
	Buildpacks staging.Cell
	// PlainHTTPRegistries are the registries ("host:port", or an http://
	// URL whose host:port is taken) the cell pulls droplets and stack
	// images from over plain HTTP: the controller's blob store when it is
	// served at an http:// URL (the controller's --blobstore-url). Loopback
	// registries are always reached over plain HTTP; every other one over
	// HTTPS. Ignored when Runtime.PlainHTTPHosts is set.
	PlainHTTPRegistries []string
	// UsageInterval is how often the CPU time and memory of every instance
	// are read (default DefaultUsageInterval; the disk at most every 30 s).
	UsageInterval time.Duration
	// Metrics registers the cell's metrics (metrics.go); nil for none.
	Metrics prometheus.Registerer
	Log     *slog.Logger
}

// DefaultCellTTL is how long the cell stays live in Consul without the
// agent renewing it (Config.CellTTL).
const DefaultCellTTL = 15 * time.Second

func (c *Config) defaults() {
	if c.HeartbeatInterval == 0 {
		c.HeartbeatInterval = time.Second
	}
	if c.ProbeInterval == 0 {
		c.ProbeInterval = 100 * time.Millisecond
	}
	if c.CheckInterval == 0 {
		c.CheckInterval = time.Second
	}
	if c.SyncInterval == 0 {
		c.SyncInterval = 2 * time.Second
	}
	if c.Drain == 0 {
		c.Drain = time.Second
	}
	if c.StopGrace == 0 {
		c.StopGrace = 10 * time.Second
	}
	if c.StagingSlots == 0 {
		c.StagingSlots = 1
	}
	if c.CellTTL == 0 {
		c.CellTTL = DefaultCellTTL
	}
	if c.UsageInterval == 0 {
		c.UsageInterval = DefaultUsageInterval
	}
	if c.StacksDir == "" {
		c.StacksDir = DefaultStacksDir
	}
	if c.Buildpacks.GoRoot == "" {
		if _, err := os.Stat("/usr/local/go/bin/go"); err == nil {
			c.Buildpacks.GoRoot = "/usr/local/go"
		}
	}
	if c.Buildpacks.GoProxy == "" {
		c.Buildpacks.GoProxy = os.Getenv("GOPROXY")
	}
	if c.Buildpacks.StaticServer == "" {
		c.Buildpacks.StaticServer = findStaticServer()
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
}

// DefaultStacksDir is where scripts/build-stack.sh puts stacks.
const DefaultStacksDir = "/var/lib/driftless/stacks"

// findStaticServer looks for the driftless-static binary beside the
// running executable, then on PATH ("" when there is none).
func findStaticServer() string {
	if exe, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(exe), "driftless-static")
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			return p
		}
	}
	if p, err := exec.LookPath("driftless-static"); err == nil {
		return p
	}
	return ""
}

// Agent is a running cell.
type Agent struct {
	cfg    Config
	log    *slog.Logger
	bootID string
	// The cell's side effects (boundaries.go).
	runner   runtime.Runner
	net      Networks
	ports    HostPorts
	registry Registry
	pub      Publisher
	probe    Prober
	// closeEngine closes the connection to containerd when Run returns.
	closeEngine func()
	// closeWalls takes the bridge's walls down when Run returns, if no
	// instance is left behind them.
	closeWalls func()
	// trustRegistry lets the cell's credential go to a registry host the
	// controller named (its blob store); nil when the engine keeps none.
	trustRegistry func(host string)
	stager        *staging.Stager
	stage         chan struct{} // staging slots
	// retryPause is the pause between attempts of a stop's undo.
	retryPause time.Duration
	// usage reads the instances' usage (usage.go); nil reader for none.
	usage   *usage
	metrics *cellMetrics

	ctx context.Context // the agent's lifetime, for instance goroutines
	wg  sync.WaitGroup

	// policyKick asks policyLoop to rewrite the network policy rules.
	policyKick chan struct{}

	mu    sync.Mutex
	gen   uint64
	insts map[string]*instance
}

// New checks the configuration and connects to containerd.
func New(ctx context.Context, cfg Config) (*Agent, error) {
	cfg.defaults()
	if cfg.CellID == "" || cfg.Address == "" || cfg.NATS == nil || cfg.Consul == nil || cfg.DataDir == "" {
		return nil, errors.New("agent needs a cell id, an address, NATS, Consul and a data dir")
	}
	if cfg.Runtime.LogDir == "" {
		cfg.Runtime.LogDir = filepath.Join(cfg.DataDir, "logs")
	}
	if cfg.Network.StateDir == "" {
		cfg.Network.StateDir = filepath.Join(cfg.DataDir, "network")
	}
	if cfg.Network.HostIP == "" {
		cfg.Network.HostIP = cfg.Address
	}
	if cfg.Runtime.PlainHTTPHosts == nil {
		// With a CA the controller's blob store is HTTPS, on loopback too.
		cfg.Runtime.PlainHTTPHosts = PlainHTTPHosts(cfg.PlainHTTPRegistries, cfg.CA == "")
	}
	cfg.Runtime.RegistryToken = cfg.Token
	if cfg.CA != "" {
		roots, err := pki.Pool(cfg.CA)
		if err != nil {
			return nil, fmt.Errorf("the blob store's CA: %w", err)
		}
		cfg.Runtime.RegistryCAs = roots
	}
	if err := makeDataDirs(cfg.DataDir); err != nil {
		return nil, err
	}
	rt, err := runtime.New(ctx, cfg.Runtime)
	if err != nil {
		return nil, fmt.Errorf("connecting to containerd: %w", err)
	}
	nw, err := network.New(cfg.Network)
	if err != nil {
		rt.Close()
		return nil, fmt.Errorf("setting up container networking: %w", err)
	}
	// The walls go up before any instance runs or is adopted.
	if err := nw.EnsureWalls(ctx); err != nil {
		rt.Close()
		return nil, fmt.Errorf("walling instances off: %w", err)
	}
	a, err := newAgent(cfg, parts{
		engine:   rt,
		net:      nw,
		ports:    network.NewPorts(cfg.Network.HostIP, cfg.PortMin, cfg.PortMax),
		registry: NewConsulRegistry(cfg.Consul, cfg.CellID, cfg.Address, cfg.CellTTL),
		pub:      natsPublisher{cfg.NATS},
		probe:    healthProber{},
	})
	if err != nil {
		rt.Close()
		return nil, err
	}
	a.closeEngine = func() { _ = rt.Close() }
	a.usage.reader = rt
	a.trustRegistry = rt.TrustRegistry
	a.closeWalls = func() { removeWalls(nw, a.log) }
	return a, nil
}

// removeWalls takes the walls of nw's bridge down unless an instance is
// still attached to it (this agent's or another's): instances keep running
// when the agent stops, and keep their walls until the next agent adopts
// them.
func removeWalls(nw *network.Network, log *slog.Logger) {
	atts, err := nw.Attachments()
	if err != nil || len(atts) > 0 {
		return
	}
	// Another agent's instances on the same bridge keep them up too.
	if idle, err := nw.BridgeIdle(); err != nil || !idle {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := nw.RemoveWalls(ctx); err != nil {
		log.Warn("taking the walls of the bridge down", "err", err)
	}
}

// makeDataDirs makes the agent's folders under dir.
func makeDataDirs(dir string) error {
	for _, d := range []string{"instances", "logs", "network", "staging", "bindings"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			return fmt.Errorf("creating agent data dir: %w", err)
		}
	}
	return nil
}

// newAgent makes an agent of its parts; cfg has its defaults.
func newAgent(cfg Config, p parts) (*Agent, error) {
	var boot [8]byte
	_, _ = rand.Read(boot[:])
	a := &Agent{
		cfg:         cfg,
		log:         cfg.Log.With("component", "agent", "cell", cfg.CellID),
		bootID:      hex.EncodeToString(boot[:]),
		runner:      runtime.NewRunner(p.engine),
		net:         p.net,
		ports:       p.ports,
		registry:    p.registry,
		pub:         p.pub,
		probe:       p.probe,
		closeEngine: func() {},
		closeWalls:  func() {},
		stage:       make(chan struct{}, cfg.StagingSlots),
		retryPause:  2 * time.Second,
		insts:       make(map[string]*instance),
		policyKick:  make(chan struct{}, 1),
		ctx:         context.Background(),
		usage:       &usage{diskAt: map[string]time.Time{}},
	}
	var err error
	if a.metrics, err = newCellMetrics(cfg.Metrics, a); err != nil {
		return nil, err
	}
	a.stager, err = staging.New(staging.Config{CacheDir: filepath.Join(cfg.DataDir, "staging"), StacksDir: cfg.StacksDir,
		Runner: compileRunner{a}, Cell: cfg.Buildpacks, Log: cfg.Log.With("component", "staging"),
		Client: func(base string) *blobstore.Client {
			c := blobstore.NewClientTLS(base, cfg.Runtime.RegistryCAs)
			c.Token = cfg.Token
			return c
		}})
	if err != nil {
		return nil, fmt.Errorf("setting up staging: %w", err)
	}
	return a, nil
}

// PlainHTTPHosts is the registry trust of a cell whose configuration names
// registries as PlainHTTPRegistries does: whether a registry host
// ("host:port", as containerd asks) is pulled from over plain HTTP — the
// named ones, and loopback hosts when loopback is set.
func PlainHTTPHosts(registries []string, loopback bool) func(host string) bool {
	plain := make(map[string]bool, len(registries))
	for _, r := range registries {
		if _, rest, ok := strings.Cut(r, "://"); ok {
			r, _, _ = strings.Cut(rest, "/")
		}
		if r != "" {
			plain[strings.ToLower(r)] = true
		}
	}
	return func(host string) bool {
		return plain[strings.ToLower(host)] || (loopback && runtime.IsLoopbackHost(host))
	}
}

// Run adopts the containers a previous agent process left running, serves
// commands and staging requests, and reports until ctx ends. Instances keep
// running when the agent stops: the next agent adopts them.
func (a *Agent) Run(ctx context.Context) error {
	a.ctx = ctx
	defer a.closeEngine()
	defer a.closeWalls()
	if err := a.registry.RegisterCell(); err != nil {
		return err
	}
	if err := a.adopt(ctx); err != nil {
		return err
	}
	subs, err := a.subscribe()
	if err != nil {
		return err
	}
	a.log.Info("cell ready", "address", a.cfg.Address, "boot", a.bootID, "instances", len(a.insts))
	a.wg.Go(func() { a.heartbeatLoop(ctx) })
	a.wg.Go(func() { a.cellCheckLoop(ctx) })
	a.wg.Go(func() { a.registrySyncLoop(ctx) })
	a.wg.Go(func() { a.driftLoop(ctx) })
	a.wg.Go(func() { a.policyLoop(ctx) })
	a.wg.Go(func() { a.usageLoop(ctx) })
	<-ctx.Done()
	for _, s := range subs {
		_ = s.Unsubscribe()
	}
	a.wg.Wait()
	return nil
}

// subscribe serves the cell's commands and the staging queue.
func (a *Agent) subscribe() ([]*nats.Subscription, error) {
	var subs []*nats.Subscription
	for subject, h := range map[string]nats.MsgHandler{
		bus.CellCommand(a.cfg.CellID, bus.VerbStart): a.handleStart,
		bus.CellCommand(a.cfg.CellID, bus.VerbStop):  a.handleStop,
	} {
		s, err := a.cfg.NATS.Subscribe(subject, h)
		if err != nil {
			return nil, fmt.Errorf("subscribing to %s: %w", subject, err)
		}
		subs = append(subs, s)
	}
	s, err := a.cfg.NATS.QueueSubscribe(bus.SubjectStage, bus.QueueStagers, a.handleStage)
	if err != nil {
		return nil, fmt.Errorf("subscribing to staging requests: %w", err)
	}
	subs = append(subs, s)
	if err := a.cfg.NATS.Flush(); err != nil {
		return nil, fmt.Errorf("subscribing on NATS: %w", err)
	}
	return subs, nil
}

// BootID identifies this agent process in its reports.
func (a *Agent) BootID() string { return a.bootID }

// trust lets the cell's credential go to the registry of ref (an image
// reference "host:port/path@digest", or a blob store URL) that the
// controller named in a command.
func (a *Agent) trust(ref string) {
	if a.trustRegistry == nil || ref == "" {
		return
	}
	if u, err := url.Parse(ref); err == nil && u.Scheme != "" && u.Host != "" {
		a.trustRegistry(u.Host)
		return
	}
	host, _, _ := strings.Cut(ref, "/")
	a.trustRegistry(host)
}
