package network

import (
	"context"
	"crypto/sha512"
	"errors"
	"fmt"
	"os/exec"
	"strings"
)

// sweepMasquerade removes the bridge plugin's masquerade rule and chain of
// instance id whose address was ip. The plugin's DEL finds them through
// the addresses inside the namespace, so when the namespace is already
// gone they would stay forever; this removes them by name instead (the
// same names the plugin uses).
func (n *Network) sweepMasquerade(ctx context.Context, id, ip string) error {
	chain := masqChain(n.cfg.Name, id)
	comment := fmt.Sprintf("name: %q id: %q", n.cfg.Name, id)
	rule := []string{"POSTROUTING", "-s", ip, "-j", chain, "-m", "comment", "--comment", comment}
	if iptables(ctx, append([]string{"-C"}, rule...)...) == nil {
		if err := iptables(ctx, append([]string{"-D"}, rule...)...); err != nil {
			return err
		}
	}
	if iptables(ctx, "-n", "-L", chain) == nil {
		if err := iptables(ctx, "-F", chain); err != nil {
			return err
		}
		if err := iptables(ctx, "-X", chain); err != nil {
			return err
		}
	}
	return nil
}

// iptables runs iptables on the nat table, waiting for the xtables lock.
func iptables(ctx context.Context, args ...string) error {
	_, err := natTable(ctx, args...)
	return err
}

// natTable runs iptables on the nat table, waiting for the xtables lock,
// and returns what it printed.
func natTable(ctx context.Context, args ...string) (string, error) {
	args = append([]string{"-w", "5", "-t", "nat"}, args...)
	out, err := exec.CommandContext(ctx, "iptables", args...).Output()
	if err != nil {
		var stderr []byte
		if exit := (*exec.ExitError)(nil); errors.As(err, &exit) {
			stderr = exit.Stderr
		}
		return "", fmt.Errorf("iptables %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(stderr)))
	}
	return string(out), nil
}

// masqChain is the chain name the bridge plugin gives the masquerade rules
// of one attachment (containernetworking/plugins pkg/utils.FormatChainName).
func masqChain(name, id string) string {
	return fmt.Sprintf("CNI-%x", sha512.Sum512([]byte(name+id)))[:28]
}
