package platform

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// unmountUnder unmounts (lazily) every mount point strictly below dir,
// deepest first: root filesystems of containers whose shim died before
// it could. It returns how many it unmounted.
func unmountUnder(dir string, log *slog.Logger) (int, error) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return 0, fmt.Errorf("listing mounts: %w", err)
	}
	points := mountsUnder(string(data), dir)
	n := 0
	for _, p := range points {
		if err := unix.Unmount(p, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			return n, fmt.Errorf("unmounting %s: %w", p, err)
		}
		n++
		log.Info("unmounted", "path", p)
	}
	return n, nil
}

// mountsUnder picks from /proc/self/mountinfo the mount points strictly
// below dir, deepest first (each once).
func mountsUnder(mountinfo, dir string) []string {
	prefix := strings.TrimSuffix(dir, "/") + "/"
	var out []string
	for _, line := range strings.Split(mountinfo, "\n") {
		fields := strings.Fields(line)
		if len(fields) < 5 {
			continue
		}
		p := unescapeMount(fields[4])
		if strings.HasPrefix(p, prefix) && !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	slices.SortFunc(out, func(a, b string) int { return strings.Count(b, "/") - strings.Count(a, "/") })
	return out
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// processMarks say which processes on the host are a stopped dev's:
// its children (Consul, containerd, PostgreSQL) by a path of its data
// folder in their command line, and the shims of its containers by its
// containerd socket and namespace.
type processMarks struct {
	// paths are folders (with a trailing /) whose mention in a command
	// line marks Consul, containerd or PostgreSQL as dev's.
	paths []string
	// socket and namespace mark a containerd shim as one of dev's
	// containers' ("" socket: none is).
	socket, namespace string
}

// childNames are the programs dev starts (and their shims): only those
// are ever stopped.
var childNames = []string{"consul", "containerd", "postgres", "containerd-shim-runc-v2"}

func leftProcessMarks(dataDir, sock, namespace string) processMarks {
	m := processMarks{paths: []string{dataDir + "/"}, namespace: namespace}
	if pg := postgresDir(dataDir); !strings.HasPrefix(pg, dataDir+"/") {
		m.paths = append(m.paths, pg+"/")
	}
	if sock != SystemContainerdSocket {
		m.socket = sock
	}
	if m.namespace == "" {
		m.namespace = "driftless"
	}
	return m
}

// marked reports whether a process with command line args (the program
// first) is one of dev's.
func (m processMarks) marked(args []string) bool {
	if len(args) == 0 || !slices.Contains(childNames, filepath.Base(args[0])) {
		return false
	}
	if strings.HasPrefix(filepath.Base(args[0]), "containerd-shim") {
		return m.socket != "" && argValue(args, "-address") == m.socket && argValue(args, "-namespace") == m.namespace
	}
	for _, a := range args[1:] {
		for _, p := range m.paths {
			if strings.Contains(a+"/", p) {
				return true
			}
		}
	}
	return false
}

// argValue is the argument after flag in args ("" if none).
func argValue(args []string, flag string) string {
	for i := 0; i+1 < len(args); i++ {
		if args[i] == flag || args[i] == "-"+flag {
			return args[i+1]
		}
	}
	return ""
}

// stopLeftProcesses stops the processes marks marks: SIGTERM (SIGINT for
// PostgreSQL, its fast shutdown), SIGKILL after 10 s. It returns how many
// there were.
func stopLeftProcesses(marks processMarks, log *slog.Logger) (int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, fmt.Errorf("listing processes: %w", err)
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		raw, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || len(raw) == 0 {
			continue
		}
		args := strings.Split(string(bytes.TrimRight(raw, "\x00")), "\x00")
		if !marks.marked(args) {
			continue
		}
		sig := syscall.SIGTERM
		if filepath.Base(args[0]) == "postgres" {
			sig = syscall.SIGINT
		}
		log.Info("stopping a process of the platform left running", "pid", pid, "command", strings.Join(args, " "))
		if err := syscall.Kill(pid, sig); err == nil {
			pids = append(pids, pid)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, pid := range pids {
		for time.Now().Before(deadline) && syscall.Kill(pid, 0) == nil {
			time.Sleep(100 * time.Millisecond)
		}
		if syscall.Kill(pid, 0) == nil {
			log.Warn("killing a process of the platform that did not stop", "pid", pid)
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	return len(pids), nil
}
