package network

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"

	"github.com/driftless/driftless/model"
)

// Network policies (container to container, network-policies.yml) open
// holes in the walls' FORWARD drop for instances on the same bridge. Each
// bridge has one more chain, entered before the drop by a rule carrying
// the comment policyComment(bridge), IPv4 only (instances have IPv4
// addresses on the bridge):
//
//	-I FORWARD 1 -i BR -o BR -j DLW-NP-BR
//	-A DLW-NP-BR -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
//	-A DLW-NP-BR -s SRC/32 -d DST/32 -p tcp -m tcp --dport 8080 -j ACCEPT   (each PolicyRule)
//
// Traffic the chain does not accept returns to FORWARD and meets the
// drop. SetPolicyRules rewrites the chain at once (iptables-restore).

// policyComment marks the rule that enters a bridge's policy chain.
func policyComment(bridge string) string { return "driftless policies " + bridge }

func policyChain(bridge string) string { return "DLW-NP-" + bridge }

// policyJump is the FORWARD rule that enters the bridge's policy chain.
func policyJump(bridge string) []string {
	return []string{"FORWARD", "-i", bridge, "-o", bridge, "-m", "comment", "--comment", policyComment(bridge), "-j", policyChain(bridge)}
}

// PolicyRule allows new connections from one instance's address to
// another's on a protocol and ports: a network policy applied to two
// instances of one bridge.
type PolicyRule struct {
	Source      string
	Destination string
	Protocol    string
	Ports       model.PortRange
}

// String is the rule as iptables arguments (without the chain).
func (r PolicyRule) String() string {
	return fmt.Sprintf("-s %s/32 -d %s/32 -p %s -m %s --dport %s -j ACCEPT",
		r.Source, r.Destination, r.Protocol, r.Protocol, strings.Replace(r.Ports.String(), "-", ":", 1))
}

// check refuses a rule that is not two IPv4 addresses, tcp or udp, and a
// port range: the rule is written into iptables-restore's input.
func (r PolicyRule) check() error {
	for _, ip := range []string{r.Source, r.Destination} {
		if p := net.ParseIP(ip); p == nil || p.To4() == nil || strings.Contains(ip, ":") {
			return fmt.Errorf("policy rule %v: %q is not an IPv4 address", r, ip)
		}
	}
	if r.Protocol != model.ProtocolTCP && r.Protocol != model.ProtocolUDP {
		return fmt.Errorf("policy rule %v: protocol %q is not tcp or udp", r, r.Protocol)
	}
	if r.Ports.Start < 1 || r.Ports.End > 65535 || r.Ports.Start > r.Ports.End {
		return fmt.Errorf("policy rule %v: bad ports", r)
	}
	return nil
}

// policyRestore is the iptables-restore input that makes the policy chain
// of bridge hold rules.
func policyRestore(bridge string, rules []PolicyRule) (string, error) {
	chain := policyChain(bridge)
	lines := []string{"*filter", ":" + chain + " - [0:0]",
		"-A " + chain + " -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"}
	for _, r := range rules {
		if err := r.check(); err != nil {
			return "", err
		}
		lines = append(lines, "-A "+chain+" "+r.String())
	}
	return strings.Join(append(lines, "COMMIT", ""), "\n"), nil
}

// SetPolicyRules makes the bridge's policy chain hold exactly rules (see
// policies.go), at once. The walls must be up (EnsureWalls).
func (n *Network) SetPolicyRules(ctx context.Context, rules []PolicyRule) error {
	in, err := policyRestore(n.cfg.Bridge, rules)
	if err != nil {
		return fmt.Errorf("network policies of bridge %s: %w", n.cfg.Bridge, err)
	}
	if err := xtables(ctx, false, in, "-restore", "-w", "5", "--noflush"); err != nil {
		return fmt.Errorf("network policies of bridge %s: %w", n.cfg.Bridge, err)
	}
	slog.Debug("network policies set", "bridge", n.cfg.Bridge, "rules", len(rules))
	return nil
}

// ensurePolicyChain makes the bridge's policy chain (empty) unless it is
// there, keeping the rules of one that is (an agent restarting), and
// enters it from the top of FORWARD, before the walls' drop.
func (n *Network) ensurePolicyChain(ctx context.Context) error {
	br := n.cfg.Bridge
	if xtables(ctx, false, "", "-w", "5", "-n", "-L", policyChain(br)) != nil {
		if err := n.SetPolicyRules(ctx, nil); err != nil {
			return err
		}
	}
	// Before the drop, even one EnsureWalls has just put back at the top.
	jump := policyJump(br)
	for i := 0; i < 10 && xtables(ctx, false, "", append([]string{"-w", "5", "-C"}, jump...)...) == nil; i++ {
		if err := xtables(ctx, false, "", append([]string{"-w", "5", "-D"}, jump...)...); err != nil {
			return err
		}
	}
	return xtables(ctx, false, "", append([]string{"-w", "5", "-I", jump[0], "1"}, jump[1:]...)...)
}

// removePolicyChain takes the bridge's policy chain and the rules that
// enter it down; what is not there is no error.
func (n *Network) removePolicyChain(ctx context.Context) error {
	br := n.cfg.Bridge
	jump := policyJump(br)
	for i := 0; i < 10 && xtables(ctx, false, "", append([]string{"-w", "5", "-C"}, jump...)...) == nil; i++ {
		if err := xtables(ctx, false, "", append([]string{"-w", "5", "-D"}, jump...)...); err != nil {
			return err
		}
	}
	if xtables(ctx, false, "", "-w", "5", "-n", "-L", policyChain(br)) == nil {
		if err := xtables(ctx, false, "", "-w", "5", "-F", policyChain(br)); err != nil {
			return err
		}
		if err := xtables(ctx, false, "", "-w", "5", "-X", policyChain(br)); err != nil {
			return err
		}
	}
	return nil
}
