package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/driftless/driftless/dashboard"
	"github.com/driftless/driftless/platform"
)

// Each role's flags bind the fields of its platform config, starting from
// the platform's defaults; the command only adds the logger and runs it.

func newDevCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run the whole platform on this host (embedded NATS; Consul and containerd started when none answers)",
		Args:  cobra.NoArgs,
	}
	cfg := devFlags(cmd.Flags())
	down := cmd.Flags().Bool("down", false, "instead of running: stop the apps a stopped dev on --data left running and remove its containers, network attachments, NAT and filter rules and bridge (--data is enough: dev records its containerd socket, bridge and subnet there); the data folder stays")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		cfg.Log = logger(cmd)
		if *down {
			rep, err := platform.DownDev(cmd.Context(), *cfg)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "dev --down %s: %s\n", cfg.DataDir, rep)
			return nil
		}
		cfg.Ready = func(info platform.DevInfo) {
			metrics := ""
			if info.Metrics != "" {
				metrics = "\n  metrics: http://" + info.Metrics + "/metrics"
			}
			fmt.Fprintf(os.Stderr, "\ndriftless is running.\n  apps:    http://%s  (Host: <app>.%s)\n  API:     %s  (driftless apps | status | logs APP)\n  dashboard: %s%s  (sign in with a token)\n  sources: %s%s\n  admin token: %s%s\n"+
				"  stop:    Ctrl-C; the apps keep running until `driftless dev --down --data %s` removes them\n\n",
				info.HTTP, cfg.Controller.Domain, info.API, info.API, dashboard.Prefix, strings.Join(cfg.Controller.Git.Repos, ", "), metrics, info.AdminToken, configNote(info.ClientConfig), cfg.DataDir)
		}
		return platform.RunDev(cmd.Context(), *cfg)
	}
	return cmd
}

// devFlags declares dev's flags on f and returns the config they fill.
func devFlags(f *pflag.FlagSet) *platform.DevConfig {
	cfg := platform.DefaultDevConfig()
	dataFlag(f, &cfg.DataDir, "folder for all platform state")
	controllerFlags(f, &cfg.Controller)
	cellFlags(f, &cfg.Agent, "cell-memory", " (a private containerd is started if none answers)")
	httpFlag(f, &cfg.Router.Listen)
	f.StringVar(&cfg.NATSListen, "nats", cfg.NATSListen, "embedded NATS listen address")
	f.BoolVar(&cfg.Postgres, "postgres", cfg.Postgres, "also run PostgreSQL (on the cells' bridge) and the built-in postgres service broker")
	consulFlag(f, &cfg.Consul, " (a dev agent is started there if none answers)")
	f.StringVar(&cfg.ClientConfig, "client-config", cfg.ClientConfig, "the CLI's configuration file dev writes its API address and admin token into (\"\" for none)")
	consulTokenFlag(f, &cfg.ConsulToken, " for every role when Consul answers before dev starts (one that dev starts gets ACLs and a token per role)")
	metricsFlags(f, &cfg.MetricsListen, &cfg.MetricsTokenFile, " of every role")
	return &cfg
}

// metricsFlags binds --metrics and --metrics-token-file; what says whose
// metrics are served.
func metricsFlags(f *pflag.FlagSet, listen, tokenFile *string, what string) {
	f.StringVar(listen, "metrics", *listen, "address serving Prometheus metrics at /metrics"+what+" (empty: none; one that is not loopback-only needs --metrics-token-file)")
	f.StringVar(tokenFile, "metrics-token-file", *tokenFile, "file (mode 0600) holding the bearer token scrapers of --metrics must send")
}

// configNote tells where dev wrote the CLI's configuration.
func configNote(path string) string {
	if path == "" {
		return ""
	}
	return " (in " + path + ", which the CLI reads)"
}

func newControllerCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "controller",
		Short: "Run the controller: git sources, staging, convergence, API and blob store",
		Args:  cobra.NoArgs,
	}
	cfg := controllerRoleFlags(cmd.Flags())
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		cfg.Log = logger(cmd)
		return platform.RunController(cmd.Context(), *cfg)
	}
	return cmd
}

