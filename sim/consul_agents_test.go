package sim_test

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	consul "github.com/hashicorp/consul/api"

	"github.com/driftless/driftless/internal/children"
	"github.com/driftless/driftless/internal/testenv"
)

// startConsulClients starts n Consul client agents joined to server, as
// production runs one on every cell's host, and returns a client of each
// whose writes count into writes. Hollow cells spread over them, so that
// no agent holds every instance: a Consul agent's work per registration
// and per check update grows with the services it holds (it scans its
// local state), which one agent for 10,000 instances turns quadratic and
// production, at ~100 instances per cell's agent, never sees.
func startConsulClients(t testing.TB, server *testenv.Consul, n int, writes *atomic.Int64) []*consul.Client {
	t.Helper()
	bin, err := children.FindConsul()
	if err != nil {
		t.Fatal(err)
	}
	self, err := server.Client.Agent().Self()
	if err != nil {
		t.Fatalf("reading the Consul server's address: %v", err)
	}
	serfPort, _ := self["Member"]["Port"].(float64)
	if serfPort == 0 {
		t.Fatalf("the Consul server's serf LAN port is not in /v1/agent/self: %v", self["Member"])
	}
	dir := testenv.ShortTempDir(t, "dl-consul-clients-")
	limits := filepath.Join(dir, "limits.hcl")
	// enable_debug: /debug/pprof on the loopback HTTP port, to profile an
	// agent during a run.
	if err := os.WriteFile(limits, []byte("limits {\n  http_max_conns_per_client = 10000\n}\nenable_debug = true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := make([]*consul.Client, 0, n)
	for i := range n {
		httpPort, err1 := children.FreePort()
		serfLAN, err2 := children.FreePort()
		if err1 != nil || err2 != nil {
			t.Fatal(err1, err2)
		}
		name := fmt.Sprintf("hollow-host-%d", i+1)
		logf, err := os.Create(filepath.Join(dir, name+".log"))
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin, "agent", "-node", name, "-data-dir", filepath.Join(dir, name),
			"-bind", "127.0.0.1", "-client", "127.0.0.1", "-http-port", strconv.Itoa(httpPort),
			"-dns-port", "-1", "-grpc-port", "-1", "-grpc-tls-port", "-1", "-serf-lan-port", strconv.Itoa(serfLAN),
			"-retry-join", fmt.Sprintf("127.0.0.1:%d", int(serfPort)), "-log-level", "warn", "-config-file", limits)
		cmd.Stdout, cmd.Stderr = logf, logf
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			t.Fatalf("starting Consul client %s: %v", name, err)
		}
		t.Cleanup(func() {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			_ = logf.Close()
		})
		cfg := consul.DefaultConfig()
		cfg.Address = fmt.Sprintf("127.0.0.1:%d", httpPort)
		cfg.HttpClient = &http.Client{Transport: countWrites{writes, &http.Transport{MaxIdleConnsPerHost: 64}}}
		c, err := consul.NewClient(cfg)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
	for i, c := range out {
		testenv.Eventually(t, 60*time.Second, 100*time.Millisecond, fmt.Sprintf("Consul client %d joined", i+1), func() error {
			leader, err := c.Status().Leader()
			if err != nil || leader == "" {
				return fmt.Errorf("no leader seen yet (%v)", err)
			}
			return nil
		})
	}
	return out
}

// raftIndex is the Consul server's Raft commit index: the number of
// writes Consul applied, whoever sent them (agents' anti-entropy syncs,
// KV, sessions).
func raftIndex(c *consul.Client) int64 {
	self, err := c.Agent().Self()
	if err != nil {
		return 0
	}
	raft, _ := self["Stats"]["raft"].(map[string]any)
	s, _ := raft["commit_index"].(string)
	n, _ := strconv.ParseInt(s, 10, 64)
	return n
}
