// Package platform wires driftless's components into the roles the binary
// runs: `dev` (the whole platform on one host), `controller`, `agent` and
// `router`. Each role has one configuration (ControllerConfig, AgentConfig,
// RouterConfig; DevConfig is made of the three) whose Default…Config
// function is the one place its defaults live (the CLI's flags take theirs
// from it), and one Run function that connects to NATS and Consul, starts
// the role's components and runs until its context ends. RunDev shares the
// roles' building blocks (runController, runAgent, newRouter, sources).
package platform

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/driftless/driftless/agents/network"
)

// need is one thing a role needs from the host.
type need struct {
	what  string
	check func() bool
	fix   string
}

func haveCommand(name string) func() bool {
	return func() bool { _, err := exec.LookPath(name); return err == nil }
}

func haveCNIPlugins(dirs []string) func() bool {
	return func() bool {
		for _, d := range dirs {
			ok := true
			for _, p := range []string{"bridge", "portmap", "host-local", "loopback"} {
				if _, err := os.Stat(filepath.Join(d, p)); err != nil {
					ok = false
				}
			}
			if ok {
				return true
			}
		}
		return false
	}
}

// cellNeeds is what a host running instances must have.
func cellNeeds(pluginDirs []string) []need {
	if len(pluginDirs) == 0 {
		pluginDirs = network.DefaultPluginDirs
	}
	return []need{
		{"root", func() bool { return os.Geteuid() == 0 }, "run as root: containers, network namespaces and iptables need it"},
		{"runc", haveCommand("runc"), "apt-get install runc (or `make setup`)"},
		{"iptables", haveCommand("iptables"), "apt-get install iptables (or `make setup`)"},
		{"CNI plugins (bridge, portmap, host-local, loopback)", haveCNIPlugins(pluginDirs), "apt-get install containernetworking-plugins (or `make setup`)"},
	}
}

// preflight returns one error naming everything missing and how to get it.
func preflight(needs []need) error {
	var missing []string
	for _, n := range needs {
		if !n.check() {
			missing = append(missing, fmt.Sprintf("  - %s: %s", n.what, n.fix))
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return errors.New("driftless cannot start; missing:\n" + strings.Join(missing, "\n"))
}
