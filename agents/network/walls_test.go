package network

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/driftless/driftless/internal/testenv"
)

// wallRules lists the host's filter rules (IPv4 and IPv6) that belong to
// bridge's walls: those entering them and those of its chain.
func wallRules(t *testing.T, bridge string) []string {
	t.Helper()
	var rules []string
	for _, tool := range []string{"iptables", "ip6tables"} {
		out, err := exec.Command(tool, "-w", "5", "-S").Output()
		if err != nil {
			t.Fatalf("%s -S: %v", tool, err)
		}
		for _, l := range strings.Split(string(out), "\n") {
			if strings.Contains(l, wallComment(bridge)) || strings.Contains(l, inChain(bridge)) ||
				strings.Contains(l, policyComment(bridge)) || strings.Contains(l, policyChain(bridge)) {
				rules = append(rules, tool+" "+l)
			}
		}
	}
	return rules
}

// TestWallsUpAndDown puts a bridge's walls up twice (one copy of each
// rule, the policy chain entered before the drop), and takes them down
// (nothing left, twice without error).
func TestWallsUpAndDown(t *testing.T) {
	testenv.RequireRoot(t)
	n, err := New(Config{Name: "dltest-walls", Bridge: "dltw0", Subnet: "10.237.0.0/24",
		StateDir: t.TempDir(), IPAMDir: t.TempDir(), HostServicePorts: []int{5432}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	t.Cleanup(func() { _ = n.RemoveWalls(context.Background()) })
	for range 2 {
		if err := n.EnsureWalls(ctx); err != nil {
			t.Fatal(err)
		}
	}
	got := wallRules(t, "dltw0")
	want := []string{
		"iptables -N DLW-IN-dltw0",
		"iptables -N DLW-NP-dltw0",
		`iptables -A INPUT -i dltw0 -m comment --comment "driftless walls dltw0" -j DLW-IN-dltw0`,
		`iptables -A FORWARD -i dltw0 -o dltw0 -m comment --comment "driftless policies dltw0" -j DLW-NP-dltw0`,
		`iptables -A FORWARD -i dltw0 -o dltw0 -m comment --comment "driftless walls dltw0" -j DROP`,
		"iptables -A DLW-IN-dltw0 ! -s 127.0.0.0/8 -d 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP",
		"iptables -A DLW-IN-dltw0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
		"iptables -A DLW-IN-dltw0 -d 10.237.0.1/32 -p tcp -m tcp --dport 5432 -j ACCEPT",
		"iptables -A DLW-IN-dltw0 -j DROP",
		"iptables -A DLW-NP-dltw0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
		"ip6tables -N DLW-IN-dltw0",
		`ip6tables -A INPUT -i dltw0 -m comment --comment "driftless walls dltw0" -j DLW-IN-dltw0`,
		`ip6tables -A FORWARD -i dltw0 -o dltw0 -m comment --comment "driftless walls dltw0" -j DROP`,
		"ip6tables -A DLW-IN-dltw0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
		"ip6tables -A DLW-IN-dltw0 -j DROP",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("walls:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for range 2 {
		if err := n.RemoveWalls(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if left := wallRules(t, "dltw0"); len(left) > 0 {
		t.Errorf("rules left after RemoveWalls:\n%s", strings.Join(left, "\n"))
	}
}

// TestBridgeIdle: a bridge that does not exist, or has no interface, is
// idle; one with an interface attached is not.
func TestBridgeIdle(t *testing.T) {
	testenv.RequireRoot(t)
	n, err := New(Config{Name: "dltest-idle", Bridge: "dlti0", Subnet: "10.238.0.0/24", StateDir: t.TempDir(), IPAMDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	_ = exec.Command("ip", "link", "del", "dlti0").Run()
	_ = exec.Command("ip", "link", "del", "dlti0v").Run()
	t.Cleanup(func() {
		_ = exec.Command("ip", "link", "del", "dlti0v").Run()
		_ = exec.Command("ip", "link", "del", "dlti0").Run()
	})
	idle := func(want bool, when string) {
		t.Helper()
		if got, err := n.BridgeIdle(); err != nil || got != want {
			t.Fatalf("BridgeIdle %s: %v, %v; want %v", when, got, err, want)
		}
	}
	ip := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v: %s", args, err, out)
		}
	}
	idle(true, "with no bridge")
	ip("link", "add", "dlti0", "type", "bridge")
	idle(true, "with an empty bridge")
	ip("link", "add", "dlti0v", "type", "veth", "peer", "name", "dlti0p")
	ip("link", "set", "dlti0v", "master", "dlti0")
	idle(false, "with a veth on the bridge")
}
