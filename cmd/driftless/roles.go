package main

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/driftless/driftless/agents"
	"github.com/driftless/driftless/api"
	"github.com/driftless/driftless/bus"
	"github.com/driftless/driftless/catalog"
	"github.com/driftless/driftless/manifests"
	"github.com/driftless/driftless/platform"
	"github.com/driftless/driftless/reconciler"
	"github.com/driftless/driftless/reconciler/plan"
	"github.com/driftless/driftless/reconciler/source"
	"github.com/driftless/driftless/router"
)

const defaultDataDir = "/var/lib/driftless"

func newDevCmd() *cobra.Command {
	var cfg platform.DevConfig
	var ports string
	var memory string
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run the whole platform on this host (embedded NATS; Consul and containerd started when none answers)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			if cfg.PortMin, cfg.PortMax, err = parsePorts(ports); err != nil {
				return err
			}
			if memory != "" {
				mb, err := manifests.ParseSize(memory)
				if err != nil {
					return fmt.Errorf("--cell-memory: %w", err)
				}
				cfg.CellMemoryMB = int64(mb)
			}
			cfg.Log = logger(cmd)
			cfg.Ready = func(info platform.DevInfo) {
				fmt.Fprintf(os.Stderr, "\ndriftless is running.\n  apps:    http://%s  (Host: <app>.%s)\n  API:     http://%s  (driftless apps | status | logs APP)\n  sources: %s\n\n",
					info.HTTP, cfg.Domain, info.API, strings.Join(cfg.Repos, ", "))
			}
			return platform.RunDev(cmd.Context(), cfg)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.DataDir, "data", defaultDataDir, "folder for all platform state")
	f.StringArrayVar(&cfg.Repos, "repo", nil, "git source of manifests: a work tree path (its committed HEAD deploys), a repository path, or a file:// or http(s):// URL; SPACE=… puts its apps in SPACE (repeatable)")
	f.StringVar(&cfg.Space, "space", "dev", "space of the apps in --repo")
	f.StringVar(&cfg.Org, "org", "", "organisation of the space, for org quotas")
	f.StringVar(&cfg.Policies, "policies", "", "git source of the platform's policies (*.rego, quotas.yml); default: the built-in bundle")
	f.StringVar(&cfg.HTTP, "http", "127.0.0.1:8080", "router listen address")
	f.StringVar(&cfg.API, "api", api.DefaultAddress, "API listen address")
	f.StringVar(&cfg.Domain, "domain", "apps.localhost", "default domain of app routes")
	f.StringVar(&cfg.NATS, "nats", "127.0.0.1:4222", "embedded NATS listen address")
	f.StringVar(&cfg.Consul, "consul", "127.0.0.1:8500", "Consul HTTP address (a dev agent is started there if none answers)")
	f.StringVar(&cfg.Containerd, "containerd", platform.SystemContainerdSocket, "containerd socket (a private containerd is started if none answers)")
	f.StringVar(&cfg.Bridge, "bridge", "driftless0", "bridge of the cell's containers")
	f.StringVar(&cfg.Subnet, "subnet", "10.200.0.0/16", "subnet of the cell's containers")
	f.DurationVar(&cfg.Poll, "poll", 2*time.Second, "how often sources are fetched")
	f.DurationVar(&cfg.LostAfter, "lost-after", 10*time.Second, "how long a silent cell stays before its instances move")
	f.StringVar(&ports, "ports", "61000-61999", "host-port range of instances")
	f.StringVar(&memory, "cell-memory", "", "memory the cell offers, e.g. 8G (default: the host's)")
	f.StringVar(&cfg.WebhookSecret, "webhook-secret", os.Getenv("DRIFTLESS_WEBHOOK_SECRET"), "enables POST /v1/webhook with this HMAC secret")
	crashFlags(f, &cfg.Crash)
	return cmd
}

// crashFlags binds the crash policy's flags (zero means the default).
func crashFlags(f *pflag.FlagSet, p *plan.CrashPolicy) {
	d := plan.DefaultCrashPolicy
	f.IntVar(&p.QuickRestarts, "crash-quick-restarts", d.QuickRestarts, "crashes in a row restarted at once before backing off")
	f.DurationVar(&p.Backoff, "crash-backoff", d.Backoff, "first wait after the quick restarts; doubles with every crash")
	f.DurationVar(&p.MaxBackoff, "crash-backoff-max", d.MaxBackoff, "longest wait between restarts of a crashing instance")
	f.DurationVar(&p.ResetAfter, "crash-reset-after", d.ResetAfter, "running this long clears an instance's crash count")
}

