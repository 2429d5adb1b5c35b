package network

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// What a network leaves on the host besides its attachments (which Detach
// removes): the bridge, and the filter rules of its walls and network
// policies. Taking a stopped platform down (`driftless dev --down`)
// removes them too, and only those of the network's own bridge and
// subnet: other platforms on the host have theirs.

// OwnFilterRules picks, from `iptables -S` (or ip6tables) output, the
// rules of the walls and network policies of bridge: the rules that enter
// them (by their comment) and those of their chains, chain declarations
// included. Rules of another bridge, even one whose name begins with
// bridge's, are not picked.
func OwnFilterRules(rules, bridge string) []string {
	chains := map[string]bool{inChain(bridge): true, policyChain(bridge): true}
	comments := []string{`"` + wallComment(bridge) + `"`, `"` + policyComment(bridge) + `"`}
	var out []string
	for _, line := range strings.Split(rules, "\n") {
		line = strings.TrimSpace(line)
		fields := strings.Fields(line)
		if len(fields) < 2 {
			continue
		}
		mine := (fields[0] == "-N" || fields[0] == "-A") && chains[fields[1]]
		for i, f := range fields {
			if i > 0 && fields[i-1] == "-j" && chains[f] {
				mine = true
			}
		}
		for _, c := range comments {
			if strings.Contains(line, "--comment "+c) {
				mine = true
			}
		}
		if mine {
			out = append(out, line)
		}
	}
	return out
}

// FilterRules lists the host's filter rules (IPv4 and IPv6) of the walls
// and network policies of the network's bridge, each prefixed with the
// tool that lists it.
func (n *Network) FilterRules(ctx context.Context) ([]string, error) {
	var out []string
	for _, v6 := range families() {
		name := "iptables"
		if v6 {
			name = "ip6tables"
		}
		b, err := exec.CommandContext(ctx, name, "-w", "5", "-S").Output()
		if err != nil {
			return nil, fmt.Errorf("listing the filter rules of bridge %s: %s: %w", n.cfg.Bridge, name, err)
		}
		for _, r := range OwnFilterRules(string(b), n.cfg.Bridge) {
			out = append(out, name+" "+r)
		}
	}
	return out, nil
}

// NATRulesOf picks, from `iptables -t nat -S` output, the rules that name
// an address of subnet (a port mapping's destination, a masquerade rule's
// source): those of the instances of a network on that subnet.
func NATRulesOf(rules, subnet string) []string {
	_, want, err := net.ParseCIDR(subnet)
	if err != nil {
		return nil
	}
	var out []string
	for _, line := range strings.Split(rules, "\n") {
		for _, f := range strings.Fields(line) {
			if mentions(f, want) {
				out = append(out, strings.TrimSpace(line))
				break
			}
		}
	}
	return out
}

// mentions reports whether an iptables argument (an address, a network,
// or an address:port) is in subnet.
func mentions(arg string, subnet *net.IPNet) bool {
	arg = strings.TrimPrefix(arg, "!")
	if host, _, err := net.SplitHostPort(arg); err == nil {
		arg = host
	}
	if ip, _, err := net.ParseCIDR(arg); err == nil {
		return subnet.Contains(ip)
	}
	ip := net.ParseIP(arg)
	return ip != nil && ip.To4() != nil && subnet.Contains(ip)
}

// NATRules lists the host's NAT rules that name an address of the
// network's subnet.
func (n *Network) NATRules(ctx context.Context) ([]string, error) {
	out, err := natTable(ctx, "-S")
	if err != nil {
		return nil, fmt.Errorf("listing the NAT rules of subnet %s: %w", n.cfg.Subnet, err)
	}
	return NATRulesOf(out, n.cfg.Subnet), nil
}

// RemoveBridge deletes the network's bridge if it exists and no interface
// is attached to it, and then the bridge's address allocation folder
// (under IPAMDir) if no network holds an address in it. It reports
// whether it deleted the bridge; a bridge still in use (by another
// agent's instances) is left, and is no error.
func (n *Network) RemoveBridge(ctx context.Context) (bool, error) {
	deleted := false
	if _, err := os.Stat(filepath.Join("/sys/class/net", n.cfg.Bridge, "bridge")); err == nil {
		idle, err := n.BridgeIdle()
		if err != nil || !idle {
			return false, err
		}
		if out, err := exec.CommandContext(ctx, "ip", "link", "del", n.cfg.Bridge).CombinedOutput(); err != nil {
			return false, fmt.Errorf("deleting bridge %s: %w: %s", n.cfg.Bridge, err, strings.TrimSpace(string(out)))
		}
		deleted = true
	} else if !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("looking for bridge %s: %w", n.cfg.Bridge, err)
	}
	dir := ipamDir(n.cfg)
	nets, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return deleted, nil
	}
	if err != nil {
		return deleted, fmt.Errorf("listing the address allocations of bridge %s: %w", n.cfg.Bridge, err)
	}
	for _, e := range nets {
		if !e.IsDir() {
			continue
		}
		ips, err := allocations(filepath.Join(dir, e.Name()))
		if err != nil || len(ips) > 0 {
			return deleted, err // held by another network on the bridge
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		return deleted, fmt.Errorf("removing the address allocations folder of bridge %s: %w", n.cfg.Bridge, err)
	}
	return deleted, nil
}
