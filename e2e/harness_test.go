// Package e2e drives the real `driftless` binary — with real containerd,
// runc, CNI, Consul, NATS and git — through what a user does.
package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/namespaces"

	"github.com/driftless/driftless/agents/network"
	"github.com/driftless/driftless/api"
	"github.com/driftless/driftless/internal/children"
	"github.com/driftless/driftless/internal/pki"
	"github.com/driftless/driftless/internal/testenv"
)

// binaries built once for every test of the package.
var (
	driftlessBin string
	helloBin     string
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "dl-e2e-bin-")
	if err != nil {
		panic(err)
	}
	root, err := children.RepoRoot()
	if err != nil {
		panic(err)
	}
	driftlessBin = filepath.Join(dir, "driftless")
	helloBin = filepath.Join(dir, "hello")
	// driftless-static lands beside driftless, where agents look for it.
	builds := []struct{ out, pkg string }{{driftlessBin, "./cmd/driftless"}, {helloBin, "./examples/apps/hello"},
		{filepath.Join(dir, "driftless-static"), "./cmd/driftless-static"}}
	for _, b := range builds {
		cmd := exec.Command("go", "build", "-o", b.out, b.pkg)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "building %s: %v\n%s", b.pkg, err, out)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// platform is one `driftless dev` process and its app repository.
type platform struct {
	t       testing.TB
	dir     string
	repo    string
	http    string
	api     string
	sock    string
	consul  string
	cmd     *exec.Cmd
	logPath string
	client  *api.Client
	// subnet is the instances' subnet, and natBefore the host's NAT rules
	// that mentioned it before the platform started (left by others).
	subnet    string
	natBefore map[string]bool
	// bridge is the instances' bridge.
	bridge string
	// xdg is the XDG_CONFIG_HOME of the platform and of the CLI: dev
	// writes the CLI's configuration (API address, admin token) there and
	// the CLI reads it, as on a user's machine.
	xdg string
	// consulToken is the management token of a Consul the test started
	// with ACLs ("" for dev's own: consul_helpers_test.go).
	consulToken string
}

// portRange picks a host-port range of 200 for a test's instances, below
// the kernel's ephemeral ports, at random so that state a killed run left
// behind (port mappings) does not meet the next run.
func portRange() string {
	base := 20000 + rand.IntN(60)*200
	return fmt.Sprintf("%d-%d", base, base+199)
}

// randomSubnet picks a /16 for a test's containers at random, for the same
// reason as portRange: a port mapping a killed run left behind must not
// lead to a container of this run. It is one no interface of the host has
// an address in (the agent refuses those).
func randomSubnet() string {
	used := map[string]bool{}
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil {
				used[first2(n.IP.String())] = true
			}
		}
	}
	for i := 0; i < 1000; i++ {
		prefix := fmt.Sprintf("10.%d", subnetOctet())
		if !used[prefix] {
			return prefix + ".0.0/16"
		}
	}
	panic("every test subnet 10.160–10.239 is in use on this host")
}

// first2 is the first two numbers of a dotted IPv4 address or CIDR ("10.200").
func first2(addr string) string { return strings.Join(strings.SplitN(addr, ".", 3)[:2], ".") }

// subnetOctet is a random second octet for test subnets (10.160–10.239).
func subnetOctet() int { return 160 + rand.IntN(80) }

func freeAddr(t testing.TB) string {
	t.Helper()
	p, err := children.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("127.0.0.1:%d", p)
}

