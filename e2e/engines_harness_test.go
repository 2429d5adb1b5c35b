package e2e

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/driftless/driftless/bus"
	"github.com/driftless/driftless/catalog"
	"github.com/driftless/driftless/internal/children"
	"github.com/driftless/driftless/internal/testenv"
)

// enginesNet is the /24 of the engines' cluster bridge: not the cluster
// harness's, so that both may run on one machine.
const enginesNet = "10.216.0"

// engines are Consul and NATS as production runs them (docs/operations.md,
// "Production layout"), each server in a network namespace of its own on
// the test's bridge: three Consul servers (raft, ACLs default deny,
// gossip encrypted) with a Consul client agent on every host that runs
// driftless (the host of the controllers and the router, each cell's
// namespace), and three nats-server processes routed to each other with
// a credential, JetStream replicated.
type engines struct {
	c *cluster
	// consulServers and natsNodes are the servers' processes, by index;
	// consulIPs and natsIPs their addresses.
	consulServers, natsNodes []*proc
	consulIPs, natsIPs       []string
	// clients are the Consul client agents: "host" and each cell's.
	clients map[string]*proc
}

// startEngines makes the engines' cluster on a bridge of its own (not
// the cluster harness's: both may run at once), then starts the driftless
// processes on it as startCluster does: the controllers (with
// --log-replicas 3), the router and an agent per cell, every one given
// all three NATS URLs and its host's Consul client agent.
func startEngines(t testing.TB, cells []string, controllers int) (*cluster, *engines) {
	t.Helper()
	c := newCluster(t, "dlen0", enginesNet, "", cells)
	e := &engines{c: c, clients: map[string]*proc{}}
	t.Cleanup(e.stop) // after the roles' stop (cleanups run last first)
	consul, err := children.FindConsul()
	if err != nil {
		t.Fatal(err)
	}
	e.startConsul(consul, cells)
	e.startNATS(natsServerBin(t))
	c.startRoles(cells, controllers, "--log-replicas", "3")
	return c, e
}

// natsServerBin is bin/nats-server of the checkout (make bin/nats-server).
func natsServerBin(t testing.TB) string {
	t.Helper()
	root, err := children.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(root, "bin", "nats-server")
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("no nats-server: run `make bin/nats-server` (%v)", err)
	}
	return bin
}