func newControllerCmd() *cobra.Command {
	var cfg platform.ControllerConfig
	var natsURL, consulAddr, space, org, natsListen, policiesURL string
	var repos []string
	var poll time.Duration
	cmd := &cobra.Command{
		Use:   "controller",
		Short: "Run the controller: git sources, staging, convergence, API and blob store",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			log := logger(cmd)
			if natsURL == "" {
				srv, err := bus.StartEmbedded(natsListen)
				if err != nil {
					return err
				}
				defer srv.Shutdown()
				natsURL = srv.URL()
				log.Info("embedded NATS server", "url", natsURL)
			}
			nc, err := platform.ConnectNATS(natsURL, "controller", log)
			if err != nil {
				return err
			}
			defer nc.Close()
			if cfg.Consul, err = catalog.NewClient(consulAddr); err != nil {
				return err
			}
			for i, r := range repos {
				name := fmt.Sprintf("source-%d", i+1)
				cfg.Sources = append(cfg.Sources, reconciler.SourceConfig{Space: space, Org: org, Config: source.Config{
					Name: name, URL: r, Dir: filepath.Join(cfg.DataDir, "sources", name), Poll: poll}})
			}
			if policiesURL != "" {
				cfg.PolicySource = &source.Config{Name: "policies", URL: policiesURL,
					Dir: filepath.Join(cfg.DataDir, "sources", "_policies"), Poll: poll}
			}
			cfg.NATS, cfg.Log = nc, log
			return platform.RunController(ctx, cfg)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.DataDir, "data", defaultDataDir, "folder for controller state (blob store, clones)")
	f.StringArrayVar(&repos, "repo", nil, "git source of manifests (repeatable)")
	f.StringVar(&policiesURL, "policies", "", "git source of the platform's policies (*.rego, quotas.yml); default: the built-in bundle")
	f.StringVar(&space, "space", "dev", "space of the apps in --repo")
	f.StringVar(&org, "org", "", "organisation of the space, for org quotas")
	f.StringVar(&cfg.API, "api", api.DefaultAddress, "API and blob store listen address")
	f.StringVar(&cfg.BlobStoreURL, "blobstore-url", "", "URL cells use to reach the blob store (default: http://<api>)")
	f.StringVar(&cfg.Domain, "domain", "apps.localhost", "default domain of app routes")
	f.StringVar(&natsURL, "nats", "", "NATS URL (default: run an embedded server)")
	f.StringVar(&natsListen, "nats-listen", "127.0.0.1:4222", "embedded NATS listen address when --nats is not given")
	f.StringVar(&consulAddr, "consul", "127.0.0.1:8500", "Consul HTTP address")
	f.DurationVar(&poll, "poll", 10*time.Second, "how often sources are fetched")
	f.DurationVar(&cfg.LostAfter, "lost-after", 10*time.Second, "how long a silent cell stays before its instances move")
	f.StringVar(&cfg.WebhookSecret, "webhook-secret", os.Getenv("DRIFTLESS_WEBHOOK_SECRET"), "enables POST /v1/webhook with this HMAC secret")
	f.StringVar(&cfg.ID, "id", "", "name of this controller in leader election (default: host-pid)")
	f.StringVar(&cfg.BlobDir, "blobs", "", "blob store folder, shared by controllers that stand in for each other (default: <data>/blobs)")
	crashFlags(f, &cfg.Crash)
	return cmd
}

func newAgentCmd() *cobra.Command {
	var cfg agents.Config
	var natsURL, consulAddr, ports, memory string
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run a cell agent: instances in containerd, health checks, Consul registration, staging",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log := logger(cmd)
			var err error
			if cfg.PortMin, cfg.PortMax, err = parsePorts(ports); err != nil {
				return err
			}
			cfg.Capacity.MemoryMB = platform.HostMemoryMB()
			if memory != "" {
				mb, err := manifests.ParseSize(memory)
				if err != nil {
					return fmt.Errorf("--memory: %w", err)
				}
				cfg.Capacity.MemoryMB = int64(mb)
			}
			if cfg.CellID == "" {
				cfg.CellID, _ = os.Hostname()
			}
			if cfg.NATS, err = platform.ConnectNATS(natsURL, "agent-"+cfg.CellID, log); err != nil {
				return err
			}
			defer cfg.NATS.Close()
			if cfg.Consul, err = catalog.NewClient(consulAddr); err != nil {
				return err
			}
			cfg.Log = log
			return platform.RunAgent(cmd.Context(), cfg)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.CellID, "cell-id", "", "unique, stable name of this cell (default: hostname)")
	f.StringVar(&cfg.Address, "address", "127.0.0.1", "address routers reach this cell's instances on")
	f.StringVar(&cfg.Zone, "zone", "", "availability zone of this cell")
	f.StringVar(&memory, "memory", "", "memory offered to instances, e.g. 16G (default: the host's)")
	f.Int64Var(&cfg.Capacity.DiskMB, "disk-mb", 100*1024, "disk offered to instances, in MB")
	f.IntVar(&cfg.Capacity.Instances, "max-instances", 256, "most instances this cell runs")
	f.StringVar(&natsURL, "nats", "nats://127.0.0.1:4222", "NATS URL")
	f.StringVar(&consulAddr, "consul", "127.0.0.1:8500", "local Consul agent HTTP address")
	f.StringVar(&cfg.Runtime.Address, "containerd", "/run/containerd/containerd.sock", "containerd socket")
	f.StringVar(&cfg.Runtime.Namespace, "namespace", "driftless", "containerd namespace")
	f.StringVar(&cfg.Network.Bridge, "bridge", "driftless0", "bridge of this cell's containers")
	f.StringVar(&cfg.Network.Subnet, "subnet", "10.200.0.0/16", "subnet of this cell's containers")
	f.StringVar(&ports, "ports", "61000-61999", "host-port range of instances")
	f.StringVar(&cfg.DataDir, "data", filepath.Join(defaultDataDir, "agent"), "folder for instance records, logs and the staging cache")
	f.StringVar(&cfg.Network.Name, "network", "driftless", "CNI network name; cells sharing a host need different names")
	f.DurationVar(&cfg.CellTTL, "cell-ttl", 15*time.Second, "how long the cell's instances stay routable after the agent stops reporting")
	f.StringVar(&cfg.StacksDir, "stacks", agents.DefaultStacksDir, "stacks built on this cell (scripts/build-stack.sh)")
	f.StringVar(&cfg.Buildpacks.GoRoot, "go-root", "", "Go toolchain for the go buildpack (default /usr/local/go when present)")
	f.StringVar(&cfg.Buildpacks.StaticServer, "static-server", "", "driftless-static binary for the static buildpack (default: beside driftless, or on PATH)")
	return cmd
}

