package network

import (
	"context"
	"errors"
	"net"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"

	"github.com/driftless/driftless/internal/testenv"
	"github.com/driftless/driftless/model"
)

func TestPolicyRestore(t *testing.T) {
	tcp := PolicyRule{Source: "10.0.0.2", Destination: "10.0.0.3", Protocol: "tcp", Ports: model.PortRange{Start: 8080, End: 8080}}
	udp := PolicyRule{Source: "10.0.0.4", Destination: "10.0.0.3", Protocol: "udp", Ports: model.PortRange{Start: 9000, End: 9100}}
	head := "*filter\n:DLW-NP-br0 - [0:0]\n-A DLW-NP-br0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n"
	tests := []struct {
		name    string
		rules   []PolicyRule
		want    string
		wantErr string
	}{
		{name: "none", want: head + "COMMIT\n"},
		{name: "a port and a range", rules: []PolicyRule{tcp, udp}, want: head +
			"-A DLW-NP-br0 -s 10.0.0.2/32 -d 10.0.0.3/32 -p tcp -m tcp --dport 8080 -j ACCEPT\n" +
			"-A DLW-NP-br0 -s 10.0.0.4/32 -d 10.0.0.3/32 -p udp -m udp --dport 9000:9100 -j ACCEPT\nCOMMIT\n"},
		{name: "not an address", rules: []PolicyRule{{Source: "10.0.0.2 -j DROP", Destination: "10.0.0.3", Protocol: "tcp", Ports: tcp.Ports}},
			wantErr: "is not an IPv4 address"},
		{name: "IPv6", rules: []PolicyRule{{Source: "::1", Destination: "10.0.0.3", Protocol: "tcp", Ports: tcp.Ports}},
			wantErr: "is not an IPv4 address"},
		{name: "bad protocol", rules: []PolicyRule{{Source: "10.0.0.2", Destination: "10.0.0.3", Protocol: "icmp", Ports: tcp.Ports}},
			wantErr: "is not tcp or udp"},
		{name: "bad ports", rules: []PolicyRule{{Source: "10.0.0.2", Destination: "10.0.0.3", Protocol: "tcp"}},
			wantErr: "bad ports"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := policyRestore("br0", tt.rules)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

// TestPolicyRulesBetweenNamespaces puts two network namespaces the test
// makes on a walled bridge and dials between them: walled off, then one
// rule lets a reach b on one port only and one way, a range opens both
// ports, EnsureWalls again (an agent restart) keeps the rules, no rules
// wall them off again, and RemoveWalls leaves nothing.
func TestPolicyRulesBetweenNamespaces(t *testing.T) {
	testenv.RequireRoot(t)
	const br, subnet = "dltp0", "172.30.229.0/24"
	nw, err := New(Config{Name: "dltest-policies", Bridge: br, Subnet: subnet, StateDir: t.TempDir(), IPAMDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	nsA, nsB := "dltp-a", "dltp-b"
	cleanup := func() {
		_ = nw.RemoveWalls(context.Background())
		for _, n := range []string{nsA, nsB} {
			_ = exec.Command("ip", "netns", "del", n).Run()
		}
		_ = exec.Command("ip", "link", "del", br).Run()
	}
	cleanup()
	t.Cleanup(cleanup)
	run(t, "ip", "link", "add", br, "type", "bridge")
	run(t, "ip", "addr", "add", "172.30.229.1/24", "dev", br)
	run(t, "ip", "link", "set", br, "up")
	for i, n := range []string{nsA, nsB} {
		host, peer := br+"h"+string(rune('a'+i)), br+"c"+string(rune('a'+i))
		run(t, "ip", "netns", "add", n)
		run(t, "ip", "link", "add", host, "type", "veth", "peer", "name", peer)
		run(t, "ip", "link", "set", peer, "netns", n)
		run(t, "ip", "link", "set", host, "master", br, "up")
		run(t, "ip", "-n", n, "addr", "add", "172.30.229."+string(rune('2'+i))+"/24", "dev", peer)
		run(t, "ip", "-n", n, "link", "set", peer, "up")
		run(t, "ip", "-n", n, "link", "set", "lo", "up")
	}
	ipA, ipB := "172.30.229.2", "172.30.229.3"
	if err := nw.EnsureWalls(ctx); err != nil {
		t.Fatal(err)
	}
	// Listeners: b on 8080 and 8081, a on 8080.
	listen := func(netns, addr string) {
		t.Helper()
		err := ns.WithNetNSPath("/var/run/netns/"+netns, func(ns.NetNS) error {
			ln, err := net.Listen("tcp4", addr)
			if err != nil {
				return err
			}
			t.Cleanup(func() { ln.Close() })
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					c.Close()
				}
			}()
			return nil
		})
		if err != nil {
			t.Fatalf("listening on %s in %s: %v", addr, netns, err)
		}
	}
	listen(nsB, ipB+":8080")
	listen(nsB, ipB+":8081")
	listen(nsA, ipA+":8080")
	dial := func(netns, addr string) string {
		var got string
		err := ns.WithNetNSPath("/var/run/netns/"+netns, func(ns.NetNS) error {
			c, err := net.DialTimeout("tcp4", addr, 1500*time.Millisecond)
			var nerr net.Error
			switch {
			case err == nil:
				c.Close()
				got = "connected"
			case errors.As(err, &nerr) && nerr.Timeout():
				got = "timeout"
			default:
				got = err.Error()
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	check := func(when string, want map[string]string) {
		t.Helper()
		for _, k := range slices.Sorted(func(yield func(string) bool) {
			for k := range want {
				if !yield(k) {
					return
				}
			}
		}) {
			from, addr, _ := strings.Cut(k, " ")
			if got := dial(from, addr); got != want[k] {
				t.Errorf("%s: %s → %s: %s; want %s", when, from, addr, got, want[k])
			}
		}
	}
	aToB8080, aToB8081, bToA := nsA+" "+ipB+":8080", nsA+" "+ipB+":8081", nsB+" "+ipA+":8080"
	check("walled", map[string]string{aToB8080: "timeout", aToB8081: "timeout", bToA: "timeout"})

	set := func(rules ...PolicyRule) {
		t.Helper()
		if err := nw.SetPolicyRules(ctx, rules); err != nil {
			t.Fatal(err)
		}
	}
	set(PolicyRule{Source: ipA, Destination: ipB, Protocol: "tcp", Ports: model.PortRange{Start: 8080, End: 8080}})
	check("a → b tcp 8080", map[string]string{aToB8080: "connected", aToB8081: "timeout", bToA: "timeout"})
	set(PolicyRule{Source: ipA, Destination: ipB, Protocol: "tcp", Ports: model.PortRange{Start: 8080, End: 8081}})
	check("a → b tcp 8080-8081", map[string]string{aToB8080: "connected", aToB8081: "connected", bToA: "timeout"})
	if err := nw.EnsureWalls(ctx); err != nil {
		t.Fatal(err)
	}
	check("walls ensured again", map[string]string{aToB8080: "connected", aToB8081: "connected", bToA: "timeout"})
	set(PolicyRule{Source: ipA, Destination: ipB, Protocol: "udp", Ports: model.PortRange{Start: 8080, End: 8080}})
	check("a → b udp 8080 only", map[string]string{aToB8080: "timeout", bToA: "timeout"})
	set()
	check("no rules", map[string]string{aToB8080: "timeout", aToB8081: "timeout", bToA: "timeout"})

	if err := nw.RemoveWalls(ctx); err != nil {
		t.Fatal(err)
	}
	out := run(t, "iptables", "-w", "5", "-S")
	if strings.Contains(out, policyChain(br)) || strings.Contains(out, policyComment(br)) {
		t.Errorf("policy rules left after RemoveWalls:\n%s", out)
	}
}
