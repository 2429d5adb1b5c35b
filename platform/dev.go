package platform

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/driftless/driftless/agents"
	"github.com/driftless/driftless/agents/network"
	"github.com/driftless/driftless/agents/runtime"
	"github.com/driftless/driftless/bus"
	"github.com/driftless/driftless/catalog"
	"github.com/driftless/driftless/internal/children"
	"github.com/driftless/driftless/model"
	"github.com/driftless/driftless/reconciler"
	"github.com/driftless/driftless/reconciler/plan"
	"github.com/driftless/driftless/reconciler/source"
	"github.com/driftless/driftless/router"
)

// DevConfig configures `driftless dev`: the whole platform on one host.
type DevConfig struct {
	DataDir string
	// Repos are git sources: paths of work trees or repositories, or URLs,
	// each optionally prefixed with SPACE= to put its apps in that space
	// instead of Space.
	Repos []string
	// Space is the space of the apps in Repos, Org its organisation
	// (for org quotas; "" for none).
	Space  string
	Org    string
	HTTP   string // router
	API    string // REST API and blob store
	Domain string
	// NATS is where the embedded NATS server listens.
	NATS string
	// Consul is the Consul HTTP address; a dev agent is started there
	// when none answers.
	Consul string
	// Containerd is the containerd socket; a private containerd is
	// started under DataDir when none answers.
	Containerd string
	// Poll is how often sources are fetched.
	Poll time.Duration
	// PortMin..PortMax is the host-port range of instances.
	PortMin, PortMax int
	// Bridge and Subnet are the cell's container network.
	Bridge, Subnet string
	// CellMemoryMB is the memory the dev cell offers (0: the host's).
	CellMemoryMB  int64
	WebhookSecret string
	// Policies is the policy source (a work tree, repository or URL, like
	// Repos); empty for the built-in bundle.
	Policies string
	// LostAfter and Crash tune the controller (zero: defaults).
	LostAfter time.Duration
	Crash     plan.CrashPolicy
	Log       *slog.Logger
	// Ready, if set, is called once every component runs.
	Ready func(DevInfo)
}

// DevInfo tells where the dev platform answers.
type DevInfo struct {
	HTTP, API, NATS, Consul, Containerd string
	Sources                             []string
}

// RunDev runs every component of the platform in this process, with
// embedded NATS and, when none answers, Consul and containerd as children.
// It returns when ctx ends, after stopping everything it started; app
// containers keep running and are adopted by the next run.
func RunDev(ctx context.Context, cfg DevConfig) error {
	log := cfg.Log
	if log == nil {
		log = slog.Default()
	}
	needs := cellNeeds(nil)
	if !children.ConsulAnswers(ctx, cfg.Consul) {
		needs = append(needs, need{"consul", func() bool { _, err := children.FindConsul(); return err == nil },
			"run `make setup` (builds the pinned Consul into ./bin/consul) or set DRIFTLESS_CONSUL"})
	}
	if !children.ContainerdAnswers(ctx, cfg.Containerd) {
		needs = append(needs, need{"containerd", haveCommand("containerd"), "apt-get install containerd (or `make setup`)"})
	}
	if err := preflight(needs); err != nil {
		return err
	}
	if len(cfg.Repos) == 0 {
		return errors.New("dev needs at least one --repo (a git work tree, repository or URL)")
	}
	if err := os.MkdirAll(filepath.Join(cfg.DataDir, "logs"), 0o755); err != nil {
		return fmt.Errorf("creating data dir: %w", err)
	}

	var stops []func()
	defer func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}()

	nsrv, err := bus.StartEmbedded(cfg.NATS)
	if err != nil {
		return err
	}
	stops = append(stops, nsrv.Shutdown)

	if !children.ConsulAnswers(ctx, cfg.Consul) {
		p, err := children.StartConsul(ctx, children.ConsulOptions{HTTPAddr: cfg.Consul, Node: "driftless-dev",
			LogPath: filepath.Join(cfg.DataDir, "logs", "consul.log")})
		if err != nil {
			return fmt.Errorf("starting consul: %w", err)
		}
		log.Info("started consul", "addr", cfg.Consul, "log", p.LogPath())
		stops = append(stops, func() { _ = p.Stop(10 * time.Second) })
	}
	sock := cfg.Containerd
	if !children.ContainerdAnswers(ctx, sock) {
		dir := filepath.Join(cfg.DataDir, "containerd")
		if sock == "" || sock == SystemContainerdSocket {
			sock = containerdSocket(dir) // never squat the system daemon's socket
		}
		p, addr, err := children.StartContainerd(ctx, children.ContainerdOptions{Dir: dir, Address: sock,
			LogPath: filepath.Join(cfg.DataDir, "logs", "containerd.log")})
		if err != nil {
			return fmt.Errorf("starting containerd: %w", err)
		}
		sock = addr
		log.Info("started containerd", "socket", sock, "log", p.LogPath())
		stops = append(stops, func() { _ = p.Stop(15 * time.Second) })
	}

	cc, err := catalog.NewClient(cfg.Consul)
	if err != nil {
		return err
	}
	sources, names, err := devSources(cfg)
	if err != nil {
		return err
	}
	var policySrc *source.Config
	if cfg.Policies != "" {
		url := cfg.Policies
		if !strings.Contains(url, "://") {
			if url, err = filepath.Abs(url); err != nil {
				return fmt.Errorf("policies %s: %w", cfg.Policies, err)
			}
		}
		policySrc = &source.Config{Name: "policies", URL: url, Dir: filepath.Join(cfg.DataDir, "sources", "_policies"), Poll: cfg.Poll}
	}
	conn := func(component string) (*nats.Conn, error) { return ConnectNATS(nsrv.URL(), component, log) }
	ctlNC, err := conn("controller")
	if err != nil {
		return err
	}
	defer ctlNC.Close()
	agentNC, err := conn("agent")
	if err != nil {
		return err
	}
	defer agentNC.Close()

	memory := cfg.CellMemoryMB
	if memory == 0 {
		memory = HostMemoryMB()
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, 3)
	var wg sync.WaitGroup
	run := func(name string, f func() error) {
		wg.Go(func() {
			if err := f(); err != nil && ctx.Err() == nil {
				errs <- fmt.Errorf("%s: %w", name, err)
			}
		})
	}
	apiReady := make(chan string, 1)
	run("controller", func() error {
		return RunController(ctx, ControllerConfig{
			DataDir: cfg.DataDir, Sources: sources, Domain: cfg.Domain, API: cfg.API,
			WebhookSecret: cfg.WebhookSecret, NATS: ctlNC, Consul: cc, Log: log,
			LostAfter: cfg.LostAfter, Crash: cfg.Crash, PolicySource: policySrc,
			Ready: func(addr string) { apiReady <- addr },
		})
	})
	run("agent", func() error {
		return RunAgent(ctx, agents.Config{
			CellID: "dev-cell", Address: "127.0.0.1",
			Capacity: model.Resources{MemoryMB: memory, DiskMB: 100 * 1024, Instances: 256},
			NATS:     agentNC, Consul: cc,
			Runtime: runtime.Config{Address: sock, Namespace: "driftless"},
			Network: network.Config{HostIP: "127.0.0.1", Bridge: cfg.Bridge, Subnet: cfg.Subnet},
			PortMin: cfg.PortMin, PortMax: cfg.PortMax,
			DataDir: filepath.Join(cfg.DataDir, "agent"),
			Log:     log,
		})
	})
	accessLog, err := os.OpenFile(filepath.Join(cfg.DataDir, "logs", "access.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("opening the access log: %w", err)
	}
	defer accessLog.Close()
	rtr, err := router.New(router.Config{Listen: cfg.HTTP, Consul: cc, Log: log, AccessLog: accessLog})
	if err != nil {
		return err
	}
	run("router", func() error { return rtr.Run(ctx) })

	select {
	case addr := <-apiReady:
		if cfg.Ready != nil {
			select {
			case <-rtr.Ready():
			case <-ctx.Done():
			case <-time.After(10 * time.Second):
			}
			cfg.Ready(DevInfo{HTTP: cfg.HTTP, API: addr, NATS: nsrv.URL(), Consul: cfg.Consul, Containerd: sock, Sources: names})
		}
	case err := <-errs:
		cancel()
		wg.Wait()
		return err
	case <-ctx.Done():
	}
	select {
	case <-ctx.Done():
		err = nil
	case err = <-errs:
	}
	cancel()
	wg.Wait()
	return err
}

