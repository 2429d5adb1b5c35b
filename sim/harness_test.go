package sim_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	consul "github.com/hashicorp/consul/api"

	"github.com/driftless/driftless/agents"
	"github.com/driftless/driftless/blobstore"
	"github.com/driftless/driftless/bus"
	"github.com/driftless/driftless/catalog"
	"github.com/driftless/driftless/internal/testenv"
	"github.com/driftless/driftless/model"
	"github.com/driftless/driftless/policies"
	"github.com/driftless/driftless/reconciler"
	"github.com/driftless/driftless/reconciler/source"
	"github.com/driftless/driftless/secrets"
	"github.com/driftless/driftless/sim"
)

// simPlatform is a real controller on real NATS and Consul, its git
// source a local repository, with hollow cells instead of agents.
type simPlatform struct {
	t      testing.TB
	nats   *testenv.NATS
	consul *testenv.Consul
	repo   string
	ctl    *reconciler.Controller
	ports  func() int
	opts   platformOptions
	// cc is the controller's and the cells' Consul client; writes counts
	// the writes (PUTs) it sends.
	cc     *consul.Client
	writes atomic.Int64
	// hosts are the Consul client agents hollow cells register through
	// (platformOptions.consulAgents; none: the cells use cc).
	hosts []*consul.Client

	mu    sync.Mutex
	cells map[string]context.CancelFunc
	wg    sync.WaitGroup
}

// platformOptions are the knobs of a simPlatform.
type platformOptions struct {
	lostAfter time.Duration
	// scale raises Consul's connection limit (testenv.StartConsulScale).
	scale bool
	// renew is how often the hollow cells compare their instances with
	// their registrations (default 2 s, the agent's).
	renew time.Duration
	// cellTTL is the hollow cells' TTL (default 3 s: lost soon).
	cellTTL time.Duration
	// policies is the set in force (nil: the built-in bundle).
	policies *policies.Set
	workers  int
	// consulAgents, when not 0, starts that many Consul client agents
	// joined to the server, the hollow cells spread over them
	// (startConsulClients).
	consulAgents int
}

