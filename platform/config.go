package platform

import (
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"github.com/driftless/driftless/agents"
	"github.com/driftless/driftless/agents/network"
	"github.com/driftless/driftless/agents/runtime"
	"github.com/driftless/driftless/api"
	"github.com/driftless/driftless/bus"
	"github.com/driftless/driftless/drains"
	"github.com/driftless/driftless/journal"
	"github.com/driftless/driftless/model"
	"github.com/driftless/driftless/reconciler"
	"github.com/driftless/driftless/reconciler/plan"
	"github.com/driftless/driftless/router"
	"github.com/driftless/driftless/router/proxy"
)

// Defaults shared by several roles. Every other default is set by a role's
// Default…Config function; the CLI takes its flags' defaults from them.
const (
	// DefaultDataDir is the folder of all platform state.
	DefaultDataDir = "/var/lib/driftless"
	// DefaultDomain is the default domain of app routes.
	DefaultDomain = "apps.localhost"
	// DefaultConsul is the Consul HTTP address (a local agent).
	DefaultConsul = "127.0.0.1:8500"
	// DefaultNATSListen is where an embedded NATS server listens.
	DefaultNATSListen = "127.0.0.1:4222"
	// DefaultNATSURL is the NATS server an agent connects to.
	DefaultNATSURL = "nats://" + DefaultNATSListen
	// DefaultHTTP is the router's listen address.
	DefaultHTTP = "127.0.0.1:8080"
	// DefaultSpace is the space of the apps of a source that names none.
	DefaultSpace = "dev"
	// SystemContainerdSocket is where a system containerd listens.
	SystemContainerdSocket = "/run/containerd/containerd.sock"
)

// GitConfig is the git sources a controller follows, as the command line
// gives them.
type GitConfig struct {
	// Repos are paths of work trees or repositories, or URLs, each
	// optionally prefixed with SPACE= to put its apps in that space instead
	// of Space. A source is named after its last path element.
	Repos []string
	// Space is the space of the apps in Repos, Org its organisation (for
	// org quotas; "" for none).
	Space string
	Org   string
	// Policies is the policy source (a work tree, repository or URL, like
	// Repos); empty for the built-in bundle.
	Policies string
	// Poll is how often sources are fetched.
	Poll time.Duration
}

// ControllerConfig configures the controller role: the reconciler, the
// blob store and the API. Of the embedded reconciler.Config, Sources,
// PolicySource, NATS, Consul and Blobs are built by the role from the
// other fields; BlobStoreURL empty means "http://" (or "https://" with
// TLSCert) + the API's address.
type ControllerConfig struct {
	reconciler.Config
	// DataDir keeps the source clones and, unless BlobDir says otherwise,
	// the blob store.
	DataDir string
	// Git is the app and policy sources.
	Git GitConfig
	// API is where the REST API and blob store listen.
	API string
	// TLSCert and TLSKey are PEM files: when given, the API and the blob
	// store serve HTTPS only.
	TLSCert, TLSKey string
	// BlobDir holds the blob store (default DataDir/blobs). Controllers
	// that stand in for each other (HA) must share it.
	BlobDir       string
	WebhookSecret string
	// NATSURL is the NATS server; empty runs an embedded one listening on
	// NATSListen.
	NATSURL    string
	NATSListen string
	// NATSClient is the controller's credential (and TLS) for NATSURL.
	NATSClient NATSClientConfig
	// NATSAuth authenticates the remote cells and routers connecting to
	// the embedded server (no NATSURL): it returns who a user and
	// password are (bus.ErrUnknownUser for a user it does not know).
	// NATSUsersFile's users are asked next. The controller's own
	// connection has an in-memory credential of its own.
	NATSAuth bus.Authenticator
	// NATSUsersFile is a YAML file of NATS users (LoadNATSUsers) for the
	// embedded server; mode 0600.
	NATSUsersFile string
	// NATSTLSCert and NATSTLSKey make the embedded server speak TLS.
	NATSTLSCert, NATSTLSKey string
	// ConsulAddr is the Consul HTTP address.
	ConsulAddr string
	// ConsulToken is the controller's Consul ACL token (policy
	// catalog.RoleController); never logged.
	ConsulToken string
	// Forge is where commit statuses go and open pull requests are listed.
	Forge ForgeConfig
	// Brokers are the service brokers, each NAME=URL (credentials in the
	// URL's user info or DRIFTLESS_BROKER_<NAME>_USERNAME/_PASSWORD).
	Brokers []string
	// SecretsDir holds the platform's keys (package secrets), made there
	// when missing; controllers that stand in for each other must share
	// them. Empty means DataDir/secrets.
	SecretsDir string
	// Journal bounds the kept log lines and events (JetStream streams).
	Journal journal.Config
	// Drains tunes the forwarders of the apps' syslog drains (zero: the
	// defaults, package drains); their counters go with the controller's
	// metrics.
	Drains drains.Config
	// Ready, if set, is called with the API's URL once it listens.
	Ready func(apiAddr string)
	// MetricsListen serves the role's Prometheus metrics at /metrics
	// (internal/metricsrv; "" for none). MetricsTokenFile holds the
	// bearer token scrapers must send (mode 0600): required unless
	// MetricsListen is loopback-only.
	MetricsListen, MetricsTokenFile string
}

