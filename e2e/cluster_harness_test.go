package e2e

import (
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/namespaces"

	"github.com/driftless/driftless/agents/network"
	"github.com/driftless/driftless/api"
	"github.com/driftless/driftless/bus"
	"github.com/driftless/driftless/internal/children"
	"github.com/driftless/driftless/internal/testenv"
)

// cluster is the platform as it runs past one host, on one machine: a
// NATS server, a Consul agent, containerd, controller and router processes
// on the host, and each cell agent in its own network namespace (own IP on
// a bridge the test makes), sharing containerd under its own containerd
// namespace. Everything listens on the test's bridge address or loopback.
type cluster struct {
	t       testing.TB
	dir     string
	repo    string
	bridge  string
	hostIP  string // the bridge's address: NATS, Consul and the API listen here
	natsURL string
	nats    *bus.Embedded
	consul  string
	ctrd    *testenv.Containerd
	http    string // router, on loopback
	ctls    map[string]*proc
	agents  map[string]*proc
	router  *proc
	cells   map[string]cellNet
	// cellConsul is the Consul agent a cell talks to, when not consul
	// (the engines' cluster: each host's own client agent).
	cellConsul map[string]string
	client     *api.Client // of the controller started first
	apis       map[string]string
	// admin is the admin token the first controller made.
	admin string

	// natsAuth knows natsCreds: a user per cell (named after it), "ctl"
	// for the controllers and "router"; every process gets its own.
	natsAuth  bus.Authenticator
	natsCreds map[string]bus.Credential
	natsUsers string // the --nats-users file when the controller runs NATS

	// consulTokens is each command's Consul token (its role's policy),
	// given in CONSUL_HTTP_TOKEN; consulMgmt the management token.
	consulTokens map[string]string
	consulMgmt   string
	consulProc   *children.Process

	// metricsToken, when set, is the --metrics-token-file every process
	// is started with, beside a --metrics address (metrics: process name
	// → address): the controllers' on the bridge address, the cells' on
	// theirs, the router's on loopback (metrics_test.go).
	metricsToken string
	metrics      map[string]string
}

// cellNet is where one cell lives: its namespace and address.
type cellNet struct {
	ns, ip string
}

// proc is a driftless process started by the cluster.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

const clusterNet = "10.215.0" // the test bridge's /24

// startCluster makes the bridge, the namespaces of the named cells and
// the shared engines, then starts the controller(s), the router and one
// agent per cell.
func startCluster(t testing.TB, cells []string, controllers int, ctlArgs ...string) *cluster {
	t.Helper()
	return startClusterOn(t, false, cells, controllers, ctlArgs...)
}

// startClusterOn is startCluster; with ctlNATS, the (only) controller runs
// the embedded NATS server instead of the test, its cells' and router's
// users in a --nats-users file.
func startClusterOn(t testing.TB, ctlNATS bool, cells []string, controllers int, ctlArgs ...string) *cluster {
	t.Helper()
	return startClusterWith(t, ctlNATS, "", cells, controllers, ctlArgs...)
}

// startClusterWith is startClusterOn; with metricsToken (a file), every
// process serves its metrics (cluster.metrics).
func startClusterWith(t testing.TB, ctlNATS bool, metricsToken string, cells []string, controllers int, ctlArgs ...string) *cluster {
	t.Helper()
	c := newCluster(t, "dlcl0", clusterNet, metricsToken, cells)
	if ctlNATS {
		c.natsUsersFile(controllers)
	} else {
		nsrv, err := bus.StartEmbedded(bus.EmbeddedConfig{Listen: c.hostIP + ":0", Auth: c.natsAuth, StoreDir: filepath.Join(c.dir, "nats")})
		if err != nil {
			t.Fatal(err)
		}
		c.nats = nsrv
		t.Cleanup(func() { c.nats.Shutdown() })
		c.natsURL = nsrv.URL()
	}

	port, err := children.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	c.consul = net.JoinHostPort(c.hostIP, strconv.Itoa(port))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c.consulMgmt = newSecret(t) // ACLs on, default deny: each role gets its own token
	cp, err := children.StartConsul(ctx, children.ConsulOptions{HTTPAddr: c.consul, Node: "dl-cluster",
		LogPath: filepath.Join(c.dir, "consul.log"), ACL: &children.ConsulACL{ManagementToken: c.consulMgmt, ConfigDir: c.dir}})
	if err != nil {
		t.Fatal(err)
	}
	c.consulProc = cp
	t.Cleanup(func() { _ = c.consulProc.Stop(10 * time.Second) }) // restartConsul replaces it
	c.consulTokens = mintRoleTokens(t, c.consul, c.consulMgmt, nil)
	c.startRoles(cells, controllers, ctlArgs...)
	return c
}