// startDev seeds an empty app repository and runs `driftless dev` on it
// with its own Consul, containerd, NATS, ports, bridge and subnet.
func startDev(t testing.TB, extra ...string) *platform {
	t.Helper()
	testenv.RequireRoot(t)
	dir := testenv.ShortTempDir(t, "dl-e2e-")
	if slices.Contains(extra, "--postgres") {
		// PostgreSQL runs as the postgres user, who must traverse the
		// folders above its own (StartPostgres refuses otherwise).
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	p := &platform{t: t, dir: dir, repo: filepath.Join(dir, "repo"), http: freeAddr(t), api: freeAddr(t),
		sock: filepath.Join(dir, "ctrd.sock"), consul: freeAddr(t), logPath: filepath.Join(dir, "dev.log"), xdg: filepath.Join(dir, "xdg")}
	if err := os.MkdirAll(p.repo, 0o755); err != nil {
		t.Fatal(err)
	}
	testenv.Git(t, p.repo, "init", "-q", "-b", "main")
	p.client = api.NewClient(p.api)

	// A bridge of its own (it keeps the subnet's gateway address), removed
	// with the test.
	bridge := fmt.Sprintf("dle%04x", rand.IntN(1<<16))
	p.subnet = randomSubnet()
	p.bridge = bridge
	p.natBefore = natRulesOf(t, p.subnet)
	t.Cleanup(func() {
		_ = exec.Command("ip", "link", "del", bridge).Run()
		_ = os.RemoveAll(filepath.Join(network.DefaultIPAMDir, bridge))
	})
	logf, err := os.Create(p.logPath)
	if err != nil {
		t.Fatal(err)
	}
	args := append([]string{"dev", "--log-level", "debug",
		"--data", filepath.Join(dir, "data"), "--repo", p.repo,
		"--http", p.http, "--api", p.api, "--nats", freeAddr(t), "--consul", p.consul,
		"--containerd", p.sock, "--ports", portRange(), "--bridge", bridge, "--subnet", p.subnet,
		"--poll", "1s", "--cell-memory", "4G"}, extra...)
	p.launch(args, logf)
	t.Cleanup(func() {
		p.stop()
		logf.Close()
		if t.Failed() {
			data, _ := os.ReadFile(p.logPath)
			keep := filepath.Join(os.TempDir(), "driftless-e2e-"+strings.ReplaceAll(t.Name(), "/", "-")+".log")
			if os.WriteFile(keep, data, 0o644) == nil {
				t.Logf("full log of driftless dev: %s", keep)
			}
			lines := strings.Split(string(data), "\n")
			if len(lines) > 150 {
				lines = lines[len(lines)-150:]
			}
			t.Logf("last lines of driftless dev:\n%s", strings.Join(lines, "\n"))
		}
	})
	p.waitAPI()
	return p
}

// launch starts `driftless args` as the platform's process, in a process
// group of its own, its output to out.
func (p *platform) launch(args []string, out io.Writer) {
	p.t.Helper()
	cmd := exec.Command(driftlessBin, args...)
	cmd.Env = append(os.Environ(), "XDG_CONFIG_HOME="+p.xdg)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	p.cmd = cmd
}

// waitAPI waits until the platform's API answers.
//
// Dev writes its admin token before its API listens, and the CLI's
// configuration just after: the harness's client takes the token then
// (a restarted dev may have made a new one), and waits for the
// configuration the CLI reads.
func (p *platform) waitAPI() {
	p.t.Helper()
	testenv.Eventually(p.t, 60*time.Second, 200*time.Millisecond, "API listens", func() error {
		hc, err := p.httpsClient()
		if err != nil {
			return err
		}
		resp, err := hc.Get(p.apiURL() + "/healthz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	})
	roots, err := pki.Pool(filepath.Join(p.dir, "data", "tls", pki.CAFile))
	if err != nil {
		p.t.Fatal(err)
	}
	p.client = api.NewClient(p.apiURL()).WithToken(p.adminToken()).WithRoots(roots)
	testenv.Eventually(p.t, 60*time.Second, 200*time.Millisecond, "API answers and the CLI is configured", func() error {
		if _, err := os.Stat(filepath.Join(p.xdg, "driftless", "config.yml")); err != nil {
			return err
		}
		_, err := p.client.Status(context.Background())
		return err
	})
}

// apiURL is the platform's API: HTTPS, with a certificate of dev's CA.
func (p *platform) apiURL() string { return "https://" + p.api }

// httpsClient is an HTTP client that trusts dev's CA (and sends no token).
func (p *platform) httpsClient() (*http.Client, error) {
	roots, err := pki.Pool(filepath.Join(p.dir, "data", "tls", pki.CAFile))
	if err != nil {
		return nil, err
	}
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}, nil
}

// adminToken is the admin token dev keeps in its data folder.
func (p *platform) adminToken() string {
	p.t.Helper()
	data, err := os.ReadFile(filepath.Join(p.dir, "data", "admin.token"))
	if err != nil {
		p.t.Fatalf("dev's admin token: %v", err)
	}
	return strings.TrimSpace(string(data))
}

// stop removes every app (so no container outlives the test) and stops
// the platform.
func (p *platform) stop() {
	if p.cmd.ProcessState != nil {
		return
	}
	if entries, _ := os.ReadDir(p.repo); len(entries) > 1 {
		for _, e := range entries {
			if e.Name() != ".git" {
				os.RemoveAll(filepath.Join(p.repo, e.Name()))
			}
		}
		p.commitAll("remove everything")
		_, _ = p.client.Sync(context.Background(), false, 0)
		deadline := time.Now().Add(45 * time.Second)
		for time.Now().Before(deadline) && len(p.containers(p.t)) > 0 {
			time.Sleep(300 * time.Millisecond)
		}
		time.Sleep(time.Second)
	}
	p.shutdown()
}

// shutdown stops the platform with SIGINT, as a user's Ctrl-C, and checks
// that nothing of it is left on the host: call it once every app is gone
// (dev leaves app containers running, for the next run to adopt).
func (p *platform) shutdown() {
	if p.cmd.ProcessState != nil {
		return
	}
	if !p.interrupt() {
		p.t.Errorf("driftless dev did not stop within 40s of SIGINT: killed")
		return
	}
	p.checkNothingLeft()
}

// interrupt sends SIGINT to the platform's process group and waits for
// it to exit; after 40 s it kills the group and reports false.
func (p *platform) interrupt() bool {
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGINT)
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-time.After(40 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-done
		return false
	}
}

// restart stops the platform with SIGINT (its app containers keep
// running) and starts it again with the same flags and data.
func (p *platform) restart() {
	p.t.Helper()
	if !p.interrupt() {
		p.t.Fatal("driftless dev did not stop within 40s of SIGINT")
	}
	p.launch(p.cmd.Args[1:], p.cmd.Stdout)
	p.waitAPI()
}

// checkNothingLeft fails the test if the stopped platform left processes
// (container shims, instances, Consul, containerd), network attachments
// (namespaces, addresses), NAT rules of its instances (port mappings,
// masquerading) or the filter rules of its bridge's walls on the host.
func (p *platform) checkNothingLeft() {
	p.t.Helper()
	var procs []byte
	for i := 0; i < 50; i++ { // 5 s for shims to notice
		if procs, _ = exec.Command("pgrep", "-a", "-f", p.dir+"/").Output(); len(procs) == 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(procs) > 0 {
		p.t.Errorf("processes left after the platform stopped:\n%s", procs)
	}
	records, _ := filepath.Glob(filepath.Join(p.dir, "data", "*", "network", "attachments", "*.json"))
	for _, r := range records {
		p.t.Errorf("network attachment left after the platform stopped: %s", r)
	}
	for rule := range natRulesOf(p.t, p.subnet) {
		if !p.natBefore[rule] {
			p.t.Errorf("NAT rule left after the platform stopped: %s", rule)
		}
	}
	for _, rule := range wallRulesOf(p.t, p.bridge) {
		p.t.Errorf("filter rule of the bridge's walls left after the platform stopped: %s", rule)
	}
}

// wallRulesOf lists the host's filter rules (IPv4 and IPv6) of the walls
// of bridge and its network policies: those entering them and those of
// their chains.
func wallRulesOf(t testing.TB, bridge string) []string {
	t.Helper()
	var rules []string
	for _, tool := range []string{"iptables", "ip6tables"} {
		out, err := exec.Command(tool, "-w", "5", "-S").Output()
		if err != nil {
			t.Fatalf("listing filter rules: %s: %v", tool, err)
		}
		for _, line := range strings.Split(string(out), "\n") {
			if strings.Contains(line, "driftless walls "+bridge+`"`) || strings.Contains(line, "DLW-IN-"+bridge+" ") || strings.HasSuffix(line, "DLW-IN-"+bridge) ||
				strings.Contains(line, "driftless policies "+bridge+`"`) || strings.Contains(line, "DLW-NP-"+bridge+" ") || strings.HasSuffix(line, "DLW-NP-"+bridge) {
				rules = append(rules, tool+" "+line)
			}
		}
	}
	return rules
}

// natRulesOf lists the host's NAT rules that mention an address of subnet
// (a 10.X.0.0/16).
func natRulesOf(t testing.TB, subnet string) map[string]bool {
	t.Helper()
	out, err := exec.Command("iptables", "-w", "5", "-t", "nat", "-S").Output()
	if err != nil {
		t.Fatalf("listing NAT rules: %v", err)
	}
	prefix := first2(subnet) + "."
	rules := map[string]bool{}
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, " "+prefix) {
			rules[line] = true
		}
	}
	return rules
}

// write puts files (path → content; "" deletes) into the repository.
func (p *platform) write(files map[string]string) { writeRepo(p.t, p.repo, files) }

// writeRepo puts files (path → content; "" deletes) into the work tree
// repo; scripts ("#!") are written executable, as they are committed.
func writeRepo(t testing.TB, repo string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		path := filepath.Join(repo, name)
		if content == "" {
			if err := os.RemoveAll(path); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		mode := os.FileMode(0o644)
		if strings.HasPrefix(content, "#!") {
			mode = 0o755
		}
		if err := os.WriteFile(path, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
	}
}

// addExample copies examples/apps/<name> into the repository at apps/<name>.
func (p *platform) addExample(name string) {
	p.t.Helper()
	root, err := children.RepoRoot()
	if err != nil {
		p.t.Fatal(err)
	}
	src := filepath.Join(root, "examples", "apps", name)
	err = filepath.WalkDir(src, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		dst := filepath.Join(p.repo, "apps", name, rel)
		if d.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		return os.WriteFile(dst, data, info.Mode().Perm())
	})
	if err != nil {
		p.t.Fatal(err)
	}
}

// addHello copies the hello binary into the repository as app dir.
func (p *platform) addHello(dir string) { addHelloTo(p.t, p.repo, dir) }

// addHelloTo copies the hello binary into the work tree repo as app dir.
func addHelloTo(t testing.TB, repo, dir string) {
	t.Helper()
	data, err := os.ReadFile(helloBin)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(repo, dir, "hello")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o755); err != nil {
		t.Fatal(err)
	}
}

