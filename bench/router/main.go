// Command router-bench puts the driftless router, nginx, HAProxy and Caddy
// side by side in front of one small fast backend, on loopback, and drives
// each with the same wrk load, in one run: requests/s and latency
// percentiles, with the backend alone as the ceiling. It also measures the
// driftless router with 10,000 routes in its table, and how long a route
// change takes to be served.
//
// Each proxy gets one core (nginx: 1 worker; HAProxy: 1 thread; Caddy and
// driftless: GOMAXPROCS=1) pinned with taskset to CPU 0; wrk and the
// backend share CPU 1. Access logs are off everywhere.
//
// Run with bench/router/run.sh (installs nginx, HAProxy, Caddy and wrk from
// Debian's packages).
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	consul "github.com/hashicorp/consul/api"

	"github.com/driftless/driftless/catalog"
	"github.com/driftless/driftless/internal/children"
	"github.com/driftless/driftless/model"
)

const (
	host      = "bench.apps.localhost"
	nginxName = "nginx 1.22 (1 worker)"
)

var (
	duration    = flag.Duration("duration", 10*time.Second, "wrk run per proxy")
	connections = flag.Int("connections", 64, "wrk connections")
	driftless   = flag.String("driftless", "bin/driftless", "driftless binary")
	manyRoutes  = flag.Int("routes", 10000, "routes in the large table")
	backendKind = flag.String("backend", "nginx", "the backend: nginx (return 200, the cheapest) or go (net/http)")
	pace        = flag.Duration("pace", 2*time.Millisecond, "wait of each connection between requests in the same-load comparison")
	rounds      = flag.Int("rounds", 3, "runs of every target, interleaved; the median is reported")
	pair        = flag.Bool("pair", false, "only the driftless router and nginx, no route scaling: a quick comparison while working, not the published table")
	profile     = flag.String("profile", "", "write a CPU profile of the driftless router under load to this file")
)

