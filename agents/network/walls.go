package network

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// The walls are filter rules that keep instances off the host and off each
// other (issue 16). Each bridge has its chains, filled atomically by
// iptables-restore and entered by one rule in INPUT or FORWARD that
// carries the comment wallComment(bridge):
//
//	-I INPUT 1 -i BR -j DLW-IN-BR          (iptables and ip6tables)
//	-A DLW-IN-BR ! -s 127.0.0.0/8 -d 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP
//	-A DLW-IN-BR -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
//	-A DLW-IN-BR -d GATEWAY -p tcp --dport PORT -j ACCEPT   (each Config.HostServicePorts)
//	-A DLW-IN-BR -j DROP
//	-I FORWARD 1 -i BR -o BR -j DROP       (iptables and ip6tables)
//	-I FORWARD 1 -i BR -o BR -j DLW-NP-BR  (iptables; network policies: policies.go)
//
// The first rule drops martian loopback traffic: the portmap plugin sets
// route_localnet=1 on the bridge (for host ports on 127.0.0.1), so the
// host would otherwise take a packet from an instance to 127.0.0.1 as its
// own and hand it to a service listening on loopback only. Replies of
// connections the host opened to a host port on 127.0.0.1 come back
// un-NATed to 127.0.0.1 and are ESTABLISHED (as kube-proxy's rule for
// CVE-2020-8558). The rest accepts, of new connections from instances to
// the host itself, only those to the host services named, on the gateway
// address. The FORWARD rule drops traffic from one instance to another
// (bridged frames go through iptables with br_netfilter, which EnsureWalls
// loads): the router (from the host) and host-port mappings (from outside
// the bridge) still reach every instance, and instances still reach the
// world beyond the host. Network policies accept, before that drop, the
// connections they allow between instances of the bridge.

// wallComment marks the rules that enter a bridge's walls.
func wallComment(bridge string) string { return "driftless walls " + bridge }

func inChain(bridge string) string { return "DLW-IN-" + bridge }

// EnsureWalls puts up (or refreshes) the walls of the network's bridge;
// see the package's walls.go. The bridge need not exist yet. It loads
// br_netfilter and sets net.bridge.bridge-nf-call-iptables (and -ip6tables)
// to 1 if they are not, as the FORWARD rule needs.
func (n *Network) EnsureWalls(ctx context.Context) error {
	if err := bridgeNetfilter(ctx); err != nil {
		return fmt.Errorf("walls of bridge %s: %w", n.cfg.Bridge, err)
	}
	gw, _, err := Gateway(n.cfg.Subnet)
	if err != nil {
		return fmt.Errorf("walls of bridge %s: %w", n.cfg.Bridge, err)
	}
	br, chain, comment := n.cfg.Bridge, inChain(n.cfg.Bridge), wallComment(n.cfg.Bridge)
	for _, v6 := range families() {
		rules := []string{"*filter", ":" + chain + " - [0:0]"}
		if !v6 {
			rules = append(rules,
				"-A "+chain+" ! -s 127.0.0.0/8 -d 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP")
		}
		rules = append(rules, "-A "+chain+" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT")
		if !v6 {
			for _, p := range n.cfg.HostServicePorts {
				rules = append(rules, fmt.Sprintf("-A %s -d %s/32 -p tcp -m tcp --dport %d -j ACCEPT", chain, gw, p))
			}
		}
		rules = append(rules, "-A "+chain+" -j DROP", "COMMIT", "")
		if err := xtables(ctx, v6, strings.Join(rules, "\n"), "-restore", "-w", "5", "--noflush"); err != nil {
			return fmt.Errorf("walls of bridge %s: %w", br, err)
		}
		for _, jump := range [][]string{
			{"INPUT", "-i", br, "-m", "comment", "--comment", comment, "-j", chain},
			{"FORWARD", "-i", br, "-o", br, "-m", "comment", "--comment", comment, "-j", "DROP"},
		} {
			if xtables(ctx, v6, "", append([]string{"-w", "5", "-C"}, jump...)...) == nil {
				continue
			}
			if err := xtables(ctx, v6, "", append([]string{"-w", "5", "-I", jump[0], "1"}, jump[1:]...)...); err != nil {
				return fmt.Errorf("walls of bridge %s: %w", br, err)
			}
		}
	}
	if err := n.ensurePolicyChain(ctx); err != nil {
		return fmt.Errorf("walls of bridge %s: %w", br, err)
	}
	slog.Debug("walls up", "bridge", br, "host_service_ports", n.cfg.HostServicePorts)
	return nil
}

