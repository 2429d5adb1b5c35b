package main

// The processes a run starts (backend, Consul, proxies), shared by the
// main tables and the HTTPS comparison (https.go).

import (
	"context"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	consul "github.com/hashicorp/consul/api"

	"github.com/driftless/driftless/catalog"
	"github.com/driftless/driftless/internal/children"
)

var (
	// procs are the processes started, each the leader of its group.
	procs []*exec.Cmd
	// stops are run by stopAll after the processes are killed (Consul).
	stops []func()
)

// stopAll kills what the run started; fatal runs it before exiting (a
// failed run must not leave a proxy on the measured core).
func stopAll() {
	for _, p := range procs {
		_ = syscall.Kill(-p.Process.Pid, syscall.SIGKILL)
		_ = p.Wait()
	}
	procs = nil
	for _, f := range stops {
		f()
	}
	stops = nil
}

// workDir makes the run's folder (configs and logs).
func workDir() string {
	dir, err := os.MkdirTemp("", "router-bench-")
	if err != nil {
		fatal("%v", err)
	}
	log.Printf("work folder (configs, logs): %s", dir)
	return dir
}

// start starts name in a process group of its own, pinned to cpu with
// taskset ("" for anywhere), its output in a log in dir; it returns the
// group's id.
func start(dir, cpu string, env []string, name string, args ...string) int {
	cmd := exec.Command(name, args...)
	if cpu != "" {
		cmd = exec.Command("taskset", append([]string{"-c", cpu, name}, args...)...)
	}
	cmd.Env = append(os.Environ(), env...)
	// One log per process (several nginx run): nginx-0.log, nginx-2.log, ...
	logf, _ := os.Create(filepath.Join(dir, fmt.Sprintf("%s-%d.log", filepath.Base(name), len(procs))))
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		fatal("starting %s: %v", name, err)
	}
	procs = append(procs, cmd)
	return cmd.Process.Pid // its process group too
}

// startBackend starts the backend (-backend) on cpu and returns its
// address once it answers.
// backendGroup is the process group of the backend startBackend started
// last.
var backendGroup int

func startBackend(dir, cpu string) string {
	backend := freeAddr()
	switch *backendKind {
	case "go":
		backendGroup = start(dir, cpu, nil, os.Args[0], "-serve-backend", backend)
	case "nginx":
		conf := filepath.Join(dir, "backend.conf")
		write(conf, fmt.Sprintf(`worker_processes 1;
daemon off;
pid %s/backend.pid;
error_log %s/backend-error.log;
events { worker_connections 4096; }
http {
  access_log off;
  server {
    listen %s;
    location / { default_type text/plain; return 200 "hello from the backend\n"; }
  }
}
`, dir, dir, backend))
		backendGroup = start(dir, cpu, nil, "nginx", "-c", conf, "-e", filepath.Join(dir, "backend-error.log"))
	default:
		fatal("-backend %q: want go or nginx", *backendKind)
	}
	waitHTTP(backend, "")
	return backend
}

// startConsul starts the Consul that feeds the routers their table, on
// CPU 1 (its chatter stays off the proxies' core), and returns its
// address, process id and a client.
func startConsul(dir string) (string, int, *consul.Client) {
	addr := freeAddr()
	cp, err := children.StartConsul(context.Background(), children.ConsulOptions{HTTPAddr: addr, LogPath: filepath.Join(dir, "consul.log")})
	if err != nil {
		fatal("%v", err)
	}
	stops = append(stops, func() { _ = cp.Stop(10 * time.Second) })
	_ = exec.Command("taskset", "-apc", "1", strconv.Itoa(cp.Pid())).Run()
	cc, err := catalog.NewClient(addr, "") // its own Consul, without ACLs
	if err != nil {
		fatal("%v", err)
	}
	return addr, cp.Pid(), cc
}

// startRouted starts the backend on cpu and the Consul that routes the
// bench's host to it, and returns the backend's address, Consul's
// address, process id and a client.
func startRouted(dir, cpu string) (backend, consulAddr string, consulPid int, cc *consul.Client) {
	backend = startBackend(dir, cpu)
	consulAddr, consulPid, cc = startConsul(dir)
	bhost, bport := splitAddr(backend)
	register(cc, "bench-0", "bench", bhost, bport, host)
	return backend, consulAddr, consulPid, cc
}