func (p *platform) commitAll(msg string) string {
	p.t.Helper()
	testenv.Git(p.t, p.repo, "add", "-A")
	testenv.Git(p.t, p.repo, "commit", "-q", "--allow-empty", "-m", msg)
	return testenv.Git(p.t, p.repo, "rev-parse", "HEAD")
}

// cliEnv is the CLI's environment: the configuration dev wrote (its API
// address and admin token), as the README's commands use it, and none of
// the variables that would override it.
func (p *platform) cliEnv() []string {
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, "DRIFTLESS_API=") || strings.HasPrefix(kv, "DRIFTLESS_TOKEN=")
	})
	return append(env, "XDG_CONFIG_HOME="+p.xdg)
}

// cli runs the driftless binary against the platform's API.
func (p *platform) cli(args ...string) (string, error) {
	cmd := exec.Command(driftlessBin, args...)
	cmd.Env = p.cliEnv()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err != nil {
		return out.String(), fmt.Errorf("driftless %s: %w: %s", strings.Join(args, " "), err, errb.String())
	}
	return out.String(), nil
}

// cliAll runs the driftless binary and returns its stdout and stderr
// together (progress goes to stderr).
func (p *platform) cliAll(args ...string) (string, error) {
	cmd := exec.Command(driftlessBin, args...)
	cmd.Env = p.cliEnv()
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// cliJSON runs a read command with --json and decodes its output.
func (p *platform) cliJSON(v any, args ...string) error {
	out, err := p.cli(append(args, "--json")...)
	if err != nil {
		return err
	}
	return json.Unmarshal([]byte(out), v)
}

// info is what the hello app answers on /info.
type info struct {
	App, Index, GUID, Release, Commit, Greeting string
}

// get sends one request through the router with the given Host.
func (p *platform) get(host, path string) (int, []byte, error) { return getVia(p.http, host, path) }

// getVia sends one request to the router at addr with the given Host.
func getVia(addr, host, path string) (int, []byte, error) {
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		return 0, nil, err
	}
	req.Host = host
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, body, err
}