func newRouterCmd() *cobra.Command {
	var cfg router.Config
	var consulAddr string
	var certs, trusted []string
	var accessLog string
	cmd := &cobra.Command{
		Use:   "router",
		Short: "Run the HTTP router, fed by Consul",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			if cfg.Consul, err = catalog.NewClient(consulAddr); err != nil {
				return err
			}
			for _, c := range certs {
				cert, key, ok := strings.Cut(c, ":")
				if !ok {
					return fmt.Errorf("--cert %q: want CERT.pem:KEY.pem", c)
				}
				cfg.Certs = append(cfg.Certs, router.CertFile{Cert: cert, Key: key})
			}
			for _, t := range trusted {
				p, err := netip.ParsePrefix(t)
				if err != nil {
					return fmt.Errorf("--trusted-proxy: %w", err)
				}
				cfg.Proxy.TrustedProxies = append(cfg.Proxy.TrustedProxies, p)
			}
			cfg.Log = logger(cmd)
			switch accessLog {
			case "":
			case "-":
				cfg.AccessLog = os.Stdout
			default:
				f, err := os.OpenFile(accessLog, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
				if err != nil {
					return fmt.Errorf("--access-log: %w", err)
				}
				defer f.Close()
				cfg.AccessLog = f
			}
			return platform.RunRouter(cmd.Context(), cfg)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Listen, "http", "127.0.0.1:8080", "HTTP listen address")
	f.StringVar(&cfg.TLSListen, "https", "", "HTTPS listen address (needs --cert)")
	f.StringArrayVar(&certs, "cert", nil, "TLS certificate and key files, CERT.pem:KEY.pem, chosen by SNI (repeatable)")
	f.BoolVar(&cfg.RedirectHTTP, "redirect-http", false, "answer plain HTTP with a redirect to HTTPS")
	f.StringVar(&cfg.MetricsListen, "metrics", "", "address serving Prometheus metrics at /metrics")
	f.StringArrayVar(&trusted, "trusted-proxy", nil, "network whose X-Forwarded-For/-Proto are kept, e.g. 10.0.0.0/8 (repeatable)")
	f.DurationVar(&cfg.Proxy.DialTimeout, "dial-timeout", 5*time.Second, "connecting to an instance")
	f.DurationVar(&cfg.Proxy.ResponseHeaderTimeout, "response-timeout", 60*time.Second, "waiting for an instance's response headers")
	f.DurationVar(&cfg.Proxy.IdleConnTimeout, "idle-timeout", 90*time.Second, "idle keep-alive connections to instances")
	f.DurationVar(&cfg.ReadHeaderTimeout, "read-header-timeout", 10*time.Second, "a client must send its request headers within this")
	f.StringVar((*string)(&cfg.Balance), "balance", "round-robin", "balancing of apps whose routes do not choose: round-robin or least-connections")
	f.StringVar(&consulAddr, "consul", "127.0.0.1:8500", "Consul HTTP address")
	f.StringVar(&accessLog, "access-log", "-", "access log file (- for stdout, empty for none)")
	return cmd
}

// parsePorts reads "MIN-MAX".
func parsePorts(s string) (int, int, error) {
	lo, hi, ok := strings.Cut(s, "-")
	a, err1 := strconv.Atoi(lo)
	b, err2 := strconv.Atoi(hi)
	if !ok || err1 != nil || err2 != nil || a < 1024 || b > 65535 || a > b {
		return 0, 0, fmt.Errorf("port range %q: want MIN-MAX within 1024-65535", s)
	}
	return a, b, nil
}
