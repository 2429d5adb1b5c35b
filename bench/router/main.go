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
	"context"
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
	"syscall"
	"time"

	consul "github.com/hashicorp/consul/api"

	"github.com/driftless/driftless/bus"
	"github.com/driftless/driftless/catalog"
	"github.com/driftless/driftless/internal/children"
)

const host = "bench.apps.localhost"

var (
	duration    = flag.Duration("duration", 10*time.Second, "wrk run per proxy")
	connections = flag.Int("connections", 64, "wrk connections")
	driftless   = flag.String("driftless", "bin/driftless", "driftless binary")
	manyRoutes  = flag.Int("routes", 10000, "routes in the large table")
)

func main() {
	flag.Parse()
	log.SetFlags(0)
	dir, err := os.MkdirTemp("", "router-bench-")
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("work folder (configs, logs): %s", dir)
	var procs []*exec.Cmd
	defer func() {
		for _, p := range procs {
			_ = syscall.Kill(-p.Process.Pid, syscall.SIGKILL)
			_ = p.Wait()
		}
	}()
	start := func(cpu string, env []string, name string, args ...string) {
		cmd := exec.Command("taskset", append([]string{"-c", cpu, name}, args...)...)
		cmd.Env = append(os.Environ(), env...)
		logf, _ := os.Create(filepath.Join(dir, filepath.Base(name)+".log"))
		cmd.Stdout, cmd.Stderr = logf, logf
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			log.Fatalf("starting %s: %v", name, err)
		}
		procs = append(procs, cmd)
	}

	backend := freeAddr()
	start("1", nil, os.Args[0], "-serve-backend", backend)
	waitHTTP(backend, "")

	ctx := context.Background()
	consulAddr := freeAddr()
	cp, err := children.StartConsul(ctx, children.ConsulOptions{HTTPAddr: consulAddr, LogPath: filepath.Join(dir, "consul.log")})
	if err != nil {
		log.Fatal(err)
	}
	defer func() { _ = cp.Stop(10 * time.Second) }()
	cc, err := catalog.NewClient(consulAddr)
	if err != nil {
		log.Fatal(err)
	}
	bhost, bport := splitAddr(backend)
	register(cc, "bench-0", "bench", bhost, bport, host)

	type target struct{ name, addr string }
	var targets []target
	targets = append(targets, target{"backend alone (ceiling)", backend})

	dl := freeAddr()
	start("0", []string{"GOMAXPROCS=1"}, *driftless, "router", "--http", dl, "--consul", consulAddr, "--access-log", "", "--log-level", "warn")
	waitHTTP(dl, host)
	targets = append(targets, target{"driftless router", dl})

	ng := freeAddr()
	nginxConf := filepath.Join(dir, "nginx.conf")
	write(nginxConf, fmt.Sprintf(`worker_processes 1;
daemon off;
pid %s/nginx.pid;
error_log %s/nginx-error.log;
events { worker_connections 4096; }
http {
  access_log off;
  upstream app { server %s; keepalive 128; }
  server {
    listen %s;
    server_name %s;
    location / { proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_set_header Host $host; }
  }
}
`, dir, dir, backend, ng, host))
	start("0", nil, "nginx", "-c", nginxConf, "-e", filepath.Join(dir, "nginx-error.log"))
	waitHTTP(ng, host)
	targets = append(targets, target{"nginx 1.22 (1 worker)", ng})

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
  default_backend app
backend app
  server s1 %s
`, hp, backend))
	start("0", nil, "haproxy", "-f", hpConf)
	waitHTTP(hp, host)
	targets = append(targets, target{"HAProxy 2.6 (1 thread)", hp})

	cd := freeAddr()
	caddyfile := filepath.Join(dir, "Caddyfile")
	_, cdPort := splitAddr(cd)
	write(caddyfile, fmt.Sprintf("{\n  admin off\n  auto_https off\n  default_bind 127.0.0.1\n}\nhttp://:%d {\n  reverse_proxy %s\n}\n", cdPort, backend))
	start("0", []string{"GOMAXPROCS=1", "HOME=" + dir, "XDG_DATA_HOME=" + dir, "XDG_CONFIG_HOME=" + dir}, "caddy", "run", "--config", caddyfile, "--adapter", "caddyfile")
	waitHTTP(cd, host)
	targets = append(targets, target{"Caddy 2.6 (GOMAXPROCS=1)", cd})

	fmt.Printf("wrk -t1 -c%d -d%s, one run, loopback; proxies on CPU 0, wrk and backend on CPU 1\n\n", *connections, *duration)
	fmt.Println("| target | requests/s | p50 | p99 | vs nginx |")
	fmt.Println("|---|---|---|---|---|")
	results := map[string]wrkResult{}
	for _, t := range targets {
		r := runWrk(t.addr)
		results[t.name] = r
	}
	ngx := results["nginx 1.22 (1 worker)"]
	for _, t := range targets {
		r := results[t.name]
		fmt.Printf("| %s | %.0f | %s | %s | %.2f× |\n", t.name, r.rps, r.p50, r.p99, r.rps/ngx.rps)
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
	many := runWrk(dl)
	fmt.Printf("\n| driftless router | requests/s | p99 |\n|---|---|---|\n| 1 route | %.0f | %s |\n| %d routes | %.0f (%.1f %% less) | %s |\n",
		one.rps, one.p99, *manyRoutes+1, many.rps, 100*(one.rps-many.rps)/one.rps, many.p99)

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

type wrkResult struct {
	rps      float64
	p50, p99 string
}

var (
	rpsRE = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	p50RE = regexp.MustCompile(`\s50%\s+(\S+)`)
	p99RE = regexp.MustCompile(`\s99%\s+(\S+)`)
	errRE = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)|Socket errors: .*`)
)

func runWrk(addr string) wrkResult {
	out, err := exec.Command("taskset", "-c", "1", "wrk", "-t1", "-c"+strconv.Itoa(*connections), "-d"+duration.String(),
		"--latency", "-H", "Host: "+host, "http://"+addr+"/").CombinedOutput()
	if err != nil {
		log.Fatalf("wrk %s: %v\n%s", addr, err, out)
	}
	s := string(out)
	if m := errRE.FindString(s); m != "" {
		log.Printf("wrk against %s reported errors: %s", addr, m)
	}
	var r wrkResult
	if m := rpsRE.FindStringSubmatch(s); m != nil {
		r.rps, _ = strconv.ParseFloat(m[1], 64)
	}
	if m := p50RE.FindStringSubmatch(s); m != nil {
		r.p50 = m[1]
	}
	if m := p99RE.FindStringSubmatch(s); m != nil {
		r.p99 = m[1]
	}
	return r
}

func register(c *consul.Client, guid, app, addr string, port int, routes ...string) {
	reg := catalog.Registration(catalog.Instance{GUID: guid, Space: "bench", App: app, Address: addr, Port: port, Routes: routes},
		bus.HealthCheck{Type: "process"}, time.Hour)
	if err := c.Agent().ServiceRegister(reg); err != nil {
		log.Fatalf("registering %s: %v", guid, err)
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
	log.Fatalf("%s never answered for %q", addr, h)
}

func freeAddr() string {
	p, err := children.FreePort()
	if err != nil {
		log.Fatal(err)
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
		log.Fatal(err)
	}
}
