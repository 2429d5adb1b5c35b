package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/driftless/driftless/api"
	"github.com/driftless/driftless/internal/testenv"
)

// TestMetrics is issue 17's metrics, end to end: `driftless dev --metrics`
// serves the controller's, the cell's and the router's metrics on one
// loopback listener; a running instance's CPU time, memory and disk come
// from its container, labelled by space, app, process and index only, and
// `driftless app` shows them as `cf app` does. A role given a metrics
// address other hosts reach refuses to start without a token, and serves
// with one only to scrapers that send it.
func TestMetrics(t *testing.T) {
	metrics := freeAddr(t)
	p := startDev(t, "--metrics", metrics)
	p.write(map[string]string{"apps/hello/manifest.yml": helloManifest(1, "Hello")})
	p.addHello("apps/hello")
	p.commitAll("hello")
	p.waitServing(t, 120*time.Second, 1, func(info) error { return nil })

	instance := map[string]string{"space": "dev", "app": "hello", "process": "web", "index": "0"}
	var families map[string]*dto.MetricFamily
	testenv.Eventually(t, 60*time.Second, time.Second, "the metrics of every role, and the instance's usage", func() error {
		if _, _, err := p.get(helloHost, "/"); err != nil { // a request for the router's and the log's counters
			return err
		}
		var err error
		if families, err = scrape("http://"+metrics+"/metrics", ""); err != nil {
			return err
		}
		for _, name := range []string{
			// controller
			"driftless_controller_convergence_duration_seconds", "driftless_controller_actions_total",
			"driftless_controller_apps", "driftless_controller_staging_duration_seconds",
			"driftless_controller_policy_decision_duration_seconds", "driftless_controller_leader",
			"driftless_consul_errors_total", "driftless_nats_errors_total",
			// cell
			"driftless_cell_launch_step_duration_seconds", "driftless_cell_health_checks_total",
			"driftless_cell_log_lines_total", "driftless_cell_log_lines_dropped_total",
			"driftless_instance_cpu_seconds_total", "driftless_instance_memory_bytes", "driftless_instance_memory_limit_bytes",
			"driftless_instance_disk_bytes", "driftless_instance_restarts_total",
			// router
			"driftless_router_requests_total", "driftless_router_routes", "driftless_router_open_connections",
			// the process
			"go_goroutines", "process_cpu_seconds_total",
		} {
			if families[name] == nil {
				return fmt.Errorf("no %s", name)
			}
		}
		if v, ok := sample(families, "driftless_controller_apps", map[string]string{"state": "running"}); !ok || v != 1 {
			return fmt.Errorf("driftless_controller_apps{state=running} = %v", v)
		}
		if v, _ := sample(families, "driftless_instance_memory_bytes", instance); v <= 0 {
			return fmt.Errorf("driftless_instance_memory_bytes%v = %v", instance, v)
		}
		if v, ok := sample(families, "driftless_instance_cpu_seconds_total", instance); !ok || v <= 0 {
			return fmt.Errorf("driftless_instance_cpu_seconds_total%v = %v (present %v)", instance, v, ok)
		}
		if v, _ := sample(families, "driftless_cell_log_lines_total", nil); v <= 0 {
			return fmt.Errorf("driftless_cell_log_lines_total = %v", v)
		}
		return nil
	})
	// Per-instance series are bounded: the labels name the index, never
	// the instance, and only the instances the cell runs.
	for name, mf := range families {
		if !strings.HasPrefix(name, "driftless_instance_") {
			continue
		}
		for _, m := range mf.GetMetric() {
			got := labelsOf(m)
			if !sameKeys(got, instance) {
				t.Errorf("%s has labels %v, want exactly space, app, process, index", name, got)
			}
			if got["app"] != "hello" || got["index"] != "0" {
				t.Errorf("%s%v: an instance the cell does not run", name, got)
			}
		}
	}
	for _, step := range []string{"host_port", "network", "droplet", "container", "health_check", "registration"} {
		if _, ok := sample(families, "driftless_cell_launch_step_duration_seconds", map[string]string{"step": step, "result": "ok"}); !ok {
			t.Errorf("no launch step %s observed", step)
		}
	}
	if v, _ := sample(families, "driftless_cell_health_checks_total", map[string]string{"check": "startup", "result": "passed"}); v < 1 {
		t.Errorf("startup health checks passed: %v", v)
	}

	// `driftless app` shows the usage, as `cf app` does; --json has it.
	var d api.AppDetail
	testenv.Eventually(t, 30*time.Second, time.Second, "driftless app shows the usage", func() error {
		if err := p.cliJSON(&d, "app", "hello"); err != nil {
			return err
		}
		if len(d.Instances) != 1 || d.Instances[0].Usage == nil || d.Instances[0].Usage.MemoryBytes <= 0 || d.Instances[0].Usage.DiskBytes <= 0 {
			return fmt.Errorf("instances %+v: no usage with memory and disk", d.Instances)
		}
		return nil
	})
	out, err := p.cli("app", "hello")
	if err != nil {
		t.Fatalf("driftless app hello: %v\n%s", err, out)
	}
	row := regexp.MustCompile(`(?m)^\s+0\s+RUNNING\s+\S+\s+\d+\.\d%\s+\S+ of 64M\s+\S+ of 128M\s`)
	if !strings.Contains(out, "CPU") || !strings.Contains(out, "MEMORY") || !strings.Contains(out, "DISK") || !row.MatchString(out) {
		t.Errorf("driftless app hello shows no usage:\n%s", out)
	}

	t.Run("an address other hosts reach", func(t *testing.T) { testMetricsToken(t, p) })
}

