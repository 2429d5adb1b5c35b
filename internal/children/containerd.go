package children

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/containerd/containerd"
)

// ContainerdOptions configures a containerd daemon private to driftless:
// its own root, state and socket, so it never disturbs a system containerd.
type ContainerdOptions struct {
	// Binary is the containerd executable; empty means "containerd" on $PATH.
	Binary string
	// Dir holds root/, state/, config.toml and the log unless set below.
	Dir string
	// Address is the gRPC socket; empty means Dir/containerd.sock.
	Address string
	// LogPath receives the daemon's output; empty means Dir/containerd.log.
	LogPath string
}

// configTemplate disables the CRI plugin (driftless is its own
// orchestrator) and keeps every path under the daemon's folder.
const configTemplate = `version = 2
root = %q
state = %q
disabled_plugins = ["io.containerd.grpc.v1.cri"]

[grpc]
  address = %q

[ttrpc]
  address = %q

[plugins."io.containerd.internal.v1.opt"]
  path = %q
`

// StartContainerd writes a config under opts.Dir, starts containerd with
// it and waits until the socket answers. containerd needs root.
func StartContainerd(ctx context.Context, opts ContainerdOptions) (*Process, string, error) {
	if os.Geteuid() != 0 {
		return nil, "", errors.New("containerd needs root: run driftless (and `make test`) as root")
	}
	bin := opts.Binary
	if bin == "" {
		p, err := exec.LookPath("containerd")
		if err != nil {
			return nil, "", errors.New("containerd not found: run `make setup` (apt-get install containerd runc containernetworking-plugins)")
		}
		bin = p
	}
	if _, err := exec.LookPath("runc"); err != nil {
		return nil, "", errors.New("runc not found: run `make setup` (apt-get install runc)")
	}
	if opts.Dir == "" {
		return nil, "", errors.New("containerd options: Dir is required")
	}
	addr := opts.Address
	if addr == "" {
		addr = filepath.Join(opts.Dir, "containerd.sock")
	}
	logPath := opts.LogPath
	if logPath == "" {
		logPath = filepath.Join(opts.Dir, "containerd.log")
	}
	for _, d := range []string{"root", "state", "opt"} {
		if err := os.MkdirAll(filepath.Join(opts.Dir, d), 0o711); err != nil {
			return nil, "", fmt.Errorf("creating containerd folder: %w", err)
		}
	}
	cfg := fmt.Sprintf(configTemplate, filepath.Join(opts.Dir, "root"), filepath.Join(opts.Dir, "state"),
		addr, addr+".ttrpc", filepath.Join(opts.Dir, "opt"))
	cfgPath := filepath.Join(opts.Dir, "config.toml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		return nil, "", fmt.Errorf("writing containerd config: %w", err)
	}
	p, err := start("containerd", bin, []string{"--config", cfgPath}, logPath)
	if err != nil {
		return nil, "", err
	}
	err = p.waitReady(ctx, 30*time.Second, func(ctx context.Context) error {
		return containerdAnswers(ctx, addr)
	})
	if err != nil {
		return nil, "", err
	}
	return p, addr, nil
}

// ContainerdAnswers reports whether a containerd daemon answers on the
// socket at addr.
func ContainerdAnswers(ctx context.Context, addr string) bool {
	if _, err := os.Stat(addr); err != nil {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return containerdAnswers(ctx, addr) == nil
}

func containerdAnswers(ctx context.Context, addr string) error {
	if _, err := os.Stat(addr); err != nil {
		return err
	}
	c, err := containerd.New(addr, containerd.WithTimeout(time.Second))
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = c.Version(ctx)
	return err
}
