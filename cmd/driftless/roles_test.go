package main

import (
	"io"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/driftless/driftless/model"
	"github.com/driftless/driftless/platform"
	"github.com/driftless/driftless/router"
)

// parseFlags declares a role's flags on a fresh flag set and parses args.
func parseFlags[T any](declare func(*pflag.FlagSet) *T, args ...string) (*T, error) {
	f := pflag.NewFlagSet("test", pflag.ContinueOnError)
	f.SetOutput(io.Discard)
	cfg := declare(f)
	return cfg, f.Parse(args)
}

func TestDevFlags(t *testing.T) {
	t.Setenv("DRIFTLESS_WEBHOOK_SECRET", "")
	tests := []struct {
		name string
		args []string
		want func(*platform.DevConfig)
	}{
		{"defaults", nil, func(*platform.DevConfig) {}},
		{"as the e2e harness runs it", []string{"--data", "/d", "--repo", "/r/apps", "--repo", "team-b=/r/b",
			"--http", "127.0.0.1:18080", "--api", "127.0.0.1:17070", "--nats", "127.0.0.1:14222", "--consul", "127.0.0.1:18500",
			"--containerd", "/run/c.sock", "--ports", "40000-40099", "--bridge", "dlt0", "--subnet", "10.9.0.0/16",
			"--poll", "1s", "--cell-memory", "4G"},
			func(c *platform.DevConfig) {
				c.DataDir, c.NATSListen, c.Consul = "/d", "127.0.0.1:14222", "127.0.0.1:18500"
				c.Controller.Git.Repos = []string{"/r/apps", "team-b=/r/b"}
				c.Controller.Git.Poll = time.Second
				c.Controller.API = "127.0.0.1:17070"
				c.Router.Listen = "127.0.0.1:18080"
				c.Agent.Runtime.Address = "/run/c.sock"
				c.Agent.PortMin, c.Agent.PortMax = 40000, 40099
				c.Agent.Network.Bridge, c.Agent.Network.Subnet = "dlt0", "10.9.0.0/16"
				c.Agent.Capacity.MemoryMB = 4096
			}},
		{"controller tuning", []string{"--crash-quick-restarts", "2", "--crash-backoff", "4s", "--crash-backoff-max", "8s",
			"--crash-reset-after", "1m", "--lost-after", "4s", "--policies", "/p", "--org", "acme", "--space", "prod",
			"--domain", "example.test", "--webhook-secret", "s"},
			func(c *platform.DevConfig) {
				c.Controller.Crash.QuickRestarts, c.Controller.Crash.Backoff = 2, 4*time.Second
				c.Controller.Crash.MaxBackoff, c.Controller.Crash.ResetAfter = 8*time.Second, time.Minute
				c.Controller.LostAfter = 4 * time.Second
				c.Controller.Git.Policies, c.Controller.Git.Org, c.Controller.Git.Space = "/p", "acme", "prod"
				c.Controller.Domain, c.Controller.WebhookSecret = "example.test", "s"
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseFlags(devFlags, tt.args...)
			if err != nil {
				t.Fatal(err)
			}
			want := platform.DefaultDevConfig()
			tt.want(&want)
			if !reflect.DeepEqual(*got, want) {
				t.Errorf("got  %+v\nwant %+v", *got, want)
			}
		})
	}
}

