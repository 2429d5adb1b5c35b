package main

// The router's own costs (-roles): the router role without per-request
// logs (as beside nginx), with its RTR lines published over NATS
// (--app-logs, the default) or not, with NATS unreachable (lines pile up
// in the client's reconnect buffer), with an access log file and the
// RTR lines as dev sets its router up, and `driftless dev` itself: the
// whole platform in one process, the router among it. Every target
// pinned to CPU 0 with GOMAXPROCS=1; wrk, the backend, NATS, Consul and
// dev's children (Consul, containerd) on CPU 1.

import (
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/driftless/driftless/bus"
	"github.com/driftless/driftless/catalog"
)

var (
	rolesMode = flag.Bool("roles", false, "the router's own costs (RTR lines over NATS, access log) and the router of `driftless dev` beside the router role, instead of the main tables")
	noDev     = flag.Bool("no-dev", false, "-roles without `driftless dev`")
)

// benchNATSPassword is the router's password on the bench's NATS server.
const benchNATSPassword = "router-bench"

// roleTarget is a router driven by -roles: pid is the process whose CPU
// time counts (dev's children, Consul and containerd, do not).
type roleTarget struct {
	name, addr string
	pid        int
}

func runRoles() {
	dir := workDir()
	defer stopAll()
	backend, consulAddr, _, _ := startRouted(dir, "1")
	natsAddr := freeAddr()
	_ = start(dir, "1", nil, os.Args[0], "-serve-nats", natsAddr)
	natsURL := "nats://" + natsAddr
	waitTCP(natsAddr)

	router := func(name string, args ...string) roleTarget {
		addr := freeAddr()
		env := []string{"GOMAXPROCS=1", "DRIFTLESS_NATS_PASSWORD=" + benchNATSPassword}
		pid := start(dir, "0", env, *driftless, append([]string{"router", "--http", addr, "--consul", consulAddr,
			"--log-level", "warn", "--nats-user", "router"}, args...)...)
		waitHTTP(addr, host)
		return roleTarget{name, addr, pid}
	}
	targets := []roleTarget{
		router("router role, no per-request log (as beside nginx)", "--access-log", "", "--nats", ""),
		router("router role, NATS up, --app-logs=false", "--access-log", "", "--nats", natsURL, "--app-logs=false"),
		router("router role, NATS up, RTR lines on (--app-logs, the default)", "--access-log", "", "--nats", natsURL),
		router("router role, NATS unreachable, RTR lines on", "--access-log", "", "--nats", "nats://"+freeAddr()),
		router("router role as dev sets it (access log file, RTR lines over NATS)", "--access-log", filepath.Join(dir, "access.log"), "--nats", natsURL),
	}
	if !*noDev {
		targets = append(targets, startDev(dir, backend))
	}

	fmt.Printf("wrk -t1 -c%d -d%s, plain HTTP, %d rounds interleaved (medians), loopback; each router on CPU 0 (GOMAXPROCS=1), wrk, the backend, NATS and Consul on CPU 1\n\n",
		*connections, *duration, *rounds)
	fmt.Println("| router | requests/s | vs the first | CPU per request | vs the first | p50 | p99 |")
	fmt.Println("|---|---|---|---|---|---|---|")
	runs := map[string][]wrkResult{}
	for range *rounds {
		for _, t := range targets {
			before := procCPU(t.pid)
			r := runWrk(t.addr)
			if r.requests > 0 {
				r.cpuPerRequest = (procCPU(t.pid) - before) / time.Duration(r.requests)
			}
			runs[t.name] = append(runs[t.name], r)
		}
	}
	first := median(runs[targets[0].name])
	for _, t := range targets {
		r := median(runs[t.name])
		fmt.Printf("| %s | %.0f | %.2f× | %.1f µs | %.2f× | %s | %s |\n", t.name, r.rps, r.rps/first.rps,
			us(r.cpuPerRequest), float64(r.cpuPerRequest)/float64(first.cpuPerRequest), ms(r.p50), ms(r.p99))
	}
	fmt.Println("\nEvery round (requests/s):")
	for _, t := range targets {
		fmt.Printf("- %s:", t.name)
		for _, r := range runs[t.name] {
			fmt.Printf(" %.0f", r.rps)
		}
		fmt.Println()
	}
}