func main() {
	flag.Parse()
	log.SetFlags(0)
	if *attackArg != "" {
		attack(*attackArg)
		return
	}
	if *httpsMode {
		runHTTPS()
		return
	}
	if *rolesMode {
		runRoles()
		return
	}
	dir := workDir()
	defer stopAll()
	backend, consulAddr, consulPid, cc := startRouted(dir, "1")
	bhost, bport := splitAddr(backend)

	var targets []target
	targets = append(targets, target{"backend alone (ceiling)", backend, 0})

	dl := freeAddr()
	metricsAddr := freeAddr()
	dlGroup := start(dir, "0", []string{"GOMAXPROCS=1"}, *driftless, "router", "--http", dl, "--consul", consulAddr, "--access-log", "", "--nats", "", "--log-level", "warn",
		"--metrics", metricsAddr)
	waitHTTP(dl, host)
	targets = append(targets, target{"driftless router", dl, dlGroup})
	// The other proxies do the work the router does on every request:
	// X-Forwarded-For/-Host/-Proto and a request id sent to the app and
	// back to the client. nginx also runs bare (proxy_pass only), for
	// reference.
	startNginx := func(name, extra string) target {
		addr := freeAddr()
		conf := filepath.Join(dir, name+".conf")
		write(conf, fmt.Sprintf(`worker_processes 1;
daemon off;
pid %s/%s.pid;
error_log %s/%s-error.log;
events { worker_connections 4096; }
http {
  access_log off;
  upstream app { server %s; keepalive 128; }
  server {
    listen %s;
    server_name %s;
    location / {
      proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_set_header Host $host;
%s
    }
  }
}
`, dir, name, dir, name, backend, addr, host, extra))
		group := start(dir, "0", nil, "nginx", "-c", conf, "-e", filepath.Join(dir, name+"-error.log"))
		waitHTTP(addr, host)
		return target{"", addr, group}
	}
	ng := startNginx("nginx", `      proxy_set_header X-Forwarded-For $remote_addr; proxy_set_header X-Forwarded-Host $host;
      proxy_set_header X-Forwarded-Proto $scheme; proxy_set_header X-Request-Id $request_id;
      add_header X-Request-Id $request_id;`)
	ng.name = nginxName
	targets = append(targets, ng)
	if !*pair {
		bare := startNginx("nginx-bare", "")
		bare.name = "nginx 1.22, bare (no forwarding headers, no request id)"
		targets = append(targets, bare)

		hp := freeAddr()
		hpConf := filepath.Join(dir, "haproxy.cfg")
		write(hpConf, fmt.Sprintf(`global
  nbthread 1
  maxconn 4096
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  http-reuse always
frontend fe
  bind %s
  option forwardfor
  unique-id-format %%{+X}o%%ci%%cp%%fp%%Ts%%rt%%pid
  unique-id-header X-Request-Id
  http-request set-header X-Forwarded-Host %%[req.hdr(host)]
  http-request set-header X-Forwarded-Proto http
  http-response set-header X-Request-Id %%[unique-id]
  default_backend app
backend app
  server s1 %s
`, hp, backend))
		hpGroup := start(dir, "0", nil, "haproxy", "-f", hpConf)
		waitHTTP(hp, host)
		targets = append(targets, target{"HAProxy 2.6 (1 thread)", hp, hpGroup})

		cd := freeAddr()
		caddyfile := filepath.Join(dir, "Caddyfile")
		_, cdPort := splitAddr(cd)
		// reverse_proxy sets X-Forwarded-* itself.
		write(caddyfile, fmt.Sprintf(`{
  admin off
  auto_https off
  default_bind 127.0.0.1
}
http://:%d {
  header X-Request-Id {http.request.uuid}
  reverse_proxy %s {
    header_up X-Request-Id {http.request.uuid}
  }
}
`, cdPort, backend))
		cdGroup := start(dir, "0", []string{"GOMAXPROCS=1", "HOME=" + dir, "XDG_DATA_HOME=" + dir, "XDG_CONFIG_HOME=" + dir}, "caddy", "run", "--config", caddyfile, "--adapter", "caddyfile")
		waitHTTP(cd, host)
		targets = append(targets, target{"Caddy 2.6 (GOMAXPROCS=1)", cd, cdGroup})
	}

	fmt.Printf("wrk -t1 -c%d -d%s, %d rounds interleaved (medians), loopback; proxies on CPU 0, wrk and the %s backend on CPU 1\n\n",
		*connections, *duration, *rounds, *backendKind)
	fmt.Println("| target | requests/s | p50 | p99 | vs nginx | proxy CPU per request | vs nginx |")
	fmt.Println("|---|---|---|---|---|---|---|")
	// Rounds: every target once per round, in turn, so that the
	// machine's slow and fast moments fall on all of them; the table
	// shows each one's median round.
	runs := map[string][]wrkResult{}
	for round := range *rounds {
		for _, t := range targets {
			if t.addr == dl && *profile != "" && round == 0 {
				go saveProfile(metricsAddr, *profile, *duration-2*time.Second)
			}
			before := cpuTime(t.group)
			r := runWrk(t.addr)
			if t.group != 0 && r.requests > 0 {
				r.cpuPerRequest = (cpuTime(t.group) - before) / time.Duration(r.requests)
			}
			runs[t.name] = append(runs[t.name], r)
		}
	}
	results := map[string]wrkResult{}
	for name, rs := range runs {
		results[name] = median(rs)
	}
	ngx := results[nginxName]
	for _, t := range targets {
		r := results[t.name]
		cpu, cpuRatio := "—", "—"
		if r.cpuPerRequest > 0 {
			cpu = fmt.Sprintf("%.1f µs", float64(r.cpuPerRequest.Nanoseconds())/1000)
			cpuRatio = fmt.Sprintf("%.2f×", float64(r.cpuPerRequest)/float64(ngx.cpuPerRequest))
		}
		fmt.Printf("| %s | %.0f | %s | %s | %.2f× | %s | %s |\n", t.name, r.rps, ms(r.p50), ms(r.p99), r.rps/ngx.rps, cpu, cpuRatio)
	}
	// The same, at the same moderate load for all: each connection waits
	// -pace between a response and its next request (wrk's delay()), so
	// no proxy is saturated and latencies compare at equal throughput.
	paceScript := filepath.Join(dir, "pace.lua")
	write(paceScript, fmt.Sprintf("function delay()\n  return %d\nend\n", pace.Milliseconds()))
	paced := map[string][]wrkResult{}
	for range *rounds {
		for _, t := range targets {
			paced[t.name] = append(paced[t.name], runWrk(t.addr, "-s", paceScript))
		}
	}
	fmt.Printf("\nAt the same load: %d connections each waiting %s between requests; medians of %d rounds\n\n", *connections, *pace, *rounds)
	fmt.Println("| target | requests/s | p50 | p99 | p99 vs nginx |")
	fmt.Println("|---|---|---|---|---|")
	ngxPaced := median(paced[nginxName])
	for _, t := range targets {
		r := median(paced[t.name])
		fmt.Printf("| %s | %.0f | %s | %s | %.2f× |\n", t.name, r.rps, ms(r.p50), ms(r.p99), float64(r.p99)/float64(ngxPaced.p99))
	}

	rateTable(targets)

	fmt.Println("\nEvery round (requests/s, p99), saturated then at the same load:")
	for _, name := range []string{"driftless router", nginxName} {
		for _, set := range []map[string][]wrkResult{runs, paced} {
			fmt.Printf("- %s:", name)
			for _, r := range set[name] {
				fmt.Printf(" %.0f %s;", r.rps, ms(r.p99))
			}
			fmt.Println()
		}
	}

	if *pair {
		return
	}

	// 10,000 routes: one more instance of the backend carrying them all
	// (one registration), so the table holds them and wrk's requests are
	// matched among them.
	one := results["driftless router"]
	var routes []string
	for i := range *manyRoutes {
		routes = append(routes, fmt.Sprintf("app%d.many.localhost", i))
	}
	register(cc, "many", "many", bhost, bport, routes...)
	waitHTTP(dl, fmt.Sprintf("app%d.many.localhost", *manyRoutes-1))
	settle(consulPid) // Consul, on wrk's core, digests the registration first
	var manyRuns []wrkResult
	consulBefore := cpuTime(consulPid)
	for range *rounds {
		before := cpuTime(dlGroup)
		r := runWrk(dl)
		if r.requests > 0 {
			r.cpuPerRequest = (cpuTime(dlGroup) - before) / time.Duration(r.requests)
		}
		manyRuns = append(manyRuns, r)
	}
	many := median(manyRuns)
	fmt.Printf("\n| driftless router | requests/s | p99 | router CPU per request |\n|---|---|---|---|\n| 1 route | %.0f | %s | %.1f µs |\n| %d routes | %.0f (%+.1f %%) | %s | %.1f µs (%+.1f %%) |\n",
		one.rps, ms(one.p99), us(one.cpuPerRequest), *manyRoutes+1, many.rps, 100*(many.rps-one.rps)/one.rps, ms(many.p99),
		us(many.cpuPerRequest), 100*(us(many.cpuPerRequest)-us(one.cpuPerRequest))/us(one.cpuPerRequest))
	fmt.Printf("(Consul's CPU during those runs, on wrk's core: %s)\n", (cpuTime(consulPid) - consulBefore).Round(time.Millisecond))

	// Route changes: register a new route, time until the router serves it.
	var samples []time.Duration
	for i := range 10 {
		h := fmt.Sprintf("new%d.apps.localhost", i)
		t0 := time.Now()
		register(cc, fmt.Sprintf("new-%d", i), "new", bhost, bport, h)
		waitHTTP(dl, h)
		samples = append(samples, time.Since(t0))
	}
	slices.Sort(samples)
	fmt.Printf("\nroute change → served (10 changes, %d routes in the table): median %s, max %s\n",
		*manyRoutes+12, samples[len(samples)/2].Round(time.Millisecond), samples[len(samples)-1].Round(time.Millisecond))
}