func TestControllerFlags(t *testing.T) {
	t.Setenv("DRIFTLESS_WEBHOOK_SECRET", "")
	tests := []struct {
		name string
		args []string
		want func(*platform.ControllerConfig)
	}{
		{"defaults", nil, func(*platform.ControllerConfig) {}},
		{"as the e2e cluster runs it", []string{"--id", "ctl-1", "--repo", "/r", "--api", "10.0.0.1:7070",
			"--nats", "nats://127.0.0.1:14222", "--consul", "127.0.0.1:18500", "--data", "/d/ctl-1",
			"--blobs", "/d/blobs", "--poll", "1s", "--lost-after", "4s"},
			func(c *platform.ControllerConfig) {
				c.ID, c.API, c.NATSURL, c.ConsulAddr = "ctl-1", "10.0.0.1:7070", "nats://127.0.0.1:14222", "127.0.0.1:18500"
				c.Git.Repos, c.Git.Poll = []string{"/r"}, time.Second
				c.DataDir, c.BlobDir, c.LostAfter = "/d/ctl-1", "/d/blobs", 4*time.Second
			}},
		{"embedded NATS and blob store URL", []string{"--nats-listen", "127.0.0.1:5222", "--blobstore-url", "https://blobs.test"},
			func(c *platform.ControllerConfig) {
				c.NATSListen, c.BlobStoreURL = "127.0.0.1:5222", "https://blobs.test"
			}},
		{"NATS credentials and TLS", []string{"--nats", "tls://n:4222", "--nats-user", "ctl", "--nats-password", "pw",
			"--nats-ca", "/ca.pem", "--nats-cert", "/c.pem", "--nats-key", "/c.key"},
			func(c *platform.ControllerConfig) {
				c.NATSURL = "tls://n:4222"
				c.NATSClient = platform.NATSClientConfig{User: "ctl", Password: "pw", CAFile: "/ca.pem", CertFile: "/c.pem", KeyFile: "/c.key"}
			}},
		{"embedded NATS users and TLS", []string{"--nats-users", "/etc/nats-users.yml", "--nats-tls-cert", "/s.pem", "--nats-tls-key", "/s.key"},
			func(c *platform.ControllerConfig) {
				c.NATSUsersFile, c.NATSTLSCert, c.NATSTLSKey = "/etc/nats-users.yml", "/s.pem", "/s.key"
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseFlags(controllerRoleFlags, tt.args...)
			if err != nil {
				t.Fatal(err)
			}
			want := platform.DefaultControllerConfig()
			tt.want(&want)
			if !reflect.DeepEqual(*got, want) {
				t.Errorf("got  %+v\nwant %+v", *got, want)
			}
		})
	}
}

func TestWebhookSecretFromEnvironment(t *testing.T) {
	t.Setenv("DRIFTLESS_WEBHOOK_SECRET", "from-env")
	dev, err := parseFlags(devFlags)
	if err != nil {
		t.Fatal(err)
	}
	ctl, err := parseFlags(controllerRoleFlags, "--webhook-secret", "flag")
	if err != nil {
		t.Fatal(err)
	}
	if dev.Controller.WebhookSecret != "from-env" || ctl.WebhookSecret != "flag" {
		t.Errorf("secrets %q and %q, want from-env and flag", dev.Controller.WebhookSecret, ctl.WebhookSecret)
	}
}

func TestAgentFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want func(*platform.AgentConfig)
	}{
		{"defaults", nil, func(*platform.AgentConfig) {}},
		{"as the e2e cluster runs it", []string{"--cell-id", "a", "--address", "10.1.0.2", "--zone", "z-a",
			"--memory", "2G", "--nats", "nats://10.1.0.1:4222", "--consul", "10.1.0.1:8500", "--containerd", "/run/c.sock",
			"--namespace", "a", "--network", "dl-a", "--bridge", "dlb-a", "--subnet", "10.7.1.0/24", "--ports", "50000-50099",
			"--data", "/d/agent-a"},
			func(c *platform.AgentConfig) {
				c.CellID, c.Address, c.Zone, c.Capacity.MemoryMB = "a", "10.1.0.2", "z-a", 2048
				c.NATSURL, c.ConsulAddr = "nats://10.1.0.1:4222", "10.1.0.1:8500"
				c.Runtime.Address, c.Runtime.Namespace = "/run/c.sock", "a"
				c.Network.Name, c.Network.Bridge, c.Network.Subnet = "dl-a", "dlb-a", "10.7.1.0/24"
				c.PortMin, c.PortMax, c.DataDir = 50000, 50099, "/d/agent-a"
			}},
		{"one host service port", []string{"--host-service-port", "5432"},
			func(c *platform.AgentConfig) { c.Network.HostServicePorts = []int{5432} }},
		{"host service ports, repeated, one twice", []string{"--host-service-port", "5432", "--host-service-port", "53",
			"--host-service-port", "5432"},
			func(c *platform.AgentConfig) { c.Network.HostServicePorts = []int{5432, 53} }},
		{"NATS credential", []string{"--nats-user", "cell-a", "--nats-ca", "/ca.pem"},
			func(c *platform.AgentConfig) {
				c.NATSClient = platform.NATSClientConfig{User: "cell-a", CAFile: "/ca.pem"}
			}},
		{"capacity and staging", []string{"--disk-mb", "2048", "--max-instances", "8", "--cell-ttl", "30s",
			"--stacks", "/s", "--go-root", "/go", "--static-server", "/bin/st",
			"--plain-http-registry", "10.0.0.1:7070", "--plain-http-registry", "http://blobs:80"},
			func(c *platform.AgentConfig) {
				c.Capacity.DiskMB, c.Capacity.Instances, c.CellTTL = 2048, 8, 30*time.Second
				c.StacksDir, c.Buildpacks.GoRoot, c.Buildpacks.StaticServer = "/s", "/go", "/bin/st"
				c.PlainHTTPRegistries = []string{"10.0.0.1:7070", "http://blobs:80"}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseFlags(agentFlags, tt.args...)
			if err != nil {
				t.Fatal(err)
			}
			want := platform.DefaultAgentConfig()
			tt.want(&want)
			if !reflect.DeepEqual(*got, want) {
				t.Errorf("got  %+v\nwant %+v", *got, want)
			}
		})
	}
}

func TestRouterFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want func(*platform.RouterConfig)
	}{
		{"defaults", nil, func(*platform.RouterConfig) {}},
		{"as the benchmark runs it", []string{"--http", "127.0.0.1:9000", "--consul", "127.0.0.1:18500", "--access-log", ""},
			func(c *platform.RouterConfig) {
				c.Listen, c.ConsulAddr, c.AccessLogPath = "127.0.0.1:9000", "127.0.0.1:18500", ""
			}},
		{"NATS credential", []string{"--nats-user", "rtr", "--nats-password", "pw"},
			func(c *platform.RouterConfig) {
				c.NATSClient = platform.NATSClientConfig{User: "rtr", Password: "pw"}
			}},
		{"TLS, proxies, timeouts, balance", []string{"--https", ":443", "--cert", "a.pem:a.key", "--cert", "b.pem:b.key",
			"--redirect-http", "--metrics", ":9100", "--trusted-proxy", "10.0.0.0/8", "--trusted-proxy", "192.168.0.0/16",
			"--dial-timeout", "1s", "--response-timeout", "2s", "--idle-timeout", "3s", "--read-header-timeout", "4s",
			"--body-timeout", "5s", "--min-body-rate", "1000",
			"--balance", "least-connections", "--access-log", "/var/log/access.log"},
			func(c *platform.RouterConfig) {
				c.TLSListen, c.RedirectHTTP, c.MetricsListen = ":443", true, ":9100"
				c.Certs = []router.CertFile{{Cert: "a.pem", Key: "a.key"}, {Cert: "b.pem", Key: "b.key"}}
				c.Proxy.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.168.0.0/16")}
				c.Proxy.DialTimeout, c.Proxy.ResponseHeaderTimeout = time.Second, 2*time.Second
				c.Proxy.IdleConnTimeout, c.ReadHeaderTimeout = 3*time.Second, 4*time.Second
				c.Proxy.BodyTimeout, c.Proxy.MinBodyRate = 5*time.Second, 1000
				c.Balance, c.AccessLogPath = model.BalanceLeastConnections, "/var/log/access.log"
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseFlags(routerFlags, tt.args...)
			if err != nil {
				t.Fatal(err)
			}
			want := platform.DefaultRouterConfig()
			tt.want(&want)
			if !reflect.DeepEqual(*got, want) {
				t.Errorf("got  %+v\nwant %+v", *got, want)
			}
		})
	}
}

