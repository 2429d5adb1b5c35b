package platform

import (
	"context"
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
	"github.com/driftless/driftless/reconciler"
	"github.com/driftless/driftless/reconciler/plan"
	"github.com/driftless/driftless/reconciler/source"
	"github.com/driftless/driftless/router"
)

// ControllerConfig configures the controller role: the reconciler, the
// blob store and the API.
type ControllerConfig struct {
	DataDir string
	Sources []reconciler.SourceConfig
	Domain  string
	// API is where the REST API and blob store listen.
	API string
	// BlobStoreURL is how cells reach the blob store; empty means
	// "http://" + API.
	BlobStoreURL  string
	WebhookSecret string
	NATS          *nats.Conn
	Consul        *consul.Client
	// PolicySource is the git source of the policies (nil: built-in).
	PolicySource *source.Config
	// BlobDir holds the blob store (default DataDir/blobs). Controllers
	// that stand in for each other (HA) must share it.
	BlobDir string
	// ID names the controller in leader election (default host-pid).
	ID string
	// Tuning, zero for defaults (see reconciler.Config).
	ConvergeInterval, LostAfter, Warmup time.Duration
	Crash                               plan.CrashPolicy
	Log                                 *slog.Logger
	// Ready, if set, is called with the API's address once it listens.
	Ready func(apiAddr string)
}

// RunController runs the controller role until ctx ends.
func RunController(ctx context.Context, cfg ControllerConfig) error {
	log := cfg.Log
	blobDir := cfg.BlobDir
	if blobDir == "" {
		blobDir = filepath.Join(cfg.DataDir, "blobs")
	}
	blobs, err := blobstore.Open(blobDir)
	if err != nil {
		return fmt.Errorf("opening the blob store: %w", err)
	}
	ln, err := net.Listen("tcp", cfg.API)
	if err != nil {
		return fmt.Errorf("API address %s: %w", cfg.API, err)
	}
	blobURL := cfg.BlobStoreURL
	if blobURL == "" {
		blobURL = "http://" + ln.Addr().String()
	}
	ctl, err := reconciler.New(reconciler.Config{
		Sources: cfg.Sources, Domain: cfg.Domain, NATS: cfg.NATS, Consul: cfg.Consul,
		Blobs: blobs, BlobStoreURL: blobURL,
		ConvergeInterval: cfg.ConvergeInterval, LostAfter: cfg.LostAfter, Warmup: cfg.Warmup,
		Crash: cfg.Crash, ID: cfg.ID, PolicySource: cfg.PolicySource, Log: log,
	})
	if err != nil {
		ln.Close()
		return err
	}
	hub, err := api.NewLogHub(cfg.NATS)
	if err != nil {
		ln.Close()
		return err
	}
	defer hub.Close()
	srv := &http.Server{
		Handler:           api.NewHandler(api.ServerConfig{Backend: ctl, Blobs: blobs.Handler(), Logs: hub, WebhookSecret: cfg.WebhookSecret, Log: log}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	errs := make(chan error, 2)
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errs <- fmt.Errorf("API server: %w", err)
		}
	}()
	if cfg.Ready != nil {
		cfg.Ready(ln.Addr().String())
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

// AgentConfig is the agent role: agents.Config plus where it connects.
type AgentConfig = agents.Config

// RunAgent runs the agent role until ctx ends.
func RunAgent(ctx context.Context, cfg AgentConfig) error {
	if err := preflight(cellNeeds(cfg.Network.PluginDirs)); err != nil {
		return err
	}
	a, err := agents.New(ctx, cfg)
	if err != nil {
		return err
	}
	return a.Run(ctx)
}

// RouterConfig configures the router role.
type RouterConfig = router.Config

// RunRouter runs the router role until ctx ends.
func RunRouter(ctx context.Context, cfg RouterConfig) error {
	r, err := router.New(cfg)
	if err != nil {
		return err
	}
	return r.Run(ctx)
}

// ConnectNATS dials NATS for one component, named for the server's
// connection list.
func ConnectNATS(url, component string, log *slog.Logger) (*nats.Conn, error) {
	host, _ := os.Hostname()
	return bus.Connect(url, "driftless-"+component+"@"+host, log)
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