// SystemContainerdSocket is where a system containerd listens.
const SystemContainerdSocket = "/run/containerd/containerd.sock"

// devSources turns --repo values into sources of the dev space, named after
// their folders.
func devSources(cfg DevConfig) ([]reconciler.SourceConfig, []string, error) {
	var out []reconciler.SourceConfig
	var names []string
	used := map[string]int{}
	for _, repo := range cfg.Repos {
		space := cfg.Space
		if sp, rest, ok := strings.Cut(repo, "="); ok && spaceName.MatchString(sp) && rest != "" {
			space, repo = sp, rest // SPACE=PATH_OR_URL
		}
		name := sourceName(repo)
		used[name]++
		if used[name] > 1 {
			name = fmt.Sprintf("%s-%d", name, used[name])
		}
		url := repo
		if !strings.Contains(repo, "://") {
			abs, err := filepath.Abs(repo)
			if err != nil {
				return nil, nil, fmt.Errorf("repo %s: %w", repo, err)
			}
			url = abs
		}
		out = append(out, reconciler.SourceConfig{Space: space, Org: cfg.Org, Config: source.Config{
			Name: name, URL: url, Dir: filepath.Join(cfg.DataDir, "sources", name), Poll: cfg.Poll}})
		names = append(names, name)
	}
	return out, names, nil
}

var unsafeName = regexp.MustCompile(`[^a-zA-Z0-9_-]+`)

// spaceName is what a space may be called (the SPACE= prefix of a repo).
var spaceName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// sourceName derives a source name from a path or URL: its last element
// without ".git".
func sourceName(repo string) string {
	base := filepath.Base(strings.TrimRight(repo, "/"))
	base = strings.TrimSuffix(base, ".git")
	base = strings.Trim(unsafeName.ReplaceAllString(base, "-"), "-")
	if base == "" {
		return "source"
	}
	return base
}

// containerdSocket is the socket of the private containerd under dir, moved
// to /run when dir's path would be too long for a unix socket.
func containerdSocket(dir string) string {
	sock := filepath.Join(dir, "containerd.sock")
	if len(sock) < 90 {
		return sock
	}
	sum := sha256.Sum256([]byte(dir))
	return filepath.Join("/run/driftless", hex.EncodeToString(sum[:6]), "containerd.sock")
}