func TestInvalidFlags(t *testing.T) {
	type parse func(args ...string) error
	dev := func(args ...string) error { _, err := parseFlags(devFlags, args...); return err }
	agent := func(args ...string) error { _, err := parseFlags(agentFlags, args...); return err }
	rtr := func(args ...string) error { _, err := parseFlags(routerFlags, args...); return err }
	ctl := func(args ...string) error { _, err := parseFlags(controllerRoleFlags, args...); return err }
	tests := []struct {
		name  string
		parse parse
		args  []string
		want  []string // substrings of the error
	}{
		{"ports below 1024", dev, []string{"--ports", "80-90"}, []string{`"--ports"`, "want MIN-MAX within 1024-65535"}},
		{"ports reversed", agent, []string{"--ports", "62000-61000"}, []string{`"--ports"`, "MIN-MAX"}},
		{"ports not numbers", agent, []string{"--ports", "a-b"}, []string{`"--ports"`}},
		{"memory without unit", dev, []string{"--cell-memory", "4096"}, []string{`"--cell-memory"`, "reading the size"}},
		{"agent memory", agent, []string{"--memory", "lots"}, []string{`"--memory"`}},
		{"host service port not a number", agent, []string{"--host-service-port", "pg"}, []string{`"--host-service-port"`, "want a TCP port"}},
		{"host service port out of range", agent, []string{"--host-service-port", "70000"}, []string{`"--host-service-port"`, "want a TCP port"}},
		{"host service port a list", agent, []string{"--host-service-port", "5432,53"}, []string{`"--host-service-port"`, "want a TCP port"}},
		{"unknown balancing", rtr, []string{"--balance", "random"}, []string{`"--balance"`, `balancing "random" is not round-robin or least-connections`}},
		{"certificate without key", rtr, []string{"--cert", "a.pem"}, []string{`"--cert"`, "want CERT.pem:KEY.pem"}},
		{"trusted proxy without length", rtr, []string{"--trusted-proxy", "10.0.0.1"}, []string{`"--trusted-proxy"`, "reading the network"}},
		{"poll not a duration", ctl, []string{"--poll", "often"}, []string{`"--poll"`}},
		{"unknown flag", ctl, []string{"--repos", "/r"}, []string{"unknown flag: --repos"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.parse(tt.args...)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

// TestFlagNames keeps every flag the e2e tests, scripts, benchmarks and
// docs use, with the defaults the help shows.
func TestFlagNames(t *testing.T) {
	roles := map[string]map[string]string{ // role → flag → default shown ("*": any)
		"dev": {"data": "/var/lib/driftless", "repo": "[]", "space": "dev", "org": "", "policies": "",
			"http": "127.0.0.1:8080", "api": "127.0.0.1:7070", "domain": "apps.localhost", "nats": "127.0.0.1:4222",
			"consul": "127.0.0.1:8500", "containerd": "/run/containerd/containerd.sock", "bridge": "driftless0",
			"subnet": "10.200.0.0/16", "poll": "2s", "lost-after": "10s", "ports": "61000-61999", "cell-memory": "",
			"webhook-secret": "*", "crash-quick-restarts": "3", "crash-backoff": "30s", "crash-backoff-max": "*", "crash-reset-after": "*",
			"preview-idle": "30m0s", "forge-api": "", "forge-token": "", "forge": "github", "pr-poll": "1m0s", "routes-url": "http://", "broker": "[]", "secrets": "", "postgres": "false", "consul-token": "", "down": "false",
			"metrics": "", "metrics-token-file": "", "log-retention": "168h0m0s", "log-max-bytes": "1024M", "log-replicas": "1"},
		"controller": {"data": "/var/lib/driftless", "repo": "[]", "policies": "", "space": "dev", "org": "",
			"api": "127.0.0.1:7070", "blobstore-url": "", "domain": "apps.localhost", "nats": "", "nats-listen": "127.0.0.1:4222",
			"consul": "127.0.0.1:8500", "poll": "10s", "lost-after": "10s", "webhook-secret": "*", "id": "", "blobs": "",
			"crash-quick-restarts": "3", "crash-backoff": "30s", "crash-backoff-max": "*", "crash-reset-after": "*",
			"preview-idle": "30m0s", "forge-api": "", "forge-token": "", "forge": "github", "pr-poll": "1m0s", "routes-url": "http://", "broker": "[]", "secrets": "",
			"nats-user": "", "nats-password": "", "nats-ca": "", "nats-cert": "", "nats-key": "", "nats-users": "", "nats-tls-cert": "", "nats-tls-key": "", "consul-token": "",
			"metrics": "", "metrics-token-file": "", "log-retention": "168h0m0s", "log-max-bytes": "1024M", "log-replicas": "1"},
		"agent": {"cell-id": "", "address": "127.0.0.1", "zone": "", "memory": "", "disk-mb": "102400", "max-instances": "256",
			"nats": "nats://127.0.0.1:4222", "consul": "127.0.0.1:8500", "containerd": "/run/containerd/containerd.sock",
			"namespace": "driftless", "bridge": "driftless0", "subnet": "10.200.0.0/16", "ports": "61000-61999",
			"data": "/var/lib/driftless/agent", "network": "driftless", "cell-ttl": "15s", "stacks": "/var/lib/driftless/stacks",
			"go-root": "", "static-server": "", "plain-http-registry": "[]", "host-service-port": "[]",
			"nats-user": "", "nats-password": "", "nats-ca": "", "consul-token": "", "metrics": "", "metrics-token-file": ""},
		"router": {"http": "127.0.0.1:8080", "https": "", "cert": "", "redirect-http": "false", "net-http2": "false", "metrics": "",
			"trusted-proxy": "", "dial-timeout": "5s", "response-timeout": "1m0s", "idle-timeout": "1m30s",
			"read-header-timeout": "10s", "body-timeout": "30s", "min-body-rate": "240", "balance": "round-robin", "consul": "127.0.0.1:8500", "access-log": "-", "app-logs": "true",
			"nats": "nats://127.0.0.1:4222", "nats-user": "", "nats-password": "", "nats-ca": "", "consul-token": "", "metrics-token-file": ""},
	}
	root := newRoot()
	for role, flags := range roles {
		cmd, _, err := root.Find([]string{role})
		if err != nil || cmd.Name() != role {
			t.Fatalf("no %s command: %v", role, err)
		}
		for name, def := range flags {
			f := cmd.Flags().Lookup(name)
			if f == nil {
				t.Errorf("%s has no --%s", role, name)
				continue
			}
			if def != "*" && f.DefValue != def {
				t.Errorf("%s --%s default %q, want %q", role, name, f.DefValue, def)
			}
		}
	}
}

// TestConsulToken: every role takes its Consul token from
// CONSUL_HTTP_TOKEN, --consul-token wins over it, and the help never shows
// it as a default.
func TestConsulToken(t *testing.T) {
	token := func(declare func(*pflag.FlagSet) *string) func(args ...string) (string, string, error) {
		return func(args ...string) (string, string, error) {
			f := pflag.NewFlagSet("test", pflag.ContinueOnError)
			f.SetOutput(io.Discard)
			got := declare(f)
			err := f.Parse(args)
			return *got, f.Lookup("consul-token").DefValue, err
		}
	}
	roles := map[string]func(args ...string) (string, string, error){
		"dev":        token(func(f *pflag.FlagSet) *string { return &devFlags(f).ConsulToken }),
		"controller": token(func(f *pflag.FlagSet) *string { return &controllerRoleFlags(f).ConsulToken }),
		"agent":      token(func(f *pflag.FlagSet) *string { return &agentFlags(f).ConsulToken }),
		"router":     token(func(f *pflag.FlagSet) *string { return &routerFlags(f).ConsulToken }),
	}
	tests := []struct {
		name, env string
		args      []string
		want      string
	}{
		{"none", "", nil, ""},
		{"from the environment", "env-token", nil, "env-token"},
		{"the flag wins", "env-token", []string{"--consul-token", "flag-token"}, "flag-token"},
	}
	for role, parse := range roles {
		for _, tt := range tests {
			t.Run(role+"/"+tt.name, func(t *testing.T) {
				t.Setenv("CONSUL_HTTP_TOKEN", tt.env)
				// The flags read the variable when they are declared,
				// as the commands do.
				got, def, err := parse(tt.args...)
				if err != nil {
					t.Fatal(err)
				}
				if got != tt.want {
					t.Errorf("token %q, want %q", got, tt.want)
				}
				if def != "" {
					t.Errorf("the help shows the token %q as the default", def)
				}
			})
		}
	}
}