// DefaultControllerConfig is the controller role's configuration when
// no flag says otherwise.
func DefaultControllerConfig() ControllerConfig {
	return ControllerConfig{
		Journal: journal.DefaultConfig(),
		Config: reconciler.Config{
			Domain:          DefaultDomain,
			LostAfter:       reconciler.DefaultLostAfter,
			Crash:           plan.DefaultCrashPolicy,
			PreviewIdle:     reconciler.DefaultPreviewIdle,
			PullRequestPoll: time.Minute,
			RoutesURL:       "http://",
		},
		DataDir:    DefaultDataDir,
		Git:        GitConfig{Space: DefaultSpace, Poll: 10 * time.Second},
		API:        api.DefaultAddress,
		NATSListen: DefaultNATSListen,
		ConsulAddr: DefaultConsul,
		Forge:      ForgeConfig{Kind: "github"},
	}
}

// plainHTTPBlobStore is the registry (host:port or URL) cells pull the
// controller's droplets from when it speaks plain HTTP, else "".
func (c ControllerConfig) plainHTTPBlobStore() string {
	switch {
	case c.BlobStoreURL == "" && c.TLSCert != "":
		return ""
	case c.BlobStoreURL == "":
		return c.API // served at http://<API>
	case strings.HasPrefix(c.BlobStoreURL, "http://"):
		return c.BlobStoreURL
	}
	return ""
}

// AgentConfig configures the agent role: a cell. Of the embedded
// agents.Config, NATS and Consul are connected by the role from NATSURL
// and ConsulAddr; an empty CellID is the host's name and a zero
// Capacity.MemoryMB the host's memory.
type AgentConfig struct {
	agents.Config
	// NATSURL is the NATS server.
	NATSURL string
	// NATSClient is the cell's credential (role cell, its CellID) and TLS.
	NATSClient NATSClientConfig
	// ConsulAddr is the local Consul agent's HTTP address.
	ConsulAddr string
	// TokenFile holds the cell's credential (agents.Config.Token) when
	// Token is not given.
	TokenFile string
	// ConsulToken is the cell's Consul ACL token (policy
	// catalog.RoleCell); never logged.
	ConsulToken string
	// MetricsListen serves the role's Prometheus metrics at /metrics
	// (internal/metricsrv; "" for none). MetricsTokenFile holds the
	// bearer token scrapers must send (mode 0600): required unless
	// MetricsListen is loopback-only.
	MetricsListen, MetricsTokenFile string
}

// DefaultAgentConfig is the agent role's configuration when no flag says
// otherwise.
func DefaultAgentConfig() AgentConfig {
	return AgentConfig{
		Config: agents.Config{
			Address:   "127.0.0.1",
			Capacity:  model.Resources{DiskMB: 100 * 1024, Instances: 256},
			Runtime:   runtime.Config{Address: SystemContainerdSocket, Namespace: runtime.DefaultNamespace},
			Network:   network.Config{Name: network.DefaultName, Bridge: network.DefaultBridge, Subnet: network.DefaultSubnet},
			PortMin:   61000,
			PortMax:   61999,
			DataDir:   filepath.Join(DefaultDataDir, "agent"),
			CellTTL:   agents.DefaultCellTTL,
			StacksDir: agents.DefaultStacksDir,
		},
		NATSURL:    DefaultNATSURL,
		ConsulAddr: DefaultConsul,
	}
}

// RouterConfig configures the router role. Of the embedded router.Config,
// Consul and AccessLog are set by the role from ConsulAddr and
// AccessLogPath.
type RouterConfig struct {
	router.Config
	// ConsulAddr is the Consul HTTP address the routes come from.
	ConsulAddr string
	// ConsulToken is the router's Consul ACL token (policy
	// catalog.RoleRouter); never logged.
	ConsulToken string
	// NATSURL is the NATS server the router wakes sleeping apps and
	// reports its activity through; empty for none (sleeping previews
	// then answer 503).
	NATSURL string
	// NATSClient is the router's credential (role router) and TLS.
	NATSClient NATSClientConfig
	// AccessLogPath is the access log's file: "-" for stdout, "" for none.
	AccessLogPath string
	// MetricsTokenFile holds the bearer token scrapers of the router's
	// metrics (MetricsListen) must send (mode 0600): required unless
	// MetricsListen is loopback-only.
	MetricsTokenFile string
	// GCPercent is the Go collector's target (GOGC) for the router's
	// process, unless the GOGC environment variable is set; 0 keeps the
	// runtime's (see DefaultRouterGCPercent).
	GCPercent int
}

