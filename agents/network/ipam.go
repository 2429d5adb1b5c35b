package network

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
)

// DefaultIPAMDir is where the address allocations of every bridge on the
// host are kept (one folder per bridge), beside CNI's own /var/lib/cni.
const DefaultIPAMDir = "/var/lib/cni/driftless"

// ipamDir is the host-local plugin's data folder of the network: one per
// bridge on the host, shared by every agent using that bridge (whatever
// its data folder), so two of them never hand out one address. The
// plugin keeps one file per address, in a sub-folder named after the
// network, under a lock.
func ipamDir(cfg Config) string { return filepath.Join(cfg.IPAMDir, cfg.Bridge) }

// allocationsDir is where the host-local plugin writes the network's
// allocations.
func allocationsDir(cfg Config) string { return filepath.Join(ipamDir(cfg), cfg.Name) }

// releaseOrphanAllocations frees the addresses held for instances whose
// network namespace no longer exists: left by an agent killed during a
// detach, or by a data folder that was deleted with its instances' state.
// An attach creates the namespace before it asks for an address and a
// detach frees the address before it removes the namespace, so an
// allocation of a live attachment (of any agent) always has its
// namespace.
func (n *Network) releaseOrphanAllocations() error {
	dir := allocationsDir(n.cfg)
	ips, err := allocations(dir)
	if err != nil {
		return err
	}
	for _, ip := range ips {
		path := filepath.Join(dir, ip)
		data, err := os.ReadFile(path)
		if err != nil {
			continue // freed meanwhile
		}
		// "<container id>\r\n<interface>", or the id alone (older plugins).
		id, _, _ := strings.Cut(strings.ReplaceAll(string(data), "\r\n", "\n"), "\n")
		id = strings.TrimSpace(id)
		if !idPattern.MatchString(id) || isNetNS(n.NetNSPath(id)) {
			continue
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("freeing address %s of %s: %w", ip, id, err)
		}
		slog.Info("freed the address of a network attachment that is gone", "network", n.cfg.Name, "ip", ip, "id", id)
	}
	return nil
}

// migrateIPAM moves the allocations an older agent kept in its own state
// folder into the bridge's shared folder, so that its running instances
// keep their addresses to themselves.
func migrateIPAM(cfg Config) error {
	old := filepath.Join(cfg.StateDir, "ipam", cfg.Name)
	ips, err := allocations(old)
	if err != nil || ips == nil {
		return err
	}
	if err := os.MkdirAll(allocationsDir(cfg), 0o700); err != nil {
		return fmt.Errorf("creating the address allocations folder: %w", err)
	}
	for _, ip := range ips {
		to := filepath.Join(allocationsDir(cfg), ip)
		if _, err := os.Stat(to); err == nil {
			slog.Warn("address allocated twice (before the bridge's allocations were shared)", "ip", ip, "bridge", cfg.Bridge)
			continue
		}
		if err := os.Rename(filepath.Join(old, ip), to); err != nil {
			return fmt.Errorf("moving the address allocation %s: %w", ip, err)
		}
	}
	if err := os.RemoveAll(filepath.Join(cfg.StateDir, "ipam")); err != nil {
		return fmt.Errorf("removing the old address allocations: %w", err)
	}
	return nil
}

// allocations lists the addresses allocated in a host-local data folder
// (one file each, beside the plugin's lock and last-reserved files); nil
// when the folder does not exist.
func allocations(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing address allocations in %s: %w", dir, err)
	}
	ips := []string{}
	for _, e := range entries {
		if !e.IsDir() && net.ParseIP(e.Name()) != nil {
			ips = append(ips, e.Name())
		}
	}
	return ips, nil
}