// newCluster makes the repository, the bridge (named bridge, address
// netPrefix.1/24), the namespaces of the named cells (netPrefix.11 on)
// and the NATS credentials of every process; the engines are the
// caller's.
func newCluster(t testing.TB, bridge, netPrefix, metricsToken string, cells []string) *cluster {
	t.Helper()
	testenv.RequireRoot(t)
	dir := testenv.ShortTempDir(t, "dl-cl-")
	c := &cluster{t: t, dir: dir, repo: filepath.Join(dir, "repo"), bridge: bridge, hostIP: netPrefix + ".1",
		ctls: map[string]*proc{}, agents: map[string]*proc{}, cells: map[string]cellNet{}, apis: map[string]string{},
		cellConsul: map[string]string{}, metricsToken: metricsToken, metrics: map[string]string{}}
	if err := os.MkdirAll(c.repo, 0o755); err != nil {
		t.Fatal(err)
	}
	testenv.Git(t, c.repo, "init", "-q", "-b", "main")
	c.makeBridge()
	for i, name := range cells {
		c.makeCellNet(name, fmt.Sprintf("%s.%d", netPrefix, 11+i))
	}

	c.natsCreds = map[string]bus.Credential{
		"ctl":    {User: "ctl", Password: rand.Text(), Identity: bus.Identity{Role: bus.RoleController}},
		"router": {User: "router", Password: rand.Text(), Identity: bus.Identity{Role: bus.RoleRouter}},
	}
	for _, name := range cells {
		c.natsCreds[name] = bus.Credential{User: name, Password: rand.Text(), Identity: bus.Identity{Role: bus.RoleCell, Cell: name}}
	}
	var err error
	if c.natsAuth, err = bus.StaticUsers(slices.Collect(maps.Values(c.natsCreds))...); err != nil {
		t.Fatal(err)
	}
	return c
}

// startRoles starts containerd, the controllers (ctl-1…), the router and
// one agent per cell once NATS and Consul run, and waits until every
// cell reports.
func (c *cluster) startRoles(cells []string, controllers int, ctlArgs ...string) {
	t := c.t
	t.Helper()
	c.ctrd = testenv.StartContainerd(t)

	for i := range controllers {
		c.startController(fmt.Sprintf("ctl-%d", i+1), ctlArgs...)
	}
	c.http = freeAddr(t)
	c.router = c.start("router", "", append([]string{"router", "--http", c.http, "--consul", c.consul, "--nats", c.natsURL}, c.natsArgs("router")...)...)
	for _, name := range cells {
		c.startAgent(name)
	}
	t.Cleanup(c.stop)
	testenv.Eventually(t, 60*time.Second, 200*time.Millisecond, "every cell reports", func() error {
		st, err := c.leaderClient().Status(context.Background())
		if err != nil {
			return err
		}
		if len(st.Cells) != len(cells) {
			return fmt.Errorf("%d cells report", len(st.Cells))
		}
		return nil
	})
}