// sample asks the app n times and returns the distinct answers by instance
// guid; any non-200 answer is an error.
func (p *platform) sample(host string, n int) (map[string]info, error) {
	return sampleVia(p.http, host, n)
}

// sampleVia is sample through the router at addr.
func sampleVia(addr, host string, n int) (map[string]info, error) {
	seen := map[string]info{}
	for range n {
		code, body, err := getVia(addr, host, "/info")
		if err != nil {
			return nil, err
		}
		if code != http.StatusOK {
			return nil, fmt.Errorf("status %d: %s", code, body)
		}
		var in info
		if err := json.Unmarshal(body, &in); err != nil {
			return nil, fmt.Errorf("decoding %q: %w", body, err)
		}
		seen[in.GUID] = in
	}
	return seen, nil
}

// containers returns the labels of every container in the platform's
// containerd namespace.
func (p *platform) containers(t testing.TB) []map[string]string {
	c, err := containerd.New(p.sock, containerd.WithTimeout(2*time.Second))
	if err != nil {
		return nil
	}
	defer c.Close()
	ctx := namespaces.WithNamespace(context.Background(), "driftless")
	conts, err := c.Containers(ctx)
	if err != nil {
		t.Logf("listing containers: %v", err)
		return nil
	}
	var out []map[string]string
	for _, cont := range conts {
		labels, err := cont.Labels(ctx)
		if err != nil {
			labels = map[string]string{}
		}
		labels["id"] = cont.ID()
		out = append(out, labels)
	}
	return out
}

// consulServices lists the service names in the platform's Consul catalog.
func (p *platform) consulServices() ([]string, error) {
	c, err := p.consulAPI()
	if err != nil {
		return nil, err
	}
	services, _, err := c.Catalog().Services(nil)
	if err != nil {
		return nil, err
	}
	return keys(services), nil
}

// killTask kills the task of one container by hand, as an operator would.
func (p *platform) killTask(t testing.TB, id string) {
	t.Helper()
	p.withTask(t, id, func(ctx context.Context, task containerd.Task) {
		if err := task.Kill(ctx, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
	})
}

// withTask calls f with the task of container id in the platform's
// containerd namespace.
func (p *platform) withTask(t testing.TB, id string, f func(context.Context, containerd.Task)) {
	t.Helper()
	c, err := containerd.New(p.sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := namespaces.WithNamespace(context.Background(), "driftless")
	cont, err := c.LoadContainer(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	task, err := cont.Task(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	f(ctx, task)
}