// startDev starts `driftless dev` on CPU 0 (GOMAXPROCS=1) with its own
// Consul, NATS and containerd (moved to CPU 1 once up), an empty
// repository and no app, and routes the bench's host to the backend in
// its Consul.
func startDev(dir, backend string) roleTarget {
	repo := filepath.Join(dir, "repo")
	data := filepath.Join(dir, "dev")
	if err := os.MkdirAll(repo, 0o755); err != nil {
		fatal("%v", err)
	}
	write(filepath.Join(repo, "manifest.yml"), "applications: []\n")
	for _, args := range [][]string{{"init", "-q", repo}, {"-C", repo, "add", "."},
		{"-C", repo, "-c", "user.email=bench@localhost", "-c", "user.name=bench", "commit", "-qm", "empty"}} {
		if out, err := exec.Command("git", args...).CombinedOutput(); err != nil {
			fatal("git %v: %v\n%s", args, err, out)
		}
	}
	addr, consulAddr := freeAddr(), freeAddr()
	lo, _ := strconv.Atoi(strings.TrimPrefix(freeAddr(), "127.0.0.1:"))
	pid := start(dir, "0", []string{"GOMAXPROCS=1"}, *driftless, "dev", "--repo", repo, "--data", data,
		"--http", addr, "--consul", consulAddr, "--nats", freeAddr(), "--api", freeAddr(),
		"--containerd", filepath.Join(dir, "containerd.sock"), "--bridge", "dlbench0", "--subnet", "10.251.0.0/16",
		"--ports", fmt.Sprintf("%d-%d", lo, lo+9), "--client-config", "", "--log-level", "warn")
	stops = append(stops, func() {
		_ = exec.Command(*driftless, "dev", "--down", "--data", data).Run()
	})
	deadline := time.Now().Add(60 * time.Second)
	var token []byte
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(filepath.Join(data, "consul", "management.token")); err == nil && len(b) > 0 {
			token = b
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	waitTCP(addr)
	// dev's children stay off the measured core.
	for _, child := range childPids(pid) {
		_ = exec.Command("taskset", "-apc", "1", strconv.Itoa(child)).Run()
	}
	cc, err := catalog.NewClient(consulAddr, strings.TrimSpace(string(token)))
	if err != nil {
		fatal("dev's Consul: %v", err)
	}
	bhost, bport := splitAddr(backend)
	register(cc, "bench-dev-0", "bench", bhost, bport, host)
	waitHTTP(addr, host)
	return roleTarget{"`driftless dev` (whole platform in one process, its router as dev sets it)", addr, pid}
}

// childPids are the processes whose parent is pid.
func childPids(pid int) []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		i := strings.LastIndexByte(string(b), ')')
		if err != nil || i < 0 {
			continue
		}
		if f := strings.Fields(string(b[i+1:])); len(f) > 1 && f[1] == strconv.Itoa(pid) {
			n, _ := strconv.Atoi(e.Name())
			out = append(out, n)
		}
	}
	return out
}

// waitTCP waits until addr accepts connections.
func waitTCP(addr string) {
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return
		}
	}
	fatal("%s never accepted a connection", addr)
}

func init() {
	// The bench's NATS server: the same binary, started with -serve-nats
	// ADDR; the router's credential only.
	if len(os.Args) == 3 && os.Args[1] == "-serve-nats" {
		auth, err := bus.StaticUsers(bus.Credential{User: "router", Password: benchNATSPassword, Identity: bus.Identity{Role: bus.RoleRouter}})
		if err != nil {
			log.Fatal(err)
		}
		if _, err := bus.StartEmbedded(bus.EmbeddedConfig{Listen: os.Args[2], Auth: auth}); err != nil {
			log.Fatal(err)
		}
		select {}
	}
}