// controllerRoleFlags declares the controller role's flags on f and
// returns the config they fill.
func controllerRoleFlags(f *pflag.FlagSet) *platform.ControllerConfig {
	cfg := platform.DefaultControllerConfig()
	dataFlag(f, &cfg.DataDir, "folder for controller state (blob store, clones)")
	controllerFlags(f, &cfg)
	f.StringVar(&cfg.BlobStoreURL, "blobstore-url", cfg.BlobStoreURL, "URL cells use to reach the blob store (default: http://<api>)")
	f.StringVar(&cfg.NATSURL, "nats", cfg.NATSURL, "NATS URL (default: run an embedded server)")
	f.StringVar(&cfg.NATSListen, "nats-listen", cfg.NATSListen, "embedded NATS listen address when --nats is not given")
	natsClientFlags(f, &cfg.NATSClient)
	natsServerFlags(f, &cfg)
	consulFlag(f, &cfg.ConsulAddr, "")
	consulTokenFlag(f, &cfg.ConsulToken, " with the driftless-controller policy")
	f.StringVar(&cfg.ID, "id", cfg.ID, "name of this controller in leader election (default: host-pid)")
	f.StringVar(&cfg.BlobDir, "blobs", cfg.BlobDir, "blob store folder, shared by controllers that stand in for each other (default: <data>/blobs)")
	metricsFlags(f, &cfg.MetricsListen, &cfg.MetricsTokenFile, " of the controller")
	return &cfg
}

func newAgentCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run a cell agent: instances in containerd, health checks, Consul registration, staging",
		Args:  cobra.NoArgs,
	}
	cfg := agentFlags(cmd.Flags())
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		cfg.Log = logger(cmd)
		if cfg.Token == "" && cfg.TokenFile == "" {
			cfg.Token = os.Getenv("DRIFTLESS_TOKEN")
		}
		return platform.RunAgent(cmd.Context(), *cfg)
	}
	return cmd
}

// agentFlags declares the agent role's flags on f and returns the config
// they fill.
func agentFlags(f *pflag.FlagSet) *platform.AgentConfig {
	cfg := platform.DefaultAgentConfig()
	dataFlag(f, &cfg.DataDir, "folder for instance records, logs and the staging cache")
	cellFlags(f, &cfg, "memory", "")
	f.StringVar(&cfg.CellID, "cell-id", cfg.CellID, "unique, stable name of this cell (default: hostname)")
	f.StringVar(&cfg.Address, "address", cfg.Address, "address routers reach this cell's instances on")
	f.StringVar(&cfg.Zone, "zone", cfg.Zone, "availability zone of this cell")
	f.Int64Var(&cfg.Capacity.DiskMB, "disk-mb", cfg.Capacity.DiskMB, "disk offered to instances, in MB")
	f.IntVar(&cfg.Capacity.Instances, "max-instances", cfg.Capacity.Instances, "most instances this cell runs")
	f.StringVar(&cfg.NATSURL, "nats", cfg.NATSURL, "NATS URL")
	f.StringVar(&cfg.CA, "ca", cfg.CA, "PEM file of the CA the controller's HTTPS blob store is checked against (default: the system's roots)")
	f.StringVar(&cfg.TokenFile, "token-file", cfg.TokenFile, "file (mode 0600) holding the cell's credential, a token of role cell (`driftless token create --name cell-ID --role cell`); or DRIFTLESS_TOKEN")
	natsClientFlags(f, &cfg.NATSClient)
	consulFlag(f, &cfg.ConsulAddr, " of the local Consul agent")
	consulTokenFlag(f, &cfg.ConsulToken, " with the driftless-cell policy")
	f.StringVar(&cfg.Runtime.Namespace, "namespace", cfg.Runtime.Namespace, "containerd namespace")
	f.StringVar(&cfg.Network.Name, "network", cfg.Network.Name, "CNI network name; cells sharing a host need different names")
	hostServicePortFlag(f, &cfg.Network.HostServicePorts)
	f.DurationVar(&cfg.CellTTL, "cell-ttl", cfg.CellTTL, "how long the cell's instances stay routable after the agent stops reporting (at least 20 s, Consul's least session)")
	f.StringVar(&cfg.StacksDir, "stacks", cfg.StacksDir, "stacks built on this cell (scripts/build-stack.sh)")
	f.StringVar(&cfg.Buildpacks.GoRoot, "go-root", cfg.Buildpacks.GoRoot, "Go toolchain for the go buildpack (default /usr/local/go when present)")
	f.StringArrayVar(&cfg.PlainHTTPRegistries, "plain-http-registry", cfg.PlainHTTPRegistries,
		"registry host:port (or http:// URL) pulled from over plain HTTP: the controller's blob store when it is served at http://<api> (loopback ones always are; repeatable)")
	f.StringVar(&cfg.Buildpacks.StaticServer, "static-server", cfg.Buildpacks.StaticServer, "driftless-static binary for the static buildpack (default: beside driftless, or on PATH)")
	metricsFlags(f, &cfg.MetricsListen, &cfg.MetricsTokenFile, " of the cell and its instances")
	return &cfg
}

func newRouterCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "router",
		Short: "Run the HTTP router, fed by Consul",
		Args:  cobra.NoArgs,
	}
	cfg := routerFlags(cmd.Flags())
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		cfg.Log = logger(cmd)
		return platform.RunRouter(cmd.Context(), *cfg)
	}
	return cmd
}

// routerFlags declares the router role's flags on f and returns the
// config they fill.
func routerFlags(f *pflag.FlagSet) *platform.RouterConfig {
	cfg := platform.DefaultRouterConfig()
	httpFlag(f, &cfg.Listen)
	f.StringVar(&cfg.TLSListen, "https", cfg.TLSListen, "HTTPS listen address (needs --cert)")
	f.Var(certsValue{&cfg.Certs}, "cert", "TLS certificate and key files, CERT.pem:KEY.pem, chosen by SNI (repeatable)")
	f.BoolVar(&cfg.RedirectHTTP, "redirect-http", cfg.RedirectHTTP, "answer plain HTTP with a redirect to HTTPS")
	f.BoolVar(&cfg.NetHTTP2, "net-http2", cfg.NetHTTP2, "serve HTTP/2 (over TLS, and h2c on the plain listener) with net/http's server rather than the router's fast path")
	metricsFlags(f, &cfg.MetricsListen, &cfg.MetricsTokenFile, " of the router (and Go profiles at /debug/pprof/)")
	f.BoolVar(&cfg.AppLogs, "app-logs", cfg.AppLogs, "put each request's line into the app's log (RTR lines, over NATS)")
	f.Var(prefixesValue{&cfg.Proxy.TrustedProxies}, "trusted-proxy", "network whose X-Forwarded-For/-Proto are kept, e.g. 10.0.0.0/8 (repeatable)")
	f.DurationVar(&cfg.Proxy.DialTimeout, "dial-timeout", cfg.Proxy.DialTimeout, "connecting to an instance")
	f.DurationVar(&cfg.Proxy.ResponseHeaderTimeout, "response-timeout", cfg.Proxy.ResponseHeaderTimeout, "waiting for an instance's response headers")
	f.DurationVar(&cfg.Proxy.IdleConnTimeout, "idle-timeout", cfg.Proxy.IdleConnTimeout, "idle keep-alive connections to instances")
	f.DurationVar(&cfg.ReadHeaderTimeout, "read-header-timeout", cfg.ReadHeaderTimeout, "a client must send its request headers within this")
	f.DurationVar(&cfg.Proxy.BodyTimeout, "body-timeout", cfg.Proxy.BodyTimeout, "each read of a request body must bring bytes within this, else 408 (negative: no limit)")
	f.Int64Var(&cfg.Proxy.MinBodyRate, "min-body-rate", cfg.Proxy.MinBodyRate, "least average rate of a request body in bytes/s, counted after 10 s, else 408 (negative: none)")
	f.Var(balanceValue{&cfg.Balance}, "balance", "balancing of apps whose routes do not choose: round-robin or least-connections")
	consulFlag(f, &cfg.ConsulAddr, "")
	consulTokenFlag(f, &cfg.ConsulToken, " with the driftless-router policy")
	f.StringVar(&cfg.NATSURL, "nats", cfg.NATSURL, "NATS URL, to wake sleeping previews and report which apps get requests (empty: none)")
	natsClientFlags(f, &cfg.NATSClient)
	f.StringVar(&cfg.AccessLogPath, "access-log", cfg.AccessLogPath, "access log file (- for stdout, empty for none)")
	f.IntVar(&cfg.GCPercent, "gc-percent", cfg.GCPercent, "the Go collector's target (GOGC) for the router's process, unless GOGC is set; 0 keeps the runtime's 100 (negative is refused)")
	return &cfg
}