// startConsul starts the three servers (namespaces dle-s1…3, .21–.23),
// the host's client agent (on the bridge address, free ports) and one in
// each cell's namespace (its address, Consul's ports), then gives every
// agent its token and mints the roles' tokens.
func (e *engines) startConsul(bin string, cells []string) {
	c := e.c
	c.t.Helper()
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	c.consulMgmt = newSecret(c.t)
	common := map[string]any{"datacenter": "dl", "encrypt": base64.StdEncoding.EncodeToString(key),
		"disable_update_check": true, "log_level": "info",
		"performance": map[string]any{"raft_multiplier": 1},
		"limits":      map[string]any{"http_max_conns_per_client": 400},
		"acl": map[string]any{"enabled": true, "default_policy": "deny", "down_policy": "extend-cache",
			"enable_token_persistence": true}}
	serverCfg := e.writeJSON("consul-server.json", common)
	clientCfg := e.writeJSON("consul-client.json", map[string]any{"encrypt": common["encrypt"], "datacenter": "dl",
		"disable_update_check": true, "log_level": "info", "acl": common["acl"]})
	mgmtCfg := e.writeJSON("consul-mgmt.json", map[string]any{"acl": map[string]any{"tokens": map[string]string{"initial_management": c.consulMgmt}}})
	for i := range 3 {
		e.consulIPs = append(e.consulIPs, fmt.Sprintf("%s.%d", enginesNet, 21+i))
	}
	join := func(args []string) []string {
		for _, ip := range e.consulIPs {
			args = append(args, "-retry-join", net.JoinHostPort(ip, "8301")) // the servers' serf port
		}
		return append(args, "-dns-port", "-1", "-grpc-port", "-1", "-grpc-tls-port", "-1")
	}
	for i, ip := range e.consulIPs {
		name := fmt.Sprintf("s%d", i+1)
		c.makeNetns("dle-"+name, "dleh-"+name, ip)
		args := join([]string{"agent", "-server", "-bootstrap-expect", "3", "-node", "srv-" + name, "-bind", ip, "-client", ip,
			"-data-dir", filepath.Join(c.dir, "consul-"+name), "-config-file", serverCfg, "-config-file", mgmtCfg})
		e.consulServers = append(e.consulServers, c.spawn("consul-"+name, "dle-"+name, nil, bin, args...))
	}
	httpPort, err := children.FreePort()
	if err != nil {
		c.t.Fatal(err)
	}
	serfPort, err := children.FreePort()
	if err != nil {
		c.t.Fatal(err)
	}
	c.consul = net.JoinHostPort(c.hostIP, strconv.Itoa(httpPort))
	e.clients["host"] = c.spawn("consul-host", "", nil, bin, join([]string{"agent", "-node", "host", "-bind", c.hostIP,
		"-client", c.hostIP, "-http-port", strconv.Itoa(httpPort), "-serf-lan-port", strconv.Itoa(serfPort),
		"-data-dir", filepath.Join(c.dir, "consul-host"), "-config-file", clientCfg})...)
	for _, name := range cells {
		cn := c.cells[name]
		e.clients[name] = c.spawn("consul-"+name, cn.ns, nil, bin, join([]string{"agent", "-node", "cell-" + name,
			"-bind", cn.ip, "-client", cn.ip, "-data-dir", filepath.Join(c.dir, "consul-cell-"+name), "-config-file", clientCfg})...)
		c.cellConsul[name] = net.JoinHostPort(cn.ip, "8500")
	}

	testenv.Eventually(c.t, 120*time.Second, 500*time.Millisecond, "the Consul servers elect a leader and know the management token", func() error {
		if _, err := e.consulLeader(); err != nil {
			return err
		}
		mc, err := catalog.NewClient(c.consul, c.consulMgmt)
		if err != nil {
			return err
		}
		_, _, err = mc.ACL().TokenReadSelf(nil)
		return err
	})
	c.consulTokens = mintRoleTokens(c.t, c.consul, c.consulMgmt, nil) // and the host agent's token
	for _, name := range cells {
		testenv.Eventually(c.t, 60*time.Second, 500*time.Millisecond, "cell "+name+"'s Consul agent gets its token", func() error {
			mc, err := catalog.NewClient(c.cellConsul[name], c.consulMgmt)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			return catalog.EnsureAgentToken(ctx, mc)
		})
	}
	testenv.Eventually(c.t, 60*time.Second, 500*time.Millisecond, "every agent is a member", func() error {
		mc, err := catalog.NewClient(c.consul, c.consulMgmt)
		if err != nil {
			return err
		}
		nodes, _, err := mc.Catalog().Nodes(nil)
		if err != nil {
			return err
		}
		if want := 3 + 1 + len(cells); len(nodes) != want {
			return fmt.Errorf("%d nodes in the catalog, want %d", len(nodes), want)
		}
		return nil
	})
}

// consulLeader is the index of the Consul server that leads raft now.
func (e *engines) consulLeader() (int, error) {
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + e.c.consul + "/v1/status/leader")
	if err != nil {
		return -1, fmt.Errorf("asking Consul its leader: %w", err)
	}
	defer resp.Body.Close()
	var leader string
	if err := json.NewDecoder(resp.Body).Decode(&leader); err != nil {
		return -1, fmt.Errorf("decoding Consul's leader: %w", err)
	}
	host, _, _ := net.SplitHostPort(leader)
	if i := slices.Index(e.consulIPs, host); i >= 0 {
		return i, nil
	}
	return -1, fmt.Errorf("no Consul leader (%q)", leader)
}