func init() {
	// The backend: the same binary, started with -serve-backend ADDR.
	if len(os.Args) == 3 && os.Args[1] == "-serve-backend" {
		srv := &http.Server{Addr: os.Args[2], ReadHeaderTimeout: 10 * time.Second,
			Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "text/plain")
				_, _ = io.WriteString(w, "hello from the backend\n")
			})}
		log.Fatal(srv.ListenAndServe())
	}
}

// saveProfile writes a CPU profile of the router (its pprof endpoint on
// the metrics address) over d to path.
func saveProfile(metricsAddr, path string, d time.Duration) {
	time.Sleep(time.Second)
	resp, err := http.Get(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", metricsAddr, int(d.Seconds())))
	if err != nil {
		log.Printf("profile: %v", err)
		return
	}
	defer resp.Body.Close()
	f, err := os.Create(path)
	if err != nil {
		log.Printf("profile: %v", err)
		return
	}
	defer f.Close()
	_, _ = io.Copy(f, resp.Body)
}

// target is one thing driven with load: its name, address, and process
// group, whose CPU time is measured (0 for none).
type target struct {
	name, addr string
	group      int
}

type wrkResult struct {
	rps           float64
	requests      int64
	p50, p99      time.Duration
	cpuPerRequest time.Duration
	// restPerRequest is the CPU the rest of the machine (load generator,
	// backend, the kernel's softirqs, anything else) spent per request,
	// backendPerRequest the backend's part of it, idle the share of the
	// machine's CPU left idle during the run.
	restPerRequest    time.Duration
	backendPerRequest time.Duration
	idle              float64
}

// median is the median of each measure over runs (taken separately).
func median(runs []wrkResult) wrkResult {
	pick := func(f func(wrkResult) float64) float64 {
		v := make([]float64, len(runs))
		for i, r := range runs {
			v[i] = f(r)
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	return wrkResult{
		rps:           pick(func(r wrkResult) float64 { return r.rps }),
		p50:           time.Duration(pick(func(r wrkResult) float64 { return float64(r.p50) })),
		p99:           time.Duration(pick(func(r wrkResult) float64 { return float64(r.p99) })),
		cpuPerRequest: time.Duration(pick(func(r wrkResult) float64 { return float64(r.cpuPerRequest) })),
	}
}

// ms formats a latency in milliseconds.
func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000) }

// parseLatency reads a wrk latency ("804.00us", "1.07ms", "1.20s").
func parseLatency(s string) time.Duration {
	for _, u := range []struct {
		suffix string
		unit   time.Duration
	}{{"us", time.Microsecond}, {"ms", time.Millisecond}, {"s", time.Second}} {
		if v, ok := strings.CutSuffix(s, u.suffix); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				fatal("wrk latency %q: %v", s, err)
			}
			return time.Duration(f * float64(u.unit))
		}
	}
	fatal("wrk latency %q: unknown unit", s)
	return 0
}