// RemoveWalls takes the walls of the network's bridge down: the rules
// that enter them (every copy) and their chains. Removing walls that are
// not there is not an error.
func (n *Network) RemoveWalls(ctx context.Context) error {
	br, chain, comment := n.cfg.Bridge, inChain(n.cfg.Bridge), wallComment(n.cfg.Bridge)
	if err := n.removePolicyChain(ctx); err != nil {
		return fmt.Errorf("taking down the network policies of bridge %s: %w", br, err)
	}
	for _, v6 := range families() {
		for _, jump := range [][]string{
			{"INPUT", "-i", br, "-m", "comment", "--comment", comment, "-j", chain},
			{"FORWARD", "-i", br, "-o", br, "-m", "comment", "--comment", comment, "-j", "DROP"},
		} {
			for i := 0; i < 10 && xtables(ctx, v6, "", append([]string{"-w", "5", "-C"}, jump...)...) == nil; i++ {
				if err := xtables(ctx, v6, "", append([]string{"-w", "5", "-D"}, jump...)...); err != nil {
					return fmt.Errorf("taking down the walls of bridge %s: %w", br, err)
				}
			}
		}
		if xtables(ctx, v6, "", "-w", "5", "-n", "-L", chain) == nil {
			if err := xtables(ctx, v6, "", "-w", "5", "-F", chain); err != nil {
				return fmt.Errorf("taking down the walls of bridge %s: %w", br, err)
			}
			if err := xtables(ctx, v6, "", "-w", "5", "-X", chain); err != nil {
				return fmt.Errorf("taking down the walls of bridge %s: %w", br, err)
			}
		}
	}
	slog.Debug("walls down", "bridge", br)
	return nil
}

// BridgeIdle reports whether no interface (no instance of any agent) is
// attached to the network's bridge, or the bridge does not exist: then its
// walls may come down.
func (n *Network) BridgeIdle() (bool, error) {
	ports, err := os.ReadDir(filepath.Join("/sys/class/net", n.cfg.Bridge, "brif"))
	if errors.Is(err, fs.ErrNotExist) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("listing the interfaces on bridge %s: %w", n.cfg.Bridge, err)
	}
	return len(ports) == 0, nil
}

// families are the address families to wall: false for IPv4, true for
// IPv6 unless the kernel has IPv6 turned off (ipv6.disable=1).
func families() []bool {
	if _, err := os.Stat("/proc/sys/net/ipv6"); err != nil {
		return []bool{false}
	}
	return []bool{false, true}
}

// xtables runs iptables (ip6tables if v6; with suffix "-restore", that
// tool with stdin as its input) with args on the filter table.
func xtables(ctx context.Context, v6 bool, stdin string, args ...string) error {
	name := "iptables"
	if v6 {
		name = "ip6tables"
	}
	if len(args) > 0 && args[0] == "-restore" {
		name, args = name+"-restore", args[1:]
	}
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		var exit *exec.ExitError
		if !errors.As(err, &exit) {
			return fmt.Errorf("%s (install iptables): %w", name, err)
		}
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// bridgeNetfilter makes bridged IPv4 and IPv6 traffic go through
// iptables: loads br_netfilter if it is not, and turns the sysctls on.
func bridgeNetfilter(ctx context.Context) error {
	const dir = "/proc/sys/net/bridge/"
	if _, err := os.Stat(dir + "bridge-nf-call-iptables"); err != nil {
		if out, err := exec.CommandContext(ctx, "modprobe", "br_netfilter").CombinedOutput(); err != nil {
			return fmt.Errorf("loading br_netfilter (needed to keep instances apart): %w: %s", err, strings.TrimSpace(string(out)))
		}
	}
	for _, name := range []string{"bridge-nf-call-iptables", "bridge-nf-call-ip6tables"} {
		b, err := os.ReadFile(dir + name)
		if err != nil {
			return fmt.Errorf("reading net.bridge.%s: %w", name, err)
		}
		if v, _ := strconv.Atoi(strings.TrimSpace(string(b))); v == 1 {
			continue
		}
		slog.Info("turning on net.bridge."+name+": instances on a bridge are kept apart by iptables", "was", strings.TrimSpace(string(b)))
		if err := os.WriteFile(dir+name, []byte("1\n"), 0o644); err != nil {
			return fmt.Errorf("setting net.bridge.%s=1: %w", name, err)
		}
	}
	return nil
}