// startNATS starts three nats-server nodes (namespaces dle-n1…3,
// .31–.33) with every process's user, routed to each other with a
// credential of their own, and waits until JetStream's cluster is up.
func (e *engines) startNATS(bin string) {
	c := e.c
	c.t.Helper()
	var urls, routes []string
	for i := range 3 {
		ip := fmt.Sprintf("%s.%d", enginesNet, 31+i)
		e.natsIPs = append(e.natsIPs, ip)
		urls = append(urls, "nats://"+net.JoinHostPort(ip, "4222"))
		routes = append(routes, net.JoinHostPort(ip, "6222"))
	}
	users := make([]bus.Credential, 0, len(c.natsCreds))
	for _, cr := range c.natsCreds {
		users = append(users, cr)
	}
	routePassword := rand.Text()
	for i, ip := range e.natsIPs {
		name := fmt.Sprintf("n%d", i+1)
		c.makeNetns("dle-"+name, "dleh-"+name, ip)
		cfg := bus.ServerConfig{Name: name, Listen: net.JoinHostPort(ip, "4222"), Monitor: net.JoinHostPort(ip, "8222"),
			Cluster: "driftless", ClusterListen: net.JoinHostPort(ip, "6222"), Routes: routes,
			RouteUser: "route", RoutePassword: routePassword, StoreDir: filepath.Join(c.dir, "nats-"+name), Users: users}
		data, err := cfg.Render()
		if err != nil {
			c.t.Fatal(err)
		}
		path := filepath.Join(c.dir, "nats-"+name+".conf")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			c.t.Fatal(err)
		}
		e.natsNodes = append(e.natsNodes, c.spawn("nats-"+name, "dle-"+name, nil, bin, "-c", path))
	}
	c.natsURL = strings.Join(urls, ",")
	testenv.Eventually(c.t, 120*time.Second, 500*time.Millisecond, "the NATS nodes route to each other and JetStream is up", func() error {
		for i := range e.natsIPs {
			var routez struct {
				NumRoutes int `json:"num_routes"`
			}
			if err := e.natsMonitor(i, "/routez", &routez); err != nil {
				return err
			}
			if routez.NumRoutes < 2 {
				return fmt.Errorf("node %d has %d routes", i+1, routez.NumRoutes)
			}
			if err := e.natsMonitor(i, "/healthz", nil); err != nil {
				return err
			}
		}
		return nil
	})
}

// natsMonitor GETs path of NATS node i's monitoring endpoint into v (nil:
// only the status matters).
func (e *engines) natsMonitor(i int, path string, v any) error {
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + net.JoinHostPort(e.natsIPs[i], "8222") + path)
	if err != nil {
		return fmt.Errorf("NATS node %d: %w", i+1, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("NATS node %d %s: %d %s", i+1, path, resp.StatusCode, body)
	}
	if v == nil {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("NATS node %d %s: %w", i+1, path, err)
	}
	return nil
}

// natsClients is how many clients each running NATS node has (-1 for a
// node that is down).
func (e *engines) natsClients() []int {
	out := make([]int, len(e.natsNodes))
	for i, p := range e.natsNodes {
		var varz struct {
			Connections int `json:"connections"`
		}
		if out[i] = -1; p.running() && e.natsMonitor(i, "/varz", &varz) == nil {
			out[i] = varz.Connections
		}
	}
	return out
}

// natsStreams are the JetStream streams NATS node i holds, with the
// copies each is kept in.
func (e *engines) natsStreams(i int) (map[string]int, error) {
	var jsz struct {
		Accounts []struct {
			Streams []struct {
				Name   string `json:"name"`
				Config struct {
					Replicas int `json:"num_replicas"`
				} `json:"config"`
			} `json:"stream_detail"`
		} `json:"account_details"`
	}
	if err := e.natsMonitor(i, "/jsz?accounts=true&streams=true&config=true", &jsz); err != nil {
		return nil, err
	}
	out := map[string]int{}
	for _, a := range jsz.Accounts {
		for _, st := range a.Streams {
			out[st.Name] = st.Config.Replicas
		}
	}
	return out, nil
}

// writeJSON writes v as JSON into the cluster's folder (0600: it may hold
// a token) and returns the path.
func (e *engines) writeJSON(name string, v any) string {
	e.c.t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		e.c.t.Fatal(err)
	}
	path := filepath.Join(e.c.dir, name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		e.c.t.Fatal(err)
	}
	return path
}

// stop kills every engine process still running; on failure it prints
// the ends of their logs.
func (e *engines) stop() {
	all := slices.Concat(e.consulServers, e.natsNodes)
	for _, p := range e.clients {
		all = append(all, p)
	}
	for _, p := range all {
		if p.running() {
			p.kill()
		}
	}
	if !e.c.t.Failed() {
		return
	}
	for _, p := range all {
		data, err := os.ReadFile(p.log)
		if err != nil {
			continue
		}
		lines := strings.Split(string(data), "\n")
		if len(lines) > 30 {
			lines = lines[len(lines)-30:]
		}
		e.c.t.Logf("last lines of %s:\n%s", p.name, strings.Join(lines, "\n"))
	}
}