// cpuTime is the CPU time (user and system) used so far by the processes
// of group pgid (0: none), from /proc.
func cpuTime(pgid int) time.Duration {
	if pgid == 0 {
		return 0
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		fatal("%v", err)
	}
	var ticks int64
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		if group, t, ok := procStat(e.Name()); ok && group == strconv.Itoa(pgid) {
			ticks += t
		}
	}
	return time.Duration(ticks) * time.Second / 100 // USER_HZ
}

// machineCPU is the machine's CPU time so far, busy and idle (idle and
// iowait), over all CPUs, from /proc/stat.
func machineCPU() (busy, idle time.Duration) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		fatal("%v", err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	for i, f := range strings.Fields(line)[1:] {
		t, _ := strconv.ParseInt(f, 10, 64)
		d := time.Duration(t) * time.Second / 100 // USER_HZ
		switch {
		case i == 3 || i == 4:
			idle += d
		case i < 8: // user nice system irq softirq steal; not guest (in user)
			busy += d
		}
	}
	return busy, idle
}

// procCPU is the CPU time (user and system, all threads) used so far by
// process pid alone.
func procCPU(pid int) time.Duration {
	_, t, _ := procStat(strconv.Itoa(pid))
	return time.Duration(t) * time.Second / 100 // USER_HZ
}

// procStat reads a process's group and CPU ticks (user and system) from
// /proc/<pid>/stat.
func procStat(pid string) (group string, ticks int64, ok bool) {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	i := strings.LastIndexByte(string(b), ')')
	if err != nil || i < 0 {
		return "", 0, false
	}
	// After "pid (comm) ": state ppid pgrp ... utime (14th) stime (15th).
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return "", 0, false
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return f[2], ut + st, true
}

