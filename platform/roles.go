package platform

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	consul "github.com/hashicorp/consul/api"
	"github.com/nats-io/nats.go"

	"github.com/driftless/driftless/agents"
	"github.com/driftless/driftless/api"
	"github.com/driftless/driftless/blobstore"
	"github.com/driftless/driftless/bus"
	"github.com/driftless/driftless/catalog"
	"github.com/driftless/driftless/drains"
	"github.com/driftless/driftless/journal"
	"github.com/driftless/driftless/reconciler"
	"github.com/driftless/driftless/router"
	"github.com/driftless/driftless/secrets"
	"github.com/driftless/driftless/tokens"
)

// RunController runs the controller role until ctx ends: an embedded NATS
// server when no NATSURL is given, then the reconciler, blob store and API.
func RunController(ctx context.Context, cfg ControllerConfig) error {
	log := orDefault(cfg.Log)
	reg, msrv, err := openMetrics(cfg.MetricsListen, cfg.MetricsTokenFile)
	if err != nil {
		return err
	}
	defer serveMetrics(ctx, msrv, log)()
	bm, err := newBusMetrics(reg)
	if err != nil {
		return err
	}
	if reg != nil {
		cfg.Metrics = reg
	}
	url, client := cfg.NATSURL, cfg.NATSClient
	if url == "" && cfg.NATSAuth == nil {
		cc, err := catalog.NewClient(cfg.ConsulAddr, cfg.ConsulToken)
		if err != nil {
			return fmt.Errorf("connecting the controller to Consul: %w", err)
		}
		cfg.NATSAuth = tokenNATSAuth(tokens.NewStore(cc))
	}
	if url == "" {
		own := newCredential(ownControllerUser, bus.Identity{Role: bus.RoleController})
		srv, err := embeddedNATS(cfg, own, log)
		if err != nil {
			return err
		}
		defer srv.Shutdown()
		url, client = srv.URL(), inProcess(own)
		client.CAFile = cfg.NATSClient.CAFile // the embedded server's own TLS
		log.Info("embedded NATS server", "url", url)
	}
	nc, cc, err := connect(url, "controller", bus.Identity{Role: bus.RoleController}, client, cfg.ConsulAddr, cfg.ConsulToken, bm, log)
	if err != nil {
		return err
	}
	defer nc.Close()
	return runController(ctx, cfg, nc, cc, log)
}

