package runtime

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/containerd/errdefs"
	"github.com/containerd/containerd/namespaces"

	"github.com/driftless/driftless/agents/network"
	"github.com/driftless/driftless/internal/testenv"
)

// env is what the runtime tests share: one containerd, one registry with
// the test image, one network.
type env struct {
	ctrd   *testenv.Containerd
	reg    *testRegistry
	ref    string
	logDir string
	net    *network.Network
	ports  *network.Ports
}

func newRuntime(t *testing.T, e *env) *Runtime {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := New(ctx, Config{Address: e.ctrd.Address, LogDir: e.logDir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}

func randomID(t *testing.T) string {
	t.Helper()
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "i-" + hex.EncodeToString(b)
}

func timeout(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// start starts spec (filling in the image, user and memory when unset)
// and stops the container when the test ends.
func start(t *testing.T, r *Runtime, e *env, spec Spec) Spec {
	t.Helper()
	if spec.ID == "" {
		spec.ID = randomID(t)
	}
	if spec.Image == "" {
		spec.Image = e.ref
	}
	if spec.UID == 0 {
		spec.UID, spec.GID = 2000, 2000
	}
	if spec.MemoryMB == 0 {
		spec.MemoryMB = 64
	}
	if err := r.Start(timeout(t, 30*time.Second), spec); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Stop(timeout(t, 30*time.Second), spec.ID, time.Second) })
	return spec
}

// attach gives id a network attachment, detached when the test ends.
func attach(t *testing.T, e *env, id string) *network.Attachment {
	t.Helper()
	port, err := e.ports.Allocate(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	a, err := e.net.Attach(timeout(t, 30*time.Second), id, port, 8080)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = e.net.Detach(timeout(t, 30*time.Second), id, port, 8080)
		e.ports.Release(port)
	})
	return a
}