// ip runs ip(8) and fails the test on error.
func (c *cluster) ip(args ...string) {
	c.t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		c.t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

func (c *cluster) makeBridge() {
	_ = exec.Command("ip", "link", "del", c.bridge).Run() // left by a killed run
	c.ip("link", "add", c.bridge, "type", "bridge")
	c.t.Cleanup(func() { _ = exec.Command("ip", "link", "del", c.bridge).Run() })
	c.ip("addr", "add", c.hostIP+"/24", "dev", c.bridge)
	c.ip("link", "set", c.bridge, "up")
}

// makeCellNet makes a namespace for one cell with a veth on the bridge.
func (c *cluster) makeCellNet(name, ip string) {
	ns := "dlc-" + name
	c.makeNetns(ns, "dlch-"+name, ip)
	c.t.Cleanup(func() {
		_ = os.RemoveAll(filepath.Join(network.DefaultIPAMDir, "dlb-"+name)) // the agent's bridge's addresses
	})
	c.cells[name] = cellNet{ns: ns, ip: ip}
}

// makeNetns makes the network namespace ns with a veth (host, the
// bridge's end) on the bridge, its end eth0 with address ip/24.
func (c *cluster) makeNetns(ns, host, ip string) {
	_ = exec.Command("ip", "netns", "del", ns).Run()
	_ = exec.Command("ip", "link", "del", host).Run()
	c.ip("netns", "add", ns)
	c.t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	c.ip("link", "add", host, "type", "veth", "peer", "name", "eth0", "netns", ns)
	c.ip("link", "set", host, "master", c.bridge)
	c.ip("link", "set", host, "up")
	c.ip("-n", ns, "addr", "add", ip+"/24", "dev", "eth0")
	c.ip("-n", ns, "link", "set", "eth0", "up")
	c.ip("-n", ns, "link", "set", "lo", "up")
}

// start runs the driftless binary with args, inside the network namespace
// ns when not empty (only the network namespace: containerd must see the
// agent's bind-mounted instance namespaces).
func (c *cluster) start(name, ns string, args ...string) *proc {
	c.t.Helper()
	argv := append([]string{"--log-level", "debug"}, args...)
	if c.metricsToken != "" {
		argv = append(argv, "--metrics", c.metricsAddr(name, ns), "--metrics-token-file", c.metricsToken)
	}
	env := []string{"CONSUL_HTTP_TOKEN=" + c.consulTokens[args[0]]}        // its role's, never on its command line
	if i := slices.Index(args, "--nats-user"); i >= 0 && i+1 < len(args) { // its password, off the command line
		env = append(env, "DRIFTLESS_NATS_PASSWORD="+c.natsCreds[args[i+1]].Password)
	}
	return c.spawn(name, ns, env, driftlessBin, argv...)
}

// spawn runs bin with argv and the environment plus env, its output in
// <dir>/<name>.log, inside the network namespace ns when not empty, in a
// process group of its own (kill and interrupt end the group).
func (c *cluster) spawn(name, ns string, env []string, bin string, argv ...string) *proc {
	c.t.Helper()
	logPath := filepath.Join(c.dir, name+".log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		c.t.Fatal(err)
	}
	if ns != "" {
		argv = append([]string{"--net=/var/run/netns/" + ns, "--", bin}, argv...)
		bin = "nsenter"
	}
	cmd := exec.Command(bin, argv...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); logf.Close(); close(p.done) }()
	return p
}

func (c *cluster) startController(id string, extra ...string) {
	c.t.Helper()
	apiAddr := c.apis[id]
	if apiAddr == "" {
		port, err := children.FreePort()
		if err != nil {
			c.t.Fatal(err)
		}
		apiAddr = net.JoinHostPort(c.hostIP, strconv.Itoa(port))
		c.apis[id] = apiAddr
	}
	natsArgs := append([]string{"--nats", c.natsURL}, c.natsArgs("ctl")...)
	if c.natsUsers != "" { // its own embedded server
		natsArgs = []string{"--nats-listen", strings.TrimPrefix(c.natsURL, "nats://"), "--nats-users", c.natsUsers}
	}
	args := append([]string{"controller", "--id", id, "--repo", c.repo, "--api", apiAddr,
		"--consul", c.consul, "--data", filepath.Join(c.dir, id),
		// Controllers that stand in for each other share the platform's
		// keys: each opens what the others sealed (release envs, bindings).
		"--secrets", filepath.Join(c.dir, "secrets"),
		"--blobs", filepath.Join(c.dir, "blobs"), "--poll", "1s", "--lost-after", "4s"}, append(natsArgs, extra...)...)
	c.ctls[id] = c.start(id, "", args...)
	if c.admin == "" {
		// The first controller makes the platform's first admin token.
		tokenFile := filepath.Join(c.dir, id, "admin.token")
		testenv.Eventually(c.t, 30*time.Second, 100*time.Millisecond, id+" makes the first admin token", func() error {
			data, err := os.ReadFile(tokenFile)
			if c.admin = strings.TrimSpace(string(data)); err == nil && c.admin == "" {
				return errors.New("empty so far")
			}
			return err
		})
	}
	if c.client == nil {
		c.client = c.apiClient(apiAddr)
	}
	testenv.Eventually(c.t, 30*time.Second, 100*time.Millisecond, id+" answers", func() error {
		_, err := c.apiClient(apiAddr).Status(context.Background())
		return err
	})
}

// apiClient is an admin's client of the controller at addr.
func (c *cluster) apiClient(addr string) *api.Client { return api.NewClient(addr).WithToken(c.admin) }

