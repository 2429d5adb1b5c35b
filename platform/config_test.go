package platform

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/driftless/driftless/api"
	"github.com/driftless/driftless/catalog"
	"github.com/driftless/driftless/model"
	"github.com/driftless/driftless/reconciler/plan"
)

func TestRoleDefaults(t *testing.T) {
	ctl, agent, rtr := DefaultControllerConfig(), DefaultAgentConfig(), DefaultRouterConfig()
	tests := []struct {
		name      string
		got, want any
	}{
		{"controller API", ctl.API, api.DefaultAddress},
		{"controller domain", ctl.Domain, "apps.localhost"},
		{"controller data", ctl.DataDir, "/var/lib/driftless"},
		{"controller space", ctl.Git.Space, "dev"},
		{"controller poll", ctl.Git.Poll, 10 * time.Second},
		{"controller lost after", ctl.LostAfter, 10 * time.Second},
		{"controller crash policy", ctl.Crash, plan.DefaultCrashPolicy},
		{"controller NATS", ctl.NATSURL + "|" + ctl.NATSListen, "|127.0.0.1:4222"},
		{"controller consul", ctl.ConsulAddr, "127.0.0.1:8500"},
		{"agent ports", [2]int{agent.PortMin, agent.PortMax}, [2]int{61000, 61999}},
		{"agent address", agent.Address, "127.0.0.1"},
		{"agent capacity", agent.Capacity, model.Resources{DiskMB: 100 * 1024, Instances: 256}},
		{"agent containerd", agent.Runtime.Address, SystemContainerdSocket},
		{"agent network", agent.Network.Name + "|" + agent.Network.Bridge + "|" + agent.Network.Subnet, "driftless|driftless0|10.200.0.0/16"},
		{"agent data", agent.DataDir, "/var/lib/driftless/agent"},
		{"agent cell TTL", agent.CellTTL, 15 * time.Second},
		{"agent NATS", agent.NATSURL, "nats://127.0.0.1:4222"},
		{"router listen", rtr.Listen, "127.0.0.1:8080"},
		{"router timeouts", [4]time.Duration{rtr.Proxy.DialTimeout, rtr.Proxy.ResponseHeaderTimeout, rtr.Proxy.IdleConnTimeout, rtr.ReadHeaderTimeout},
			[4]time.Duration{5 * time.Second, 60 * time.Second, 90 * time.Second, 10 * time.Second}},
		{"router balance", rtr.Balance, model.BalanceRoundRobin},
		{"router access log", rtr.AccessLogPath, "-"},
	}
	for _, tt := range tests {
		if !reflect.DeepEqual(tt.got, tt.want) {
			t.Errorf("%s = %v, want %v", tt.name, tt.got, tt.want)
		}
	}
}

// TestDevComposesRoles checks that dev's defaults are the roles' own, but
// for the few dev changes.
func TestDevComposesRoles(t *testing.T) {
	dev := DefaultDevConfig()
	ctl := DefaultControllerConfig()
	ctl.Git.Poll = 2 * time.Second
	agent := DefaultAgentConfig()
	agent.CellID = "dev-cell"
	if !reflect.DeepEqual(dev.Controller, ctl) {
		t.Errorf("dev controller %+v, want %+v", dev.Controller, ctl)
	}
	if !reflect.DeepEqual(dev.Agent, agent) {
		t.Errorf("dev agent %+v, want %+v", dev.Agent, agent)
	}
	if !reflect.DeepEqual(dev.Router, DefaultRouterConfig()) {
		t.Errorf("dev router %+v", dev.Router)
	}
	if dev.DataDir != DefaultDataDir || dev.NATSListen != ctl.NATSListen || dev.Consul != ctl.ConsulAddr {
		t.Errorf("dev %+v", dev)
	}
	// Defaults are fresh values: changing one config leaves the next alone.
	dev.Controller.Git.Repos = append(dev.Controller.Git.Repos, "x")
	if len(DefaultDevConfig().Controller.Git.Repos) != 0 {
		t.Error("defaults share state")
	}
}

func TestNewRouter(t *testing.T) {
	cc, err := catalog.NewClient("127.0.0.1:1", "")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	tests := []struct {
		name    string
		change  func(*RouterConfig)
		wantErr string
	}{
		{"defaults", func(*RouterConfig) {}, ""},
		{"no access log", func(c *RouterConfig) { c.AccessLogPath = "" }, ""},
		{"access log file", func(c *RouterConfig) { c.AccessLogPath = filepath.Join(dir, "access.log") }, ""},
		{"access log folder missing", func(c *RouterConfig) { c.AccessLogPath = filepath.Join(dir, "no", "access.log") }, "opening the access log"},
		{"bad balance", func(c *RouterConfig) { c.Balance = "random" }, "creating the router"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultRouterConfig()
			tt.change(&cfg)
			r, closeLog, err := newRouter(cfg, cc, nil)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || r == nil {
				t.Fatalf("newRouter: %v", err)
			}
			closeLog()
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "access.log")); err != nil {
		t.Errorf("access log not created: %v", err)
	}
}

func TestPlainHTTPBlobStore(t *testing.T) {
	tests := []struct{ api, url, want string }{
		{"10.0.0.1:7070", "", "10.0.0.1:7070"},
		{"10.0.0.1:7070", "http://blobs.test:8080", "http://blobs.test:8080"},
		{"10.0.0.1:7070", "https://blobs.test", ""},
	}
	for _, tt := range tests {
		c := DefaultControllerConfig()
		c.API, c.BlobStoreURL = tt.api, tt.url
		if got := c.plainHTTPBlobStore(); got != tt.want {
			t.Errorf("API %s, blob store %q: %q, want %q", tt.api, tt.url, got, tt.want)
		}
	}
}