// newSimPlatform starts NATS, Consul and a leading controller whose
// source is an empty repository (commit adds to it).
func newSimPlatform(t testing.TB, opts platformOptions) *simPlatform {
	t.Helper()
	p := &simPlatform{t: t, nats: testenv.StartNATS(t), repo: t.TempDir(), opts: opts,
		ports: sim.Ports(0, 30000), cells: map[string]context.CancelFunc{}}
	if opts.scale {
		p.consul = testenv.StartConsulScale(t)
	} else {
		p.consul = testenv.StartConsul(t)
	}
	if p.opts.cellTTL == 0 {
		p.opts.cellTTL = 3 * time.Second
	}
	if p.opts.renew == 0 {
		p.opts.renew = 2 * time.Second
	}
	ccfg := consul.DefaultConfig()
	ccfg.Address = p.consul.Addr
	ccfg.HttpClient = &http.Client{Transport: countWrites{&p.writes, &http.Transport{MaxIdleConnsPerHost: 64}}}
	var err error
	if p.cc, err = consul.NewClient(ccfg); err != nil {
		t.Fatal(err)
	}
	if opts.consulAgents > 0 {
		p.hosts = startConsulClients(t, p.consul, opts.consulAgents, &p.writes)
	}
	testenv.Git(t, p.repo, "init", "-q", "-b", "main")
	testenv.Git(t, p.repo, "commit", "-q", "--allow-empty", "-m", "empty")
	blobs, err := blobstore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	keys, err := secrets.LoadOrCreate(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	p.ctl, err = reconciler.New(reconciler.Config{
		Sources:          []reconciler.SourceConfig{{Config: source.Config{Name: "apps", URL: p.repo}, Space: "dev"}},
		Domain:           "apps.localhost",
		NATS:             p.nats.Connect(t, bus.Identity{Role: bus.RoleController}),
		Consul:           p.cc,
		Blobs:            blobs,
		BlobStoreURL:     "http://127.0.0.1:1",
		ConvergeInterval: 500 * time.Millisecond,
		LostAfter:        opts.lostAfter,
		Warmup:           time.Second,
		StagingWorkers:   opts.workers,
		Policies:         opts.policies,
		Keys:             keys,
		ID:               "sim-test",
		Log:              log,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := p.ctl.Run(ctx); err != nil {
			t.Errorf("controller: %v", err)
		}
	}()
	t.Cleanup(func() {
		p.killAll()
		cancel()
		<-done
	})
	testenv.Eventually(t, 30*time.Second, 50*time.Millisecond, "the controller leads", func() error {
		if !p.ctl.Leads() {
			return fmt.Errorf("not leading")
		}
		return nil
	})
	return p
}

// countWrites counts the PUT requests (Consul's writes) it carries.
type countWrites struct {
	n    *atomic.Int64
	next http.RoundTripper
}

func (c countWrites) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method == http.MethodPut {
		c.n.Add(1)
	}
	return c.next.RoundTrip(r)
}

// startCells starts n hollow cells named prefix1…prefixN, each on its own
// NATS connection as its own cell.
func (p *simPlatform) startCells(prefix string, n int, memoryMB int64, startLatency time.Duration) []string {
	p.t.Helper()
	ids := make([]string, 0, n)
	for i := 1; i <= n; i++ {
		id := fmt.Sprintf("%s%d", prefix, i)
		cc := p.cc
		if len(p.hosts) > 0 {
			cc = p.hosts[i%len(p.hosts)]
		}
		c, err := sim.New(sim.Config{CellID: id, NATS: p.nats.Connect(p.t, bus.Identity{Role: bus.RoleCell, Cell: id}),
			Registry:      agents.NewConsulRegistry(cc, id, "127.0.0.1", p.opts.cellTTL),
			RenewInterval: p.opts.renew, CellRenewInterval: p.opts.cellTTL / 3,
			Address: "127.0.0.1", Capacity: model.Resources{MemoryMB: memoryMB, DiskMB: 1 << 20, Instances: 1000},
			StartLatency: startLatency, Stage: true, StageLatency: 10 * time.Millisecond, Port: p.ports,
			Log: slog.New(slog.DiscardHandler)})
		if err != nil {
			p.t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		p.mu.Lock()
		p.cells[id] = cancel
		p.mu.Unlock()
		p.wg.Go(func() {
			if err := c.Run(ctx); err != nil {
				p.t.Errorf("hollow cell %s: %v", id, err)
			}
		})
		ids = append(ids, id)
	}
	return ids
}

// kill ends a hollow cell as a killed process: no more heartbeats or
// renewals, nothing deregistered.
func (p *simPlatform) kill(id string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if cancel := p.cells[id]; cancel != nil {
		cancel()
		delete(p.cells, id)
	}
}

func (p *simPlatform) killAll() {
	p.mu.Lock()
	for id, cancel := range p.cells {
		cancel()
		delete(p.cells, id)
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// commit writes files into the repository, commits them and syncs the
// controller (it applies the commit before Sync returns). It returns when
// the git commit was made.
func (p *simPlatform) commit(files map[string]string, msg string) time.Time {
	p.t.Helper()
	for name, body := range files {
		path := filepath.Join(p.repo, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			p.t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			p.t.Fatal(err)
		}
	}
	testenv.Git(p.t, p.repo, "add", "-A")
	testenv.Git(p.t, p.repo, "commit", "-q", "-m", msg)
	committed := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, st := range p.ctl.Sync(ctx, "") {
		if len(st.Errors) > 0 {
			p.t.Fatalf("commit %q refused: %+v", msg, st.Errors)
		}
	}
	return committed
}

// routed is, per Consul service, the instances a router routes to (every
// check passing, on a cell holding its key), with their cells.
func (p *simPlatform) routed() (map[string]map[string]string, error) {
	c := p.consul.Client
	pairs, _, err := c.KV().List(catalog.CellsPrefix, nil)
	if err != nil {
		return nil, fmt.Errorf("listing the live cells: %w", err)
	}
	live := catalog.LiveCells(pairs)
	services, _, err := c.Catalog().Services(nil)
	if err != nil {
		return nil, fmt.Errorf("listing services: %w", err)
	}
	out := map[string]map[string]string{}
	for name, tags := range services {
		if !catalog.IsApp(tags) {
			continue
		}
		entries, _, err := c.Health().Service(name, catalog.AppTag, true, nil)
		if err != nil {
			return nil, fmt.Errorf("listing the instances of %s: %w", name, err)
		}
		for _, e := range entries {
			if in, ok := catalog.FromHealthEntry(e); ok && live[in.Cell] {
				if out[name] == nil {
					out[name] = map[string]string{}
				}
				out[name][in.GUID] = in.Cell
			}
		}
	}
	return out, nil
}

// running counts, per app name, the instances the controller sees RUNNING.
func (p *simPlatform) running() map[string]int {
	out := map[string]int{}
	for _, a := range p.ctl.AppStates(context.Background()) {
		for _, in := range a.Instances {
			if in.State == model.StateRunning {
				out[a.App.Name]++
			}
		}
	}
	return out
}

// appFiles is the repository of apps named prefix0…prefix(n-1), each with
// instances instances of memory MB and a one-file source.
func appFiles(prefix string, n, instances, memoryMB int) map[string]string {
	files := make(map[string]string, 2*n)
	for i := range n {
		name := fmt.Sprintf("%s%d", prefix, i)
		files["apps/"+name+"/manifest.yml"] = fmt.Sprintf("applications:\n- name: %s\n  instances: %d\n  memory: %dM\n  buildpacks: [binary_buildpack]\n  command: ./app\n  health-check-type: process\n", name, instances, memoryMB)
		files["apps/"+name+"/app"] = "hollow " + name
	}
	return files
}
