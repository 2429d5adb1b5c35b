// Package children starts the real engines driftless depends on — Consul and
// containerd — as child processes, waits until they answer, and stops them.
// `driftless dev` uses it when nothing answers at the configured addresses,
// and the test harness uses it to give every test its own engines on
// loopback.
package children

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"
	"time"
)

// Process is a running child process.
type Process struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
	log  string
	// stop is the signal Stop sends first; 0 means SIGTERM.
	stop syscall.Signal
}

// start runs bin with args, sending its output to logPath. The child gets
// its own process group so that a terminal's Ctrl-C reaches driftless, which
// then stops its children in order.
func start(name, bin string, args []string, logPath string) (*Process, error) {
	return startAs(name, bin, args, logPath, nil)
}

// startAs is start running the child as cred's user (nil: driftless's own).
func startAs(name, bin string, args []string, logPath string, cred *syscall.Credential) (*Process, error) {
	if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
		return nil, fmt.Errorf("creating log folder for %s: %w", name, err)
	}
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening %s log: %w", name, err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM, Credential: cred}
	if err := startFromSpawner(cmd); err != nil {
		logf.Close()
		return nil, fmt.Errorf("starting %s (%s): %w", name, bin, err)
	}
	p := &Process{name: name, cmd: cmd, done: make(chan struct{}), log: logPath}
	go func() {
		p.err = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	return p, nil
}

// The kernel sends Pdeathsig when the *thread* that forked the child
// exits, not the process. Go ends threads whose goroutine exits while
// locked to them (agents/network does so on purpose after entering a
// network namespace), and any thread may have forked a child. So children
// are forked by one goroutine locked to its thread for the life of the
// process: the signal comes only when driftless itself dies.
var spawns = make(chan spawn)

type spawn struct {
	cmd  *exec.Cmd
	done chan error
}

func init() {
	go func() {
		runtime.LockOSThread() // never unlocked: this thread lives as long as the process
		for s := range spawns {
			s.done <- s.cmd.Start()
		}
	}()
}

func startFromSpawner(cmd *exec.Cmd) error {
	done := make(chan error, 1)
	spawns <- spawn{cmd: cmd, done: done}
	return <-done
}

// Name is what the process is, e.g. "consul".
func (p *Process) Name() string { return p.name }

// Pid is the child's process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// LogPath is the file holding the child's output.
func (p *Process) LogPath() string { return p.log }

// Done is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Err is the process's exit error, valid after Done is closed.
func (p *Process) Err() error { return p.err }

// Stop asks the process to end with SIGTERM (SIGINT for PostgreSQL, its
// fast shutdown) and kills it if it is still running after grace.
func (p *Process) Stop(grace time.Duration) error {
	select {
	case <-p.done:
		return nil
	default:
	}
	sig := p.stop
	if sig == 0 {
		sig = syscall.SIGTERM
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
		return nil
	case <-time.After(grace):
	}
	p.Kill()
	return fmt.Errorf("%s did not stop within %s and was killed", p.name, grace)
}

// Kill ends the process with SIGKILL and waits for it.
func (p *Process) Kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// waitReady polls ready until it succeeds, the process exits, ctx ends or
// timeout passes.
func (p *Process) waitReady(ctx context.Context, timeout time.Duration, ready func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		if last = ready(ctx); last == nil {
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("%s exited before it was ready (%v); see %s", p.name, p.err, p.log)
		case <-ctx.Done():
			_ = p.Stop(5 * time.Second)
			return fmt.Errorf("%s not ready after %s: %w; see %s", p.name, timeout, errors.Join(ctx.Err(), last), p.log)
		case <-tick.C:
		}
	}
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
// It is drawn from 10000–19999, below the kernel's ephemeral ports (and
// the 20000–31999 the tests give instances): a port from the ephemeral
// range can be taken as the source port of any outgoing connection
// between this call and the caller's bind. A port handed out is also
// claimed for portClaim in a file under the temporary folder, so no
// other process calling FreePort (the test packages run side by side)
// hands it out again before its caller has bound it.
func FreePort() (int, error) {
	dir := filepath.Join(os.TempDir(), "driftless-ports")
	_ = os.MkdirAll(dir, 0o700)
	for range 100 {
		port := 10000 + rand.IntN(10000)
		if !claimPort(dir, port) {
			continue
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			_ = l.Close()
			return port, nil
		}
	}
	return 0, errors.New("finding a free port: 100 ports of 10000-19999 tried, all taken")
}

// portClaim is how long a port handed out by FreePort stays claimed:
// longer than any caller takes to bind it.
const portClaim = 10 * time.Minute

// claimPort claims port in dir unless another FreePort claimed it less
// than portClaim ago. A folder that cannot be written claims nothing and
// refuses nothing.
func claimPort(dir string, port int) bool {
	name := filepath.Join(dir, fmt.Sprint(port))
	f, err := os.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err == nil {
		f.Close()
		return true
	}
	if !errors.Is(err, os.ErrExist) {
		return true
	}
	info, err := os.Stat(name)
	if err != nil || time.Since(info.ModTime()) < portClaim {
		return false
	}
	now := time.Now() // a stale claim: take it over
	return os.Chtimes(name, now, now) == nil
}
