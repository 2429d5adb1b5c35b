package network

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"strings"
)

// Gateway is the address the bridge of subnet holds (its first address),
// which instances reach the host on, with the subnet's prefix length.
func Gateway(subnet string) (ip string, prefix int, err error) {
	base, n, err := net.ParseCIDR(subnet)
	if err != nil || base.To4() == nil {
		return "", 0, fmt.Errorf("subnet %q is not an IPv4 CIDR", subnet)
	}
	gw := n.IP.To4()
	gw = net.IPv4(gw[0], gw[1], gw[2], gw[3]+1).To4()
	ones, _ := n.Mask.Size()
	return gw.String(), ones, nil
}

// EnsureBridge makes the bridge of cfg, with its gateway address, before
// any instance needs it — as the CNI bridge plugin would make it for the
// first instance — so that a host service (dev's PostgreSQL) can listen
// where instances reach it and nothing outside the host does. It returns
// the gateway address.
func EnsureBridge(ctx context.Context, cfg Config) (string, error) {
	if cfg.Bridge == "" {
		cfg.Bridge = DefaultBridge
	}
	if cfg.Subnet == "" {
		cfg.Subnet = DefaultSubnet
	}
	gw, prefix, err := Gateway(cfg.Subnet)
	if err != nil {
		return "", err
	}
	if out, err := exec.CommandContext(ctx, "ip", "link", "add", "name", cfg.Bridge, "type", "bridge").CombinedOutput(); err != nil &&
		!strings.Contains(string(out), "File exists") {
		return "", fmt.Errorf("making bridge %s: %v: %s", cfg.Bridge, err, strings.TrimSpace(string(out)))
	}
	if out, err := exec.CommandContext(ctx, "ip", "addr", "replace", fmt.Sprintf("%s/%d", gw, prefix), "dev", cfg.Bridge).CombinedOutput(); err != nil {
		return "", fmt.Errorf("giving bridge %s its gateway %s: %v: %s", cfg.Bridge, gw, err, strings.TrimSpace(string(out)))
	}
	if out, err := exec.CommandContext(ctx, "ip", "link", "set", cfg.Bridge, "up").CombinedOutput(); err != nil {
		return "", fmt.Errorf("bringing bridge %s up: %v: %s", cfg.Bridge, err, strings.TrimSpace(string(out)))
	}
	return gw, nil
}