// testMetricsToken: a role refuses a metrics address that is not
// loopback-only without a token, and with one serves only the scrapers
// that send it. The address is the dev platform's bridge gateway, on the
// test's own bridge.
func testMetricsToken(t *testing.T, p *platform) {
	gw := gatewayOf(t, p.subnet)
	port, err := freePortOn(gw)
	if err != nil {
		t.Fatal(err)
	}
	addr := net.JoinHostPort(gw, port)
	for _, args := range [][]string{
		{"router", "--metrics", addr, "--http", freeAddr(t), "--consul", p.consul, "--nats", ""},
		{"agent", "--metrics", addr, "--cell-id", "nope", "--data", t.TempDir()},
		{"controller", "--metrics", addr, "--data", t.TempDir(), "--api", freeAddr(t)},
		{"dev", "--metrics", "0.0.0.0:" + port, "--data", t.TempDir(), "--repo", p.repo},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		out, err := exec.CommandContext(ctx, driftlessBin, args...).CombinedOutput()
		cancel()
		if err == nil || !strings.Contains(string(out), "needs a bearer token (--metrics-token-file)") {
			t.Errorf("driftless %s: %v, want a refusal naming --metrics-token-file:\n%s", strings.Join(args, " "), err, out)
		}
	}

	tokFile := filepath.Join(t.TempDir(), "metrics.token")
	if err := os.WriteFile(tokFile, []byte("scrape-me\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(driftlessBin, "router", "--metrics", addr, "--metrics-token-file", tokFile,
		"--http", freeAddr(t), "--consul", p.consul, "--nats", "", "--access-log", "")
	logf, err := os.Create(filepath.Join(t.TempDir(), "router.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGINT)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		logf.Close()
	})
	url := "http://" + addr + "/metrics"
	testenv.Eventually(t, 30*time.Second, 200*time.Millisecond, "the router's metrics with the token", func() error {
		fams, err := scrape(url, "scrape-me")
		if err != nil {
			return err
		}
		if fams["driftless_router_routes"] == nil || fams["driftless_consul_errors_total"] == nil {
			return fmt.Errorf("router metrics without driftless_router_routes or driftless_consul_errors_total")
		}
		return nil
	})
	for _, tok := range []string{"", "wrong"} {
		if _, err := scrape(url, tok); err == nil || !strings.Contains(err.Error(), "401") {
			t.Errorf("scraping with token %q: %v, want 401", tok, err)
		}
	}
}

// scrape reads the metrics at url, with a bearer token unless "".
func scrape(url, token string) (map[string]*dto.MetricFamily, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		return nil, fmt.Errorf("GET %s: %d %s", url, resp.StatusCode, body)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	return parser.TextToMetricFamilies(resp.Body)
}

// sample is the value of the first sample of family name whose labels
// include want (counters, gauges; histograms: their count).
func sample(fams map[string]*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	mf := fams[name]
	if mf == nil {
		return 0, false
	}
	for _, m := range mf.GetMetric() {
		ls := labelsOf(m)
		match := true
		for k, v := range want {
			match = match && ls[k] == v
		}
		if !match {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue(), true
		case m.Gauge != nil:
			return m.GetGauge().GetValue(), true
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount()), true
		case m.Untyped != nil:
			return m.GetUntyped().GetValue(), true
		}
	}
	return 0, false
}

func labelsOf(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, l := range m.GetLabel() {
		out[l.GetName()] = l.GetValue()
	}
	return out
}

func sameKeys(a, b map[string]string) bool {
	ka, kb := keys(a), keys(b)
	return slices.Equal(ka, kb)
}