// cellToken is cell name's credential, in a file (mode 0600) for its
// --token-file: made once by the admin, kept across the agent's restarts.
func (c *cluster) cellToken(name string) string {
	c.t.Helper()
	path := filepath.Join(c.dir, "cell-"+name+".token")
	if _, err := os.Stat(path); err == nil {
		return path
	}
	res, err := c.client.CreateToken(context.Background(), api.TokenRequest{Name: "cell-" + name, Role: "cell"})
	if err != nil {
		c.t.Fatalf("making cell %s's token: %v", name, err)
	}
	if err := os.WriteFile(path, []byte(res.Token+"\n"), 0o600); err != nil {
		c.t.Fatal(err)
	}
	return path
}

// restartNATS stops the NATS server and, after down, starts a new one on
// the same address and JetStream store (subscriptions are the clients').
func (c *cluster) restartNATS(down time.Duration) {
	c.t.Helper()
	u, err := url.Parse(c.natsURL)
	if err != nil {
		c.t.Fatal(err)
	}
	c.nats.Shutdown()
	time.Sleep(down)
	if c.nats, err = bus.StartEmbedded(bus.EmbeddedConfig{Listen: u.Host, Auth: c.natsAuth, StoreDir: filepath.Join(c.dir, "nats")}); err != nil {
		c.t.Fatal(err)
	}
}

// natsUsersFile writes the cells' and the router's NATS users into a
// --nats-users file for a controller's embedded server, on a free port.
func (c *cluster) natsUsersFile(controllers int) {
	c.t.Helper()
	if controllers != 1 {
		c.t.Fatalf("a controller's embedded NATS server is for one controller, not %d", controllers)
	}
	port, err := children.FreePort()
	if err != nil {
		c.t.Fatal(err)
	}
	c.natsURL = "nats://" + net.JoinHostPort(c.hostIP, strconv.Itoa(port))
	var b strings.Builder
	b.WriteString("users:\n")
	for _, user := range slices.Sorted(maps.Keys(c.natsCreds)) {
		if cr := c.natsCreds[user]; cr.Identity.Role != bus.RoleController {
			fmt.Fprintf(&b, "  - {user: %s, password: %q, role: %s, cell: %q}\n", cr.User, cr.Password, cr.Identity.Role, cr.Identity.Cell)
		}
	}
	c.natsUsers = filepath.Join(c.dir, "nats-users.yml")
	if err := os.WriteFile(c.natsUsers, []byte(b.String()), 0o600); err != nil {
		c.t.Fatal(err)
	}
}

// natsArgs are the NATS credential flags of the process of user (a cell's
// name, "ctl" or "router"); start gives it the password in
// DRIFTLESS_NATS_PASSWORD.
func (c *cluster) natsArgs(user string) []string {
	if _, ok := c.natsCreds[user]; !ok {
		c.t.Fatalf("no NATS user %q in the cluster", user)
	}
	return []string{"--nats-user", user}
}

// get sends one request through the router with the given Host.
func (c *cluster) get(host, path string) (int, []byte, error) { return getVia(c.http, host, path) }

func (c *cluster) startAgent(name string) {
	c.t.Helper()
	cn := c.cells[name]
	i, _ := strconv.Atoi(cn.ip[strings.LastIndex(cn.ip, ".")+1:]) // 11, 12…
	args := []string{"agent", "--cell-id", name, "--address", cn.ip,
		"--zone", "z-" + name, "--memory", "2G", "--nats", c.natsURL, "--consul", cmp.Or(c.cellConsul[name], c.consul),
		"--containerd", c.ctrd.Address, "--namespace", name, "--network", "dl-" + name,
		"--bridge", "dlb-" + name, "--subnet", fmt.Sprintf("10.%d.%d.0/24", subnetOctet(), i), "--ports", portRange(),
		"--data", filepath.Join(c.dir, "agent-"+name), "--token-file", c.cellToken(name)}
	if c.natsUsers == "" {
		args = append(args, c.natsArgs(name)...)
	} // else the controller's embedded server takes the cell's token as its NATS credential
	for _, id := range slices.Sorted(maps.Keys(c.apis)) { // droplets come from http://<api> of the leader
		args = append(args, "--plain-http-registry", c.apis[id])
	}
	c.agents[name] = c.start("agent-"+name, cn.ns, args...)
}

// kill sends SIGKILL to a process and waits for it to end.
func (p *proc) kill() {
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

// interrupt stops a process gracefully (SIGINT), killing it after 30 s.
func (p *proc) interrupt() {
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGINT)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		p.kill()
	}
}

func (p *proc) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// leaderClient is a client of the controller that leads now.
func (c *cluster) leaderClient() *api.Client {
	for _, addr := range c.apis {
		cl := c.apiClient(addr)
		if st, err := cl.Status(context.Background()); err == nil && st.Controller.Role == "leader" {
			return cl
		}
	}
	return c.client
}