// runController runs the reconciler, the blob store and the API on the
// given connections until ctx ends.
func runController(ctx context.Context, cfg ControllerConfig, nc *nats.Conn, cc *consul.Client, log *slog.Logger) error {
	blobDir := cfg.BlobDir
	if blobDir == "" {
		blobDir = filepath.Join(cfg.DataDir, "blobs")
	}
	blobs, err := blobstore.Open(blobDir)
	if err != nil {
		return fmt.Errorf("opening the blob store: %w", err)
	}
	srcs, policySrc, err := sources(cfg.Git, cfg.DataDir)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.API)
	if err != nil {
		return fmt.Errorf("API address %s: %w", cfg.API, err)
	}
	rc := cfg.Config
	rc.Sources, rc.PolicySource, rc.NATS, rc.Consul, rc.Blobs, rc.Log = srcs, policySrc, nc, cc, blobs, log
	jnl, err := journal.New(nc, cfg.Journal, log)
	if err != nil {
		ln.Close()
		return err
	}
	if err := jnl.EnsureEvents(ctx); err != nil {
		// Apps run without kept events or logs rather than not at all;
		// reads answer 503 with the reason, and try again.
		log.Warn("keeping events and logs", "err", err)
	}
	rc.Journal = jnl
	dc := cfg.Drains
	if dc.Log == nil {
		dc.Log = log
	}
	if dc.Metrics == nil {
		dc.Metrics = drains.NewMetrics(cfg.Metrics)
	}
	rc.Drains = drains.NewManager(jnl, dc)
	if rc.Brokers, err = newBrokers(cfg.Brokers, log); err != nil {
		ln.Close()
		return err
	}
	keysDir := cfg.SecretsDir
	if keysDir == "" {
		keysDir = filepath.Join(cfg.DataDir, "secrets")
	}
	if rc.Keys, err = secrets.LoadOrCreate(keysDir); err != nil {
		ln.Close()
		return fmt.Errorf("the platform's keys: %w", err)
	}
	fl, err := newForge(cfg.Forge, log)
	if err != nil {
		ln.Close()
		return err
	}
	if fl != nil {
		rc.Forge = fl
		go fl.reporter.Run(ctx)
	}
	var tlsConf *tls.Config
	scheme := "http"
	if cfg.TLSCert != "" || cfg.TLSKey != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			ln.Close()
			return fmt.Errorf("loading the API's certificate (--tls-cert, --tls-key): %w", err)
		}
		tlsConf = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		scheme = "https"
	}
	if rc.BlobStoreURL == "" {
		rc.BlobStoreURL = scheme + "://" + ln.Addr().String()
	}
	ctl, err := reconciler.New(rc)
	if err != nil {
		ln.Close()
		return fmt.Errorf("creating the controller: %w", err)
	}
	if rc.Metrics != nil {
		if err := rc.Metrics.Register(api.NewAppsCollector(ctl, ctl.Leads)); err != nil {
			ln.Close()
			return fmt.Errorf("registering the controller's metrics: %w", err)
		}
	}
	store := tokens.NewStore(cc)
	if err := bootstrapAdmin(ctx, store, cfg.DataDir, log); err != nil {
		ln.Close()
		return err
	}
	srv := &http.Server{
		Handler: api.NewHandler(api.ServerConfig{Backend: ctl, Blobs: blobs.Handler(), Journal: jnl, WebhookSecret: cfg.WebhookSecret, Log: log,
			PublicKey: rc.Keys.Recipient(), Tokens: store}),
		ReadHeaderTimeout: 10 * time.Second,
		TLSConfig:         tlsConf,
	}
	errs := make(chan error, 2)
	go func() {
		serve := srv.Serve
		if tlsConf != nil {
			serve = func(ln net.Listener) error { return srv.ServeTLS(ln, "", "") }
		}
		if err := serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errs <- fmt.Errorf("API server: %w", err)
		}
	}()
	if cfg.Ready != nil {
		cfg.Ready(scheme + "://" + ln.Addr().String())
	}
	go func() { errs <- ctl.Run(ctx) }()
	select {
	case <-ctx.Done():
	case err = <-errs:
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	return err
}

// RunAgent runs the agent role until ctx ends, after checking the host
// has what a cell needs.
func RunAgent(ctx context.Context, cfg AgentConfig) error {
	reg, msrv, err := openMetrics(cfg.MetricsListen, cfg.MetricsTokenFile)
	if err != nil {
		return err
	}
	log := orDefault(cfg.Log)
	defer serveMetrics(ctx, msrv, log)()
	if err := preflight(cellNeeds(cfg.Network.PluginDirs)); err != nil {
		return err
	}
	if cfg.CellID == "" {
		host, err := os.Hostname()
		if err != nil {
			return fmt.Errorf("naming the cell after the host (or give --cell-id): %w", err)
		}
		cfg.CellID = host
	}
	if cfg.Token == "" && cfg.TokenFile != "" {
		tok, err := ReadTokenFile(cfg.TokenFile)
		if err != nil {
			return err
		}
		cfg.Token = tok
	}
	if cfg.Token == "" {
		return errors.New("a cell needs its credential to pull droplets and upload staging results: " +
			"--token-file FILE or DRIFTLESS_TOKEN, a token made by `driftless token create --name cell-" + cfg.CellID + " --role cell`")
	}
	bm, err := newBusMetrics(reg)
	if err != nil {
		return err
	}
	if reg != nil {
		cfg.Metrics = reg
	}
	if cfg.NATSClient.User == "" && os.Getenv(NATSPasswordEnv) == "" {
		// The cell's token is its NATS credential too (a controller's
		// embedded server checks it: tokenNATSAuth).
		cfg.NATSClient.User, cfg.NATSClient.Password = cfg.CellID, cfg.Token
	}
	nc, cc, err := connect(cfg.NATSURL, "agent-"+cfg.CellID, bus.Identity{Role: bus.RoleCell, Cell: cfg.CellID}, cfg.NATSClient, cfg.ConsulAddr, cfg.ConsulToken, bm, log)
	if err != nil {
		return err
	}
	defer nc.Close()
	return runAgent(ctx, cfg.Config, nc, cc, log)
}