var (
	rpsRE = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	p50RE = regexp.MustCompile(`\s50%\s+(\S+)`)
	p99RE = regexp.MustCompile(`\s99%\s+(\S+)`)
	reqRE = regexp.MustCompile(`(\d+) requests in`)
	errRE = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)|Socket errors: .*`)
)

// runWrk drives addr with wrk on CPU 1 (extra: more wrk arguments,
// before the URL).
func runWrk(addr string, extra ...string) wrkResult {
	return wrk(wrkRun{url: "http://" + addr + "/", cpu: "1"}, extra...)
}

// wrkRun is where and how wrk runs.
type wrkRun struct {
	// url is the target; cpu pins wrk ("" for anywhere); env is added to
	// its environment (OPENSSL_CONF for TLS 1.2).
	url, cpu string
	env      []string
}

// wrk drives o.url with wrk (extra: more wrk arguments, before the URL).
func wrk(o wrkRun, extra ...string) wrkResult {
	args := []string{"-t1", "-c" + strconv.Itoa(*connections), "-d" + duration.String(), "--latency", "-H", "Host: " + host}
	cmd := exec.Command("wrk", append(append(args, extra...), o.url)...)
	if o.cpu != "" {
		cmd = exec.Command("taskset", append([]string{"-c", o.cpu, "wrk"}, cmd.Args[1:]...)...)
	}
	cmd.Env = append(os.Environ(), o.env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		fatal("wrk %s: %v\n%s", o.url, err, out)
	}
	s := string(out)
	if m := errRE.FindString(s); m != "" {
		log.Printf("wrk against %s reported errors: %s", o.url, m)
	}
	r := readResult(s, rpsRE, reqRE)
	if m := p50RE.FindStringSubmatch(s); m != nil {
		r.p50 = parseLatency(m[1])
	}
	if m := p99RE.FindStringSubmatch(s); m != nil {
		r.p99 = parseLatency(m[1])
	}
	return r
}

// readResult reads a load generator's requests/s and request count from
// its output s (the first submatch of rate and of count).
func readResult(s string, rate, count *regexp.Regexp) wrkResult {
	var r wrkResult
	if m := rate.FindStringSubmatch(s); m != nil {
		r.rps, _ = strconv.ParseFloat(m[1], 64)
	}
	if m := count.FindStringSubmatch(s); m != nil {
		r.requests, _ = strconv.ParseInt(m[1], 10, 64)
	}
	return r
}

func register(c *consul.Client, guid, app, addr string, port int, routes ...string) {
	in := model.Endpoint{InstanceRef: model.InstanceRef{GUID: guid, Space: "bench", App: app}, Address: addr, Port: port, Routes: routes}
	if err := catalog.Register(c, in, model.HealthCheck{Type: "process"}); err != nil {
		fatal("registering %s: %v", guid, err)
	}
}

// waitHTTP waits until addr answers 200 for Host h ("" for any answer).
func waitHTTP(addr, h string) {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/", nil)
		if h != "" {
			req.Host = h
		}
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 && string(body) == "hello from the backend\n" {
				return
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
	fatal("%s never answered for %q", addr, h)
}

func freeAddr() string {
	p, err := children.FreePort()
	if err != nil {
		fatal("%v", err)
	}
	return fmt.Sprintf("127.0.0.1:%d", p)
}

func splitAddr(a string) (string, int) {
	h, p, _ := net.SplitHostPort(a)
	n, _ := strconv.Atoi(p)
	return h, n
}

func write(path, content string) {
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		fatal("%v", err)
	}
}

// us is d in microseconds.
func us(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1000 }

// settle waits (up to 30 s) until the process group pgid uses less than
// 2 % of a core.
func settle(pgid int) {
	for range 30 {
		before := cpuTime(pgid)
		time.Sleep(time.Second)
		if cpuTime(pgid)-before < 20*time.Millisecond {
			return
		}
	}
}

func fatal(format string, args ...any) {
	stopAll()
	log.Fatalf(format, args...)
}
