package platform

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/driftless/driftless/api"
	"github.com/driftless/driftless/tokens"
	consul "github.com/hashicorp/consul/api"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/driftless/driftless/catalog"
	"github.com/driftless/driftless/internal/children"
	"github.com/driftless/driftless/internal/pki"
)

// RunDev runs every component of the platform in this process, with
// embedded NATS and, when none answers, Consul and containerd as children.
// It returns when ctx ends, after stopping everything it started; app
// containers keep running and are adopted by the next run.
func RunDev(ctx context.Context, cfg DevConfig) error {
	log := orDefault(cfg.Log)
	needs := cellNeeds(cfg.Agent.Network.PluginDirs)
	if !children.ConsulAnswers(ctx, cfg.Consul) {
		needs = append(needs, need{"consul", func() bool { _, err := children.FindConsul(); return err == nil },
			"run `make setup` (builds the pinned Consul into ./bin/consul) or set DRIFTLESS_CONSUL"})
	}
	if !children.ContainerdAnswers(ctx, cfg.Agent.Runtime.Address) {
		needs = append(needs, need{"containerd", haveCommand("containerd"), "apt-get install containerd (or `make setup`)"})
	}
	if err := preflight(needs); err != nil {
		return err
	}
	if len(cfg.Controller.Git.Repos) == 0 {
		return errors.New("dev needs at least one --repo (a git work tree, repository or URL)")
	}
	ctl, agent, rtr := cfg.Controller, cfg.Agent, cfg.Router
	caFile := ""
	// One metrics registry for dev's router and the controller's syslog
	// drains: the router's /metrics (--metrics) serves both.
	if rtr.Metrics == nil && ctl.DrainMetrics == nil {
		reg := prometheus.NewRegistry()
		rtr.Metrics, ctl.DrainMetrics = reg, reg
	}

	ctl.DataDir = cfg.DataDir
	agent.DataDir = filepath.Join(cfg.DataDir, "agent")
	// The data folder first, searchable by others (dev's PostgreSQL runs
	// as its own user below it): the folders made under it for secrets
	// are the owner's only.
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return fmt.Errorf("creating data dir: %w", err)
	}
	// HTTPS with a CA of dev's own, which the CLI and the cell trust.
	if ctl.TLSCert == "" {
		host, _, err := net.SplitHostPort(ctl.API)
		if err != nil {
			return fmt.Errorf("API address %s: %w", ctl.API, err)
		}
		certs, err := pki.Ensure(filepath.Join(cfg.DataDir, "tls"), []string{host, "127.0.0.1", "::1", "localhost"})
		if err != nil {
			return fmt.Errorf("the API's certificate: %w", err)
		}
		ctl.TLSCert, ctl.TLSKey, agent.CA, caFile = certs.Cert, certs.Key, certs.CA, certs.CA
	}
	if r := ctl.plainHTTPBlobStore(); r != "" {
		agent.PlainHTTPRegistries = append(agent.PlainHTTPRegistries, r) // droplets are pulled from it
	}
	rtr.AccessLogPath = filepath.Join(cfg.DataDir, "logs", "access.log")
	if ctl.RoutesURL == DefaultControllerConfig().RoutesURL {
		ctl.RoutesURL = "http://" + rtr.Listen // the statuses link to this router
	}
	srcs, _, err := sources(ctl.Git, ctl.DataDir)
	if err != nil {
		return err
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

	// Every part is in this process: each gets a credential of its own,
	// made now and never shown.
	nsrv, ctlCred, cellCred, rtrCred, err := devNATS(cfg.NATSListen, cfg.DataDir, agent.CellID, log)
	if err != nil {
		return err
	}
	stops = append(stops, nsrv.Shutdown)

	var consulToks consulTokens
	if children.ConsulAnswers(ctx, cfg.Consul) {
		if consulToks, err = devConsulTokens(ctx, cfg.DataDir, cfg.Consul, cfg.ConsulToken, log); err != nil {
			return err
		}
	} else {
		t, stop, err := startDevConsul(ctx, cfg.DataDir, cfg.Consul, log)
		if err != nil {
			return err
		}
		consulToks = t
		stops = append(stops, stop)
	}
	sock := agent.Runtime.Address
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
	agent.Runtime.Address = sock
	if cfg.Postgres {
		// Instances reach it through the bridge's walls.
		agent.Network.HostServicePorts = append(agent.Network.HostServicePorts, DefaultPostgresPort)
		spec, stop, err := devPostgres(ctx, cfg.DataDir, agent.Network, log)
		if err != nil {
			return err
		}
		stops = append(stops, stop)
		ctl.Brokers = append(ctl.Brokers, spec)
	}

	var ctlCC, agentCC, rtrCC *consul.Client
	for _, c := range []struct {
		cc    **consul.Client
		token string
	}{{&ctlCC, consulToks.controller}, {&agentCC, consulToks.cell}, {&rtrCC, consulToks.router}} {
		if *c.cc, err = catalog.NewClient(cfg.Consul, c.token); err != nil {
			return fmt.Errorf("connecting to Consul at %s: %w", cfg.Consul, err)
		}
	}
	// Dev's own credentials: the admin token the CLI is given, and the
	// cell's.
	store := tokens.NewStore(ctlCC)
	if err := bootstrapAdmin(ctx, store, cfg.DataDir, log); err != nil {
		return err
	}
	adminPath := filepath.Join(cfg.DataDir, AdminTokenFile)
	adminTok, err := devToken(ctx, store, adminPath, tokens.Request{Name: "admin", Role: tokens.RoleAdmin})
	if err != nil {
		return err
	}
	cellReq := tokens.Request{Name: "cell-" + agent.CellID, Role: tokens.RoleCell}
	if agent.Token, err = devToken(ctx, store, filepath.Join(agent.DataDir, "cell.token"), cellReq); err != nil {
		return err
	}

	ctlNC, err := ConnectNATS(nsrv.URL(), "controller", ctlCred.Identity, inProcess(ctlCred), log)
	if err != nil {
		return err
	}
	defer ctlNC.Close()
	agentNC, err := ConnectNATS(nsrv.URL(), "agent", cellCred.Identity, inProcess(cellCred), log)
	if err != nil {
		return err
	}
	defer agentNC.Close()
	rtrNC, err := ConnectNATS(nsrv.URL(), "router", rtrCred.Identity, inProcess(rtrCred), log)
	if err != nil {
		return err
	}
	defer rtrNC.Close()
	rtr.NATS = rtrNC
	r, closeAccessLog, err := newRouter(rtr, rtrCC, log)
	if err != nil {
		return err
	}
	defer closeAccessLog()

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
	ctl.Ready = func(addr string) { apiReady <- addr }
	go keepDevTokens(ctx, store, []heldToken{{adminTok, tokens.Request{Name: "admin", Role: tokens.RoleAdmin}},
		{agent.Token, cellReq}}, 500*time.Millisecond, log)
	run("controller", func() error { return runController(ctx, ctl, ctlNC, ctlCC, log) })
	run("agent", func() error { return runAgent(ctx, agent.Config, agentNC, agentCC, log) })
	run("router", func() error { return r.Run(ctx) })

	select {
	case addr := <-apiReady:
		if cfg.ClientConfig != "" {
			writeClientConfigs(cfg.ClientConfig, api.ClientConfig{API: addr, Token: adminTok, CA: caFile}, log)
		}
		if cfg.Ready != nil {
			select {
			case <-r.Ready():
			case <-ctx.Done():
			case <-time.After(10 * time.Second):
			}
			names := make([]string, len(srcs))
			for i, s := range srcs {
				names[i] = s.Name
			}
			cfg.Ready(DevInfo{HTTP: rtr.Listen, API: addr, NATS: nsrv.URL(), Consul: cfg.Consul, Containerd: sock, Sources: names,
				AdminToken: adminPath, ClientConfig: cfg.ClientConfig, CA: caFile})
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
