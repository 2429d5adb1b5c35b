package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/driftless/driftless/agents/network"
	"github.com/driftless/driftless/internal/children"
	"github.com/driftless/driftless/internal/testenv"
)

// A dev stopped, by Ctrl-C or killed hard, leaves its apps running
// (their shims outlive it); `driftless dev --down` stops them and
// removes everything of the platform from the host — and nothing of
// another platform's network — refuses while dev runs, and finds nothing
// to stop the second time. Given only --data it finds dev's containerd
// socket, bridge and subnet where dev recorded them.
func TestDevDown(t *testing.T) {
	tests := []struct {
		name string
		stop syscall.Signal
		// allFlags gives --down every flag dev ran with, else --data only.
		allFlags bool
		extra    []string
	}{
		{"killed, the flags dev ran with", syscall.SIGKILL, true, nil},
		{"Ctrl-C, --data only", syscall.SIGINT, false, nil},
		{"killed with PostgreSQL, --data only", syscall.SIGKILL, false, []string{"--postgres"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { testDevDown(t, tt.stop, tt.allFlags, tt.extra...) })
	}
}

func testDevDown(t *testing.T, stop syscall.Signal, allFlags bool, extra ...string) {
	p := startDev(t, extra...)
	down := func() (string, error) { return p.down(allFlags) }
	other := startOtherNetwork(t, p.subnet)
	otherFilter, otherNAT := other.rules(t)

	p.write(map[string]string{"apps/hello/manifest.yml": helloManifest(2, "Hello")})
	p.addHello("apps/hello")
	p.commitAll("hello, twice")
	if _, err := p.client.Sync(context.Background(), false, 0); err != nil {
		t.Fatal(err)
	}
	p.waitServing(t, 120*time.Second, 2, greetingIs("Hello"))

	// While dev runs, --down refuses and touches nothing.
	out, err := down()
	if err == nil || !strings.Contains(out, fmt.Sprintf("dev is running on %s (pid %d)", filepath.Join(p.dir, "data"), p.cmd.Process.Pid)) {
		t.Fatalf("dev --down while dev runs: %v\n%s\nwant a refusal naming dev's pid %d", err, out, p.cmd.Process.Pid)
	}
	if allFlags {
		// So does a second dev on the same data folder.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		second := exec.CommandContext(ctx, driftlessBin, p.cmd.Args[1:]...)
		second.Env = append(os.Environ(), "XDG_CONFIG_HOME="+filepath.Join(p.dir, "xdg2"))
		b, err := second.CombinedOutput()
		cancel()
		if err == nil || !strings.Contains(string(b), fmt.Sprintf("dev is running on %s (pid %d)", filepath.Join(p.dir, "data"), p.cmd.Process.Pid)) {
			t.Fatalf("a second dev on the data folder: %v\n%s\nwant a refusal naming the first's pid", err, b)
		}
	}
	if _, err := p.sample("hello.apps.localhost", 2); err != nil {
		t.Fatalf("hello after a refused --down: %v", err)
	}

	// Killed hard, dev has no chance to clean anything: its children
	// (Consul, containerd) die with it. Stopped by Ctrl-C it stops them.
	// The containers' shims outlive it either way.
	if stop == syscall.SIGKILL {
		_ = syscall.Kill(p.cmd.Process.Pid, syscall.SIGKILL)
		_ = p.cmd.Wait()
	} else if !p.interrupt() {
		t.Fatal("dev did not stop within 40 s of SIGINT")
	}
	records, _ := filepath.Glob(filepath.Join(p.dir, "data", "agent", "network", "attachments", "*.json"))
	if len(records) != 2 {
		t.Fatalf("network attachments after dev was killed: %v, want hello's 2", records)
	}
	testenv.Eventually(t, 30*time.Second, 200*time.Millisecond, "dev's containerd is gone, hello's shims run", func() error {
		if children.ContainerdAnswers(context.Background(), p.sock) {
			return fmt.Errorf("containerd still answers on %s", p.sock)
		}
		if n := len(shimsOf(p.sock)); n != 2 {
			return fmt.Errorf("%d shims of dev's containerd, want hello's 2", n)
		}
		return nil
	})
	netnses := netnsOf(t, records)

	out, err = down()
	if err != nil {
		t.Fatalf("dev --down: %v\n%s", err, out)
	}
	t.Logf("dev --down said:\n%s", out)
	for _, want := range []string{"2 running app instance(s) stopped", "2 container(s) removed", "2 network attachment(s) removed",
		"filter rule(s) of the walls removed", "bridge " + p.bridge + " deleted"} {
		if !strings.Contains(out, want) {
			t.Errorf("dev --down said:\n%s\nwant %q in it", out, want)
		}
	}
	p.checkNothingLeft()
	if shims := shimsOf(p.sock); len(shims) > 0 {
		t.Errorf("shims left after --down: %v", shims)
	}
	if err := exec.Command("ip", "link", "show", p.bridge).Run(); err == nil {
		t.Errorf("bridge %s left after --down", p.bridge)
	}
	if _, err := os.Stat(filepath.Join(network.DefaultIPAMDir, p.bridge)); err == nil {
		t.Errorf("address allocations folder of bridge %s left after --down", p.bridge)
	}
	for _, ns := range netnses {
		if _, err := os.Lstat(ns); err == nil {
			t.Errorf("network namespace %s left after --down", ns)
		}
	}
	for _, keep := range []string{"repo/.git", "data/blobs", "data/admin.token"} {
		if _, err := os.Stat(filepath.Join(p.dir, keep)); err != nil {
			t.Errorf("--down removed what it keeps: %v", err)
		}
	}

	// The other platform's network is whole.
	filter, nat := other.rules(t)
	if !slices.Equal(filter, otherFilter) || !slices.Equal(nat, otherNAT) {
		t.Errorf("another platform's rules changed by --down:\nfilter %q\nwas    %q\nNAT %q\nwas %q", filter, otherFilter, nat, otherNAT)
	}
	if _, ok := other.nw.Lookup("other-1"); !ok {
		t.Error("another platform's attachment removed by --down")
	}

	// Idempotent.
	out, err = down()
	t.Logf("dev --down again said:\n%s", out)
	if err != nil || !strings.Contains(out, "nothing to stop") {
		t.Errorf("dev --down again: %v\n%s\nwant \"nothing to stop\"", err, out)
	}
	p.checkNothingLeft()
}

// down runs `driftless dev --down`, with the flags dev ran with
// (allFlags) or only its --data, and returns its output (stdout and
// stderr).
func (p *platform) down(allFlags bool) (string, error) {
	args := []string{"dev", "--down", "--data", filepath.Join(p.dir, "data")}
	if allFlags {
		args = append(slices.Clone(p.cmd.Args[1:]), "--down")
	}
	cmd := exec.Command(driftlessBin, args...)
	cmd.Env = append(os.Environ(), "XDG_CONFIG_HOME="+p.xdg)
	b, err := cmd.CombinedOutput()
	return string(b), err
}

// shimsOf lists the command lines of the containerd shims of the
// containerd at sock.
func shimsOf(sock string) []string {
	out, _ := exec.Command("pgrep", "-a", "-f", "containerd-shim.*-address "+sock).Output()
	var shims []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if line != "" {
			shims = append(shims, line)
		}
	}
	return shims
}