func waitExit(t *testing.T, r *Runtime, id string, within time.Duration) Exit {
	t.Helper()
	ctx := timeout(t, within)
	ch, err := r.Wait(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	ex := <-ch
	if ex.Err != nil {
		t.Fatalf("waiting for %s: %v\nlog:\n%s", id, ex.Err, strings.Join(TailLines(r.LogPath(id), 30), "\n"))
	}
	return ex
}

func find(t *testing.T, r *Runtime, id string) (Container, bool) {
	t.Helper()
	cs, err := r.List(timeout(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		if c.ID == id {
			return c, true
		}
	}
	return Container{}, false
}

func httpGet(url string) (string, error) {
	client := &http.Client{Timeout: 2 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("status %d: %s", resp.StatusCode, b)
	}
	return string(b), nil
}

func TestRuntime(t *testing.T) {
	e := &env{ctrd: testenv.StartContainerd(t), reg: startRegistry(t), logDir: t.TempDir()}
	e.ref = e.reg.push(t, "droplets/dev/hello", testImage(t, "hello"))
	var err error
	e.net, err = network.New(network.Config{Name: "dltest-rt", Bridge: "dltrt0", Subnet: "10.234.0.0/24",
		StateDir: t.TempDir(), IPAMDir: t.TempDir(), HostIP: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "link", "delete", "dltrt0").Run() })
	e.ports = network.NewPorts("127.0.0.1", 43100, 43199)
	r := newRuntime(t, e)
	const repo = "droplets/dev/hello"
	if err := r.Pull(timeout(t, 60*time.Second), e.ref); err != nil {
		t.Fatal(err)
	}
	first := e.reg.manifestHits(repo)

	t.Run("pull", func(t *testing.T) {
		if first == 0 {
			t.Fatal("the pull never asked the registry for the manifest")
		}
		began := time.Now()
		for i := 0; i < 3; i++ {
			if err := r.Pull(timeout(t, 10*time.Second), e.ref); err != nil {
				t.Fatal(err)
			}
		}
		if hits := e.reg.manifestHits(repo); hits != first {
			t.Fatalf("pulling a present image again asked the registry %d more times", hits-first)
		}
		if took := time.Since(began); took > 2*time.Second {
			t.Fatalf("three pulls of a present image took %s", took)
		}

		// Concurrent pulls of a new image share one pull.
		const repo2 = "droplets/dev/other"
		ref2 := e.reg.push(t, repo2, testImage(t, "other"))
		var wg sync.WaitGroup
		errs := make(chan error, 6)
		for i := 0; i < 6; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs <- r.Pull(timeout(t, 60*time.Second), ref2)
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		if hits := e.reg.manifestHits(repo2); hits != first {
			t.Fatalf("6 concurrent pulls asked for the manifest %d times; one pull asks %d times", hits, first)
		}

		missing := e.reg.host + "/droplets/dev/hello@sha256:" + strings.Repeat("0", 64)
		if err := r.Pull(timeout(t, 30*time.Second), missing); err == nil {
			t.Fatal("pulling a missing image succeeded")
		}
	})

	t.Run("serves HTTP on its host port", func(t *testing.T) {
		id := randomID(t)
		a := attach(t, e, id)
		start(t, r, e, Spec{ID: id, Args: []string{"/bin/httpd", "-f", "-v", "-p", "8080", "-h", "/www"},
			NetNSPath: a.NetNSPath, Hostname: "web-0"})
		for _, url := range []string{fmt.Sprintf("http://127.0.0.1:%d/", a.HostPort), "http://" + a.IP + ":8080/"} {
			testenv.Eventually(t, 15*time.Second, 200*time.Millisecond, "GET "+url, func() error {
				body, err := httpGet(url)
				if err == nil && body != "hello from driftless\n" {
					err = fmt.Errorf("body %q", body)
				}
				return err
			})
		}
		if err := r.Stop(timeout(t, 30*time.Second), id, time.Second); err != nil {
			t.Fatal(err)
		}
		if err := e.net.Detach(timeout(t, 30*time.Second), id, a.HostPort, 8080); err != nil {
			t.Fatal(err)
		}
		if _, err := httpGet(fmt.Sprintf("http://127.0.0.1:%d/", a.HostPort)); err == nil {
			t.Fatal("the host port still answers after Stop and Detach")
		}
	})

	t.Run("locked down", func(t *testing.T) { testLockedDown(t, r, e) })
	t.Run("seccomp", func(t *testing.T) { testSeccomp(t, r, e) })

	t.Run("exec (sidecars)", func(t *testing.T) { testExec(t, r, e) })

	t.Run("the image's user is not used", func(t *testing.T) { testImageUser(t, r, e) })

	t.Run("exit status", func(t *testing.T) {
		s := start(t, r, e, Spec{Args: []string{"/bin/sh", "-c", "echo bye; exit 3"}})
		ex := waitExit(t, r, s.ID, 30*time.Second)
		if ex.Status != 3 || time.Since(ex.At) > time.Minute {
			t.Fatalf("exit = %+v; want status 3 just now", ex)
		}
		c, ok := find(t, r, s.ID)
		if !ok || c.Status != StatusStopped || c.ExitStatus != 3 || c.ExitedAt.IsZero() {
			t.Fatalf("List: %+v, %v", c, ok)
		}
		// Waiting again after the exit still reports it.
		if ex2 := waitExit(t, r, s.ID, 10*time.Second); ex2.Status != 3 {
			t.Fatalf("second Wait = %+v", ex2)
		}
	})

	t.Run("reap", func(t *testing.T) {
		s := start(t, r, e, Spec{Args: []string{"/bin/sh", "-c", "seq 1 100000; echo last words; exit 3"}})
		if ex := waitExit(t, r, s.ID, 30*time.Second); ex.Status != 3 {
			t.Fatalf("exit = %+v; want status 3", ex)
		}
		if err := r.Reap(timeout(t, 30*time.Second), s.ID); err != nil {
			t.Fatal(err)
		}
		if last := TailLines(r.LogPath(s.ID), 2); !slices.Equal(last, []string{"100000", "last words"}) {
			t.Fatalf("after Reap the log ends with %q", last)
		}
		// The container stays, its task gone, until Stop; reaping again is
		// no error.
		if c, ok := find(t, r, s.ID); !ok || c.Status != StatusAbsent {
			t.Fatalf("List after Reap: %+v, %v; want the container without its task", c, ok)
		}
		if err := r.Reap(timeout(t, 10*time.Second), s.ID); err != nil {
			t.Fatalf("second Reap: %v", err)
		}
		if err := r.Stop(timeout(t, 30*time.Second), s.ID, time.Second); err != nil {
			t.Fatal(err)
		}
		assertGone(t, r, e, s.ID)
		if err := r.Reap(timeout(t, 10*time.Second), "i-never-started"); err != nil {
			t.Fatalf("Reap of a missing container: %v", err)
		}
	})

	t.Run("kill", func(t *testing.T) {
		s := start(t, r, e, Spec{Args: []string{"/bin/sleep", "300"}})
		ch, err := r.Wait(timeout(t, 30*time.Second), s.ID)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Kill(timeout(t, 10*time.Second), s.ID); err != nil {
			t.Fatal(err)
		}
		if ex := <-ch; ex.Err != nil || ex.Status != 128+uint32(syscall.SIGKILL) {
			t.Fatalf("exit after Kill = %+v; want 137", ex)
		}
		if err := r.Kill(timeout(t, 10*time.Second), "i-never-started"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Kill of a missing container = %v; want ErrNotFound", err)
		}
	})

	t.Run("stop", func(t *testing.T) {
		// A process that handles SIGTERM ends before the grace period.
		s := start(t, r, e, Spec{Args: []string{"/bin/sh", "-c",
			`trap 'echo got TERM; exit 0' TERM; echo ready; while true; do sleep 1; done`}})
		waitLog(t, r.LogPath(s.ID), "ready")
		began := time.Now()
		if err := r.Stop(timeout(t, 30*time.Second), s.ID, 20*time.Second); err != nil {
			t.Fatal(err)
		}
		if took := time.Since(began); took > 10*time.Second {
			t.Fatalf("Stop of a process handling SIGTERM took %s", took)
		}
		if !strings.Contains(readFile(t, r.LogPath(s.ID)), "got TERM") {
			t.Fatal("the process never saw SIGTERM")
		}
		assertGone(t, r, e, s.ID)
		// Idempotent.
		if err := r.Stop(timeout(t, 10*time.Second), s.ID, time.Second); err != nil {
			t.Fatalf("second Stop: %v", err)
		}
		if err := r.Stop(timeout(t, 10*time.Second), "i-never-started", time.Second); err != nil {
			t.Fatalf("Stop of a missing container: %v", err)
		}

		// PID 1 ignores SIGTERM without a handler: SIGKILL after grace.
		s2 := start(t, r, e, Spec{Args: []string{"/bin/sleep", "300"}})
		began = time.Now()
		if err := r.Stop(timeout(t, 30*time.Second), s2.ID, time.Second); err != nil {
			t.Fatal(err)
		}
		if took := time.Since(began); took < time.Second || took > 10*time.Second {
			t.Fatalf("Stop with a 1s grace took %s", took)
		}
		assertGone(t, r, e, s2.ID)

		// A container that already exited.
		s3 := start(t, r, e, Spec{Args: []string{"/bin/true"}})
		waitExit(t, r, s3.ID, 30*time.Second)
		if err := r.Stop(timeout(t, 30*time.Second), s3.ID, time.Second); err != nil {
			t.Fatal(err)
		}
		assertGone(t, r, e, s3.ID)
	})

	t.Run("adoption after an agent restart", func(t *testing.T) {
		r1 := newRuntime(t, e)
		labels := map[string]string{"driftless.instance": "web/0", "driftless.release": "r1"}
		s := start(t, r1, e, Spec{Labels: labels, Args: []string{"/bin/sh", "-c",
			`trap 'echo stopped by the new agent; exit 0' TERM; while true; do echo tick; sleep 0.2; done`}})
		waitLog(t, r1.LogPath(s.ID), "tick")
		if err := r1.Close(); err != nil { // the agent goes away
			t.Fatal(err)
		}
		before := strings.Count(readFile(t, r1.LogPath(s.ID)), "tick")

		r2 := newRuntime(t, e)
		c, ok := find(t, r2, s.ID)
		if !ok || c.Status != StatusRunning || c.Pid == 0 || c.Image != e.ref ||
			c.Labels["driftless.instance"] != "web/0" || c.Labels["driftless.release"] != "r1" {
			t.Fatalf("List after restart: %+v, %v", c, ok)
		}
		// The output still reaches the log with no agent attached.
		testenv.Eventually(t, 10*time.Second, 100*time.Millisecond, "log grows", func() error {
			if n := strings.Count(readFile(t, r2.LogPath(s.ID)), "tick"); n <= before {
				return fmt.Errorf("%d ticks, as before", n)
			}
			return nil
		})
		ch, err := r2.Wait(timeout(t, 30*time.Second), s.ID)
		if err != nil {
			t.Fatal(err)
		}
		if err := r2.Stop(timeout(t, 30*time.Second), s.ID, 10*time.Second); err != nil {
			t.Fatal(err)
		}
		if ex := <-ch; ex.Err != nil || ex.Status != 0 {
			t.Fatalf("exit seen by the new agent = %+v", ex)
		}
		if !strings.Contains(readFile(t, r2.LogPath(s.ID)), "stopped by the new agent") {
			t.Fatal("the adopted process never saw SIGTERM")
		}
		assertGone(t, r2, e, s.ID)
	})

	t.Run("logs", func(t *testing.T) {
		s := start(t, r, e, Spec{Args: []string{"/bin/sh", "-c",
			`echo to stderr >&2; i=1; while [ $i -le 100 ]; do echo "line $i"; i=$((i+1)); done; sleep 0.3`}})
		// The trailing sleep: containerd 1.6's shim copies stdout and stderr
		// to the log file in two goroutines and may drop what is still in a
		// pipe when a process exits within microseconds of writing it
		// ("error copying stderr" in containerd's log). Apps that crash at
		// once can lose their last line the same way; see docs/operations.md.
		waitExit(t, r, s.ID, 30*time.Second)
		var want []string
		for i := 96; i <= 100; i++ {
			want = append(want, fmt.Sprintf("line %d", i))
		}
		// stdout and stderr are copied to the log separately: the stderr
		// line may land anywhere.
		var got []string
		for _, l := range TailLines(r.LogPath(s.ID), 6) {
			if l != "to stderr" {
				got = append(got, l)
			}
		}
		if len(got) > 5 {
			got = got[len(got)-5:]
		}
		if strings.Join(got, "|") != strings.Join(want, "|") {
			t.Fatalf("TailLines = %q; want %q", got, want)
		}
		if !strings.Contains(readFile(t, r.LogPath(s.ID)), "to stderr\n") {
			t.Fatal("stderr is not in the log")
		}
		if err := r.Stop(timeout(t, 30*time.Second), s.ID, time.Second); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(r.LogPath(s.ID)); err != nil {
			t.Fatalf("Stop removed the log: %v", err)
		}
		if err := r.RemoveLog(s.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(r.LogPath(s.ID)); !os.IsNotExist(err) {
			t.Fatalf("log still there after RemoveLog: %v", err)
		}
	})

	t.Run("duplicate id", func(t *testing.T) {
		s := start(t, r, e, Spec{Args: []string{"/bin/sh", "-c", "echo first; exec sleep 300"}})
		waitLog(t, r.LogPath(s.ID), "first")
		again := s
		again.Args = []string{"/bin/true"}
		if err := r.Start(timeout(t, 30*time.Second), again); err == nil {
			t.Fatal("a second Start with the same id succeeded")
		}
		if c, ok := find(t, r, s.ID); !ok || c.Status != StatusRunning {
			t.Fatalf("the first container after a failed duplicate Start: %+v, %v", c, ok)
		}
		if !strings.Contains(readFile(t, r.LogPath(s.ID)), "first") {
			t.Fatal("a failed duplicate Start truncated the log")
		}
	})

	t.Run("refuses bad specs", func(t *testing.T) {
		cases := []struct {
			name string
			spec Spec
		}{
			{"root", Spec{ID: "i-root", Image: e.ref, MemoryMB: 64}},
			{"root group", Spec{ID: "i-rootgroup", Image: e.ref, UID: 2000, GID: 0, MemoryMB: 64}},
			{"no memory limit", Spec{ID: "i-nomem", Image: e.ref, UID: 2000, GID: 2000}},
			{"bad id", Spec{ID: "../x", Image: e.ref, UID: 2000, GID: 2000, MemoryMB: 64}},
			{"empty command", Spec{ID: "i-noargs", Image: e.ref, UID: 2000, GID: 2000, MemoryMB: 64, Args: []string{}}},
			{"image not pulled", Spec{ID: "i-noimg", Image: e.reg.host + "/nope@sha256:" + strings.Repeat("1", 64),
				UID: 2000, GID: 2000, MemoryMB: 64}},
			{"command not in image", Spec{ID: "i-nocmd", Image: e.ref, UID: 2000, GID: 2000, MemoryMB: 64,
				Args: []string{"/bin/no-such-command"}}},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				if err := r.Start(timeout(t, 30*time.Second), c.spec); err == nil {
					_ = r.Stop(timeout(t, 30*time.Second), c.spec.ID, time.Second)
					t.Fatal("Start succeeded")
				}
				if _, ok := find(t, r, c.spec.ID); ok {
					t.Fatal("a failed Start left its container behind")
				}
			})
		}
	})
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func waitLog(t *testing.T, path, s string) {
	t.Helper()
	testenv.Eventually(t, 15*time.Second, 100*time.Millisecond, "log shows "+s, func() error {
		if b, _ := os.ReadFile(path); !strings.Contains(string(b), s) {
			return fmt.Errorf("log: %q", b)
		}
		return nil
	})
}

// assertGone checks that container id, its task and its snapshot are gone.
func assertGone(t *testing.T, r *Runtime, e *env, id string) {
	t.Helper()
	if c, ok := find(t, r, id); ok {
		t.Fatalf("container still listed: %+v", c)
	}
	ctx := namespaces.WithNamespace(timeout(t, 10*time.Second), r.Config().Namespace)
	_, err := e.ctrd.Client.SnapshotService(r.Config().Snapshotter).Stat(ctx, id)
	if !errdefs.IsNotFound(err) {
		t.Fatalf("snapshot %s: %v; want not found", id, err)
	}
}