// runAgent runs a cell on the given connections until ctx ends.
func runAgent(ctx context.Context, cfg agents.Config, nc *nats.Conn, cc *consul.Client, log *slog.Logger) error {
	cfg.NATS, cfg.Consul, cfg.Log = nc, cc, log
	if cfg.Capacity.MemoryMB == 0 {
		cfg.Capacity.MemoryMB = HostMemoryMB()
	}
	a, err := agents.New(ctx, cfg)
	if err != nil {
		return fmt.Errorf("starting cell %s: %w", cfg.CellID, err)
	}
	return a.Run(ctx)
}

// RunRouter runs the router role until ctx ends.
func RunRouter(ctx context.Context, cfg RouterConfig) error {
	log := orDefault(cfg.Log)
	if cfg.GCPercent < 0 {
		return fmt.Errorf("router: collector target (--gc-percent) %d: want 0 (the runtime's) or more", cfg.GCPercent)
	}
	setGCPercent(cfg.GCPercent, log)
	// The router's metrics are served here, with the platform's token
	// check, not on a listener of the router's own.
	reg, msrv, err := openMetrics(cfg.MetricsListen, cfg.MetricsTokenFile)
	if err != nil {
		return err
	}
	defer serveMetrics(ctx, msrv, log)()
	cfg.MetricsListen = ""
	if reg != nil {
		cfg.Metrics = reg
	}
	bm, err := newBusMetrics(reg)
	if err != nil {
		return err
	}
	cc, err := bm.consulClient(cfg.ConsulAddr, cfg.ConsulToken, "router")
	if err != nil {
		return fmt.Errorf("connecting to Consul at %s: %w", cfg.ConsulAddr, err)
	}
	if cfg.NATSURL != "" {
		nc, err := ConnectNATS(cfg.NATSURL, "router", bus.Identity{Role: bus.RoleRouter}, cfg.NATSClient, log)
		if err != nil {
			return err
		}
		defer nc.Close()
		bm.watchNATS(nc, "router")
		cfg.NATS = nc
	}
	r, closeLog, err := newRouter(cfg, cc, log)
	if err != nil {
		return err
	}
	defer closeLog()
	return r.Run(ctx)
}

// newRouter prepares a router on the given Consul client, with its access
// log opened; the returned function closes the log.
func newRouter(cfg RouterConfig, cc *consul.Client, log *slog.Logger) (*router.Router, func(), error) {
	rc := cfg.Config
	rc.Consul, rc.Log = cc, log
	closeLog := func() {}
	switch cfg.AccessLogPath {
	case "":
	case "-":
		rc.AccessLog = os.Stdout
	default:
		f, err := os.OpenFile(cfg.AccessLogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return nil, nil, fmt.Errorf("opening the access log: %w", err)
		}
		rc.AccessLog, closeLog = f, func() { f.Close() }
	}
	r, err := router.New(rc)
	if err != nil {
		closeLog()
		return nil, nil, fmt.Errorf("creating the router: %w", err)
	}
	return r, closeLog, nil
}

// connect dials NATS for one component as id and makes its Consul client
// with its token; bm counts the errors of both (nil: not counted).
func connect(natsURL, component string, id bus.Identity, cl NATSClientConfig, consulAddr, consulToken string, bm *busMetrics, log *slog.Logger) (*nats.Conn, *consul.Client, error) {
	role := string(id.Role)
	cc, err := bm.consulClient(consulAddr, consulToken, role)
	if err != nil {
		return nil, nil, fmt.Errorf("connecting %s to Consul: %w", component, err)
	}
	nc, err := ConnectNATS(natsURL, component, id, cl, log)
	if err != nil {
		return nil, nil, err
	}
	bm.watchNATS(nc, role)
	return nc, cc, nil
}

// HostMemoryMB is the host's memory in MB, from /proc/meminfo.
func HostMemoryMB() int64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 4096
	}
	defer f.Close()
	var kb int64
	if _, err := fmt.Fscanf(f, "MemTotal: %d kB", &kb); err != nil {
		return 4096
	}
	return kb / 1024
}

func orDefault(log *slog.Logger) *slog.Logger {
	if log == nil {
		return slog.Default()
	}
	return log
}