// netnsOf reads the network namespaces of attachment records.
func netnsOf(t *testing.T, records []string) []string {
	t.Helper()
	var out []string
	for _, r := range records {
		data, err := os.ReadFile(r)
		if err != nil {
			t.Fatal(err)
		}
		_, rest, ok := strings.Cut(string(data), `"netns_path":"`)
		path, _, _ := strings.Cut(rest, `"`)
		if !ok || path == "" {
			t.Fatalf("attachment record %s: no netns_path: %s", r, data)
		}
		if _, err := os.Lstat(path); err != nil {
			t.Fatalf("namespace of a running instance: %v", err)
		}
		out = append(out, path)
	}
	return out
}

// otherNetwork is another platform's network on the host: its bridge,
// walls, and one attachment with a host port.
type otherNetwork struct{ nw *network.Network }

// startOtherNetwork puts up a network like an agent's, on a subnet other
// than avoid, removed with the test.
func startOtherNetwork(t *testing.T, avoid string) otherNetwork {
	t.Helper()
	subnet := randomSubnet()
	for first2(subnet) == first2(avoid) {
		subnet = randomSubnet()
	}
	bridge := fmt.Sprintf("dlo%04x", rand.IntN(1<<16))
	nw, err := network.New(network.Config{Name: "dl-other", Bridge: bridge, Subnet: subnet, HostIP: "127.0.0.1",
		StateDir: filepath.Join(t.TempDir(), "network")})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	t.Cleanup(func() {
		if err := nw.Detach(ctx, "other-1", 0, 0); err != nil {
			t.Error(err)
		}
		if err := nw.RemoveWalls(ctx); err != nil {
			t.Error(err)
		}
		if _, err := nw.RemoveBridge(ctx); err != nil {
			t.Error(err)
		}
		_ = os.RemoveAll(filepath.Join(network.DefaultIPAMDir, bridge))
	})
	if err := nw.EnsureWalls(ctx); err != nil {
		t.Fatal(err)
	}
	port, err := children.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := nw.Attach(ctx, "other-1", port, 8080); err != nil {
		t.Fatal(err)
	}
	return otherNetwork{nw}
}

// rules lists the network's filter and NAT rules.
func (o otherNetwork) rules(t *testing.T) (filter, nat []string) {
	t.Helper()
	filter, err := o.nw.FilterRules(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if nat, err = o.nw.NATRules(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(filter) == 0 || len(nat) == 0 {
		t.Fatalf("another platform's network has %d filter and %d NAT rules, want some of each", len(filter), len(nat))
	}
	slices.Sort(filter)
	slices.Sort(nat)
	return filter, nat
}