// gatewayOf is the first address of a /16 subnet ("10.170.0.0/16" →
// "10.170.0.1"): the dev platform's bridge.
func gatewayOf(t *testing.T, subnet string) string {
	t.Helper()
	_, n, err := net.ParseCIDR(subnet)
	if err != nil {
		t.Fatal(err)
	}
	ip := n.IP.To4()
	return net.IPv4(ip[0], ip[1], ip[2], ip[3]+1).String()
}

// freePortOn is a port free on the address ip.
func freePortOn(ip string) (string, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		return "", err
	}
	defer ln.Close()
	_, port, err := net.SplitHostPort(ln.Addr().String())
	return port, err
}

// TestMetricsCluster: metrics scraped from every role run as a process of
// its own — the controller on the cluster's bridge address, each cell in
// its network namespace on its address, the router on loopback — all with
// a token: each process shows its role's metrics, and each cell the
// instances it runs only.
func TestMetricsCluster(t *testing.T) {
	tok := filepath.Join(t.TempDir(), "metrics.token")
	if err := os.WriteFile(tok, []byte("cluster-scrape\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := startClusterWith(t, false, tok, []string{"a", "b"}, 1)
	c.addHello("apps/hello")
	c.write(map[string]string{"apps/hello/manifest.yml": helloManifest(2, "Hi")})
	c.commit("two instances")
	insts := c.waitRunning(t, 120*time.Second, 2, func(insts []api.Instance) error {
		if pc := perCell(insts); pc["a"] != 1 || pc["b"] != 1 {
			return fmt.Errorf("instances per cell %v, want one on each", pc)
		}
		return nil
	})
	indexOn := map[string]string{}
	for _, in := range insts {
		indexOn[in.Cell] = fmt.Sprint(in.Index)
	}
	if got := slices.Sorted(func(yield func(string) bool) {
		for name := range c.metrics {
			if !yield(name) {
				return
			}
		}
	}); !slices.Equal(got, []string{"agent-a", "agent-b", "ctl-1", "router"}) {
		t.Fatalf("processes serving metrics: %v", got)
	}
	roleOf := map[string]string{"ctl-1": "controller", "agent-a": "cell", "agent-b": "cell", "router": "router"}
	for name, addr := range c.metrics {
		url := "http://" + addr + "/metrics"
		testenv.Eventually(t, 60*time.Second, time.Second, name+"'s metrics", func() error {
			if _, _, err := c.get(helloHost, "/"); err != nil {
				return err
			}
			fams, err := scrape(url, "cluster-scrape")
			if err != nil {
				return err
			}
			if _, ok := sample(fams, "driftless_consul_errors_total", map[string]string{"role": roleOf[name]}); !ok && name != "router" {
				return fmt.Errorf("no driftless_consul_errors_total{role=%s}", roleOf[name])
			}
			switch name {
			case "ctl-1":
				if v, ok := sample(fams, "driftless_controller_apps", map[string]string{"state": "running"}); !ok || v != 1 {
					return fmt.Errorf("driftless_controller_apps{state=running} = %v", v)
				}
				if fams["driftless_controller_convergence_duration_seconds"] == nil || fams["driftless_instance_memory_bytes"] != nil {
					return errors.New("the controller's metrics without its convergences, or with a cell's")
				}
			case "router":
				if v, _ := sample(fams, "driftless_router_requests_total", map[string]string{"route": helloHost}); v <= 0 {
					return fmt.Errorf("driftless_router_requests_total{route=%s} = %v", helloHost, v)
				}
			default:
				cell := strings.TrimPrefix(name, "agent-")
				mem := fams["driftless_instance_memory_bytes"]
				if mem == nil || len(mem.GetMetric()) != 1 {
					return fmt.Errorf("cell %s: memory series %v, want its one instance's", cell, mem)
				}
				if ls := labelsOf(mem.GetMetric()[0]); ls["index"] != indexOn[cell] || ls["app"] != "hello" || mem.GetMetric()[0].GetGauge().GetValue() <= 0 {
					return fmt.Errorf("cell %s: %v = %v, want index %s's memory", cell, ls, mem.GetMetric()[0].GetGauge().GetValue(), indexOn[cell])
				}
				if fams["driftless_cell_launch_step_duration_seconds"] == nil || fams["driftless_controller_apps"] != nil {
					return errors.New("a cell's metrics without its launch steps, or with the controller's")
				}
			}
			return nil
		})
	}
	if _, err := scrape("http://"+c.metrics["ctl-1"]+"/metrics", ""); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("the controller's metrics on the bridge without the token: %v, want 401", err)
	}
}