// stop removes every app, waits for the containers to go, and stops every
// process; on failure it prints the ends of their logs.
func (c *cluster) stop() {
	if entries, _ := os.ReadDir(c.repo); len(entries) > 1 {
		for _, e := range entries {
			if e.Name() != ".git" {
				os.RemoveAll(filepath.Join(c.repo, e.Name()))
			}
		}
		testenv.Git(c.t, c.repo, "add", "-A")
		testenv.Git(c.t, c.repo, "commit", "-q", "--allow-empty", "-m", "remove everything")
		_, _ = c.leaderClient().Sync(context.Background(), false, 0)
		deadline := time.Now().Add(45 * time.Second)
		for time.Now().Before(deadline) && len(c.containers()) > 0 {
			time.Sleep(300 * time.Millisecond)
		}
	}
	var all []*proc
	for _, p := range c.agents {
		all = append(all, p)
	}
	for _, p := range c.ctls {
		all = append(all, p)
	}
	all = append(all, c.router)
	for _, p := range all {
		if p != nil && p.running() {
			p.interrupt()
		}
	}
	// Containers an interrupted test left behind.
	for ns, ids := range c.containerIDs() {
		for _, id := range ids {
			c.removeContainer(ns, id)
		}
	}
	if c.t.Failed() {
		for _, p := range all {
			if p == nil {
				continue
			}
			data, _ := os.ReadFile(p.log)
			lines := strings.Split(string(data), "\n")
			if len(lines) > 60 {
				lines = lines[len(lines)-60:]
			}
			c.t.Logf("last lines of %s:\n%s", p.name, strings.Join(lines, "\n"))
		}
	}
}

// containerIDs lists the containers of every cell, by cell (containerd
// namespace).
func (c *cluster) containerIDs() map[string][]string {
	out := map[string][]string{}
	for name := range c.cells {
		ctx := namespaces.WithNamespace(context.Background(), name)
		conts, err := c.ctrd.Client.Containers(ctx)
		if err != nil {
			continue
		}
		for _, cont := range conts {
			out[name] = append(out[name], cont.ID())
		}
	}
	return out
}

// containers lists every container id of every cell.
func (c *cluster) containers() []string {
	var out []string
	for _, ids := range c.containerIDs() {
		out = append(out, ids...)
	}
	return out
}

func (c *cluster) removeContainer(ns, id string) {
	ctx := namespaces.WithNamespace(context.Background(), ns)
	cont, err := c.ctrd.Client.LoadContainer(ctx, id)
	if err != nil {
		return
	}
	if task, err := cont.Task(ctx, nil); err == nil {
		_ = task.Kill(ctx, syscall.SIGKILL)
		if ch, err := task.Wait(ctx); err == nil {
			select {
			case <-ch:
			case <-time.After(5 * time.Second):
			}
		}
		_, _ = task.Delete(ctx, containerd.WithProcessKill)
	}
	_ = cont.Delete(ctx, containerd.WithSnapshotCleanup)
}

// write, addHello and commit work on the cluster's repository.
func (c *cluster) write(files map[string]string) { writeRepo(c.t, c.repo, files) }

func (c *cluster) addHello(dir string) { addHelloTo(c.t, c.repo, dir) }

func (c *cluster) commit(msg string) {
	c.t.Helper()
	testenv.Git(c.t, c.repo, "add", "-A")
	testenv.Git(c.t, c.repo, "commit", "-q", "--allow-empty", "-m", msg)
	_, _ = c.leaderClient().Sync(context.Background(), false, 0)
}

// metricsAddr is where process name serves its metrics: in a cell's
// namespace on the cell's address (port 9100: the namespace is its own),
// else on the bridge address for a controller and loopback for the
// router, on a free port; kept across restarts.
func (c *cluster) metricsAddr(name, ns string) string {
	c.t.Helper()
	if addr := c.metrics[name]; addr != "" {
		return addr
	}
	var addr string
	switch {
	case ns != "":
		for _, cn := range c.cells {
			if cn.ns == ns {
				addr = net.JoinHostPort(cn.ip, "9100")
			}
		}
	case name == "router":
		addr = freeAddr(c.t)
	default:
		port, err := freePortOn(c.hostIP)
		if err != nil {
			c.t.Fatal(err)
		}
		addr = net.JoinHostPort(c.hostIP, port)
	}
	c.metrics[name] = addr
	return addr
}