// DefaultRouterConfig is the router role's configuration when no flag
// says otherwise.
func DefaultRouterConfig() RouterConfig {
	return RouterConfig{
		Config: router.Config{
			Listen: DefaultHTTP,
			Proxy: proxy.Config{
				DialTimeout:           proxy.DefaultDialTimeout,
				ResponseHeaderTimeout: proxy.DefaultResponseHeaderTimeout,
				IdleConnTimeout:       proxy.DefaultIdleConnTimeout,
				BodyTimeout:           proxy.DefaultBodyTimeout,
				MinBodyRate:           proxy.DefaultMinBodyRate,
				BodyRateGrace:         proxy.DefaultBodyRateGrace,
			},
			Balance:           model.BalanceRoundRobin,
			ReadHeaderTimeout: router.DefaultReadHeaderTimeout,
			ActivityInterval:  10 * time.Second,
			MaxHeld:           100,
			AppLogs:           true,
		},
		ConsulAddr:    DefaultConsul,
		NATSURL:       DefaultNATSURL,
		AccessLogPath: "-",
		GCPercent:     DefaultRouterGCPercent,
	}
}

// DevConfig configures `driftless dev`: the whole platform on one host.
// It is made of the three roles' configurations; of theirs, the data
// folders, the access log, the connection addresses and the loggers are
// derived from DevConfig's own fields (the agent's DataDir/agent, the
// router's DataDir/logs/access.log), and the agent's Runtime.Address is
// the containerd socket: a private containerd is started under DataDir
// when none answers there.
type DevConfig struct {
	DataDir string
	// NATSListen is where the embedded NATS server listens.
	NATSListen string
	// Consul is the Consul HTTP address; a dev agent is started there
	// when none answers, with ACLs and a token per role (consulacl.go).
	Consul string
	// ConsulToken is the token every role uses on a Consul that answered
	// before dev started (one with the three roles' policies); unused
	// when dev starts its own. Never logged.
	ConsulToken string
	Controller  ControllerConfig
	Agent       AgentConfig
	Router      RouterConfig
	// Postgres starts a PostgreSQL server (Debian's, under DataDir) on the
	// cells' bridge gateway and the built-in broker, registered as
	// "postgres".
	Postgres bool
	// ClientConfig is the CLI's configuration file that dev writes with
	// its API address and admin token (api.ClientConfigPath); "" for none.
	ClientConfig string
	// MetricsListen serves every role's Prometheus metrics at /metrics on
	// one listener ("" for none); MetricsTokenFile as the roles' configs
	// say (the roles' own metrics addresses are not used).
	MetricsListen, MetricsTokenFile string
	Log                             *slog.Logger
	// Ready, if set, is called once every component runs.
	Ready func(DevInfo)
}

// DefaultDevConfig is `driftless dev`'s configuration when no flag says
// otherwise: the roles' defaults, with sources polled every 2 s, the cell
// named dev-cell and the CLI's configuration at api.ClientConfigPath.
func DefaultDevConfig() DevConfig {
	cfg := DevConfig{
		DataDir:    DefaultDataDir,
		NATSListen: DefaultNATSListen,
		Consul:     DefaultConsul,
		Controller: DefaultControllerConfig(),
		Agent:      DefaultAgentConfig(),
		Router:     DefaultRouterConfig(),
	}
	cfg.Controller.Git.Poll = 2 * time.Second
	cfg.Agent.CellID = "dev-cell"
	cfg.ClientConfig, _ = api.ClientConfigPath()
	return cfg
}

// DevInfo tells where the dev platform answers.
type DevInfo struct {
	// API is the API's URL (https://…); the others are addresses.
	HTTP, API, NATS, Consul, Containerd string
	Sources                             []string
	// AdminToken is the file holding dev's admin token, ClientConfig the
	// CLI's configuration it wrote ("" for none).
	AdminToken, ClientConfig string
	// CA is the file of the CA the API's certificate is signed by ("" if
	// dev was given a certificate).
	CA string
	// Metrics is the address serving /metrics ("" for none).
	Metrics string
}
