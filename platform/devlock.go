package platform

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/driftless/driftless/internal/files"
)

// DevLockFile is the file in dev's data folder that a running `dev` (or
// `dev --down`) holds locked (flock) and writes its pid into. The kernel
// lets go of the lock when the process ends however it ends (SIGKILL
// included), so a lock nobody holds means nothing runs on the folder.
const DevLockFile = "dev.pid"

// DevRunningError is returned when another process holds a data folder's
// lock: a dev runs on it (or a `dev --down` takes it down).
type DevRunningError struct {
	DataDir string
	// Pid is the process holding the lock (0 when it is not known).
	Pid int
}

func (e *DevRunningError) Error() string {
	pid := "pid unknown"
	if e.Pid > 0 {
		pid = "pid " + strconv.Itoa(e.Pid)
	}
	return fmt.Sprintf("dev is running on %s (%s); stop it first (Ctrl-C in its terminal, or kill %s)", e.DataDir, pid, pidOr(e.Pid))
}

func pidOr(pid int) string {
	if pid > 0 {
		return strconv.Itoa(pid)
	}
	return "it"
}

// lockDataDir takes dataDir's lock for this process, or returns a
// *DevRunningError naming the process that holds it. The returned
// function lets go of it.
func lockDataDir(dataDir string) (func(), error) {
	path := filepath.Join(dataDir, DevLockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening the lock file of %s: %w", dataDir, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		defer f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			b, _ := os.ReadFile(path)
			pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
			return nil, &DevRunningError{DataDir: dataDir, Pid: pid}
		}
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return func() {
		_ = f.Truncate(0)
		_ = unix.Flock(int(f.Fd()), unix.LOCK_UN)
		f.Close()
	}, nil
}

// DevHostFile is the file in dev's data folder recording where dev put
// its containers and network (devHost), so that `dev --down --data DIR`
// finds them without the flags dev ran with.
const DevHostFile = "dev-host.json"

// devHost is where a dev's containers and network are on the host.
type devHost struct {
	Containerd string   `json:"containerd"`
	Namespace  string   `json:"namespace"`
	Network    string   `json:"network"`
	Bridge     string   `json:"bridge"`
	Subnet     string   `json:"subnet"`
	PluginDirs []string `json:"plugin_dirs,omitempty"`
	Address    string   `json:"address"`
}

// hostOf is what cfg (with the containerd socket sock) puts on the host.
func hostOf(cfg DevConfig, sock string) devHost {
	a := cfg.Agent
	return devHost{Containerd: sock, Namespace: a.Runtime.Namespace, Network: a.Network.Name, Bridge: a.Network.Bridge,
		Subnet: a.Network.Subnet, PluginDirs: a.Network.PluginDirs, Address: a.Address}
}

// writeDevHost records h in dataDir.
func writeDevHost(dataDir string, h devHost) error {
	b, err := json.MarshalIndent(h, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding %s: %w", DevHostFile, err)
	}
	if err := files.WriteAtomic(filepath.Join(dataDir, DevHostFile), append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("recording where dev's containers and network are: %w", err)
	}
	return nil
}

// withRecordedHost returns cfg with the containerd socket, namespace and
// network dev recorded in its data folder in place of those cfg leaves
// at their defaults (flags not given to `dev --down`); a flag given
// wins. Without a record cfg is returned as it is.
func withRecordedHost(cfg DevConfig, log *slog.Logger) (DevConfig, error) {
	log = orDefault(log)
	b, err := os.ReadFile(filepath.Join(cfg.DataDir, DevHostFile))
	if errors.Is(err, os.ErrNotExist) {
		return cfg, nil
	}
	if err != nil {
		return cfg, fmt.Errorf("reading where dev's containers and network are: %w", err)
	}
	var rec devHost
	if err := json.Unmarshal(b, &rec); err != nil {
		return cfg, fmt.Errorf("reading %s: %w", filepath.Join(cfg.DataDir, DevHostFile), err)
	}
	def, a := DefaultDevConfig().Agent, &cfg.Agent
	for _, f := range []struct {
		name     string
		have     *string
		def, rec string
	}{
		{"containerd", &a.Runtime.Address, def.Runtime.Address, rec.Containerd},
		{"namespace", &a.Runtime.Namespace, def.Runtime.Namespace, rec.Namespace},
		{"network", &a.Network.Name, def.Network.Name, rec.Network},
		{"bridge", &a.Network.Bridge, def.Network.Bridge, rec.Bridge},
		{"subnet", &a.Network.Subnet, def.Network.Subnet, rec.Subnet},
		{"address", &a.Address, def.Address, rec.Address},
	} {
		if *f.have == f.def && f.rec != "" && f.rec != f.def {
			log.Info("as dev recorded it", f.name, f.rec)
			*f.have = f.rec
		}
	}
	if len(a.Network.PluginDirs) == 0 {
		a.Network.PluginDirs = rec.PluginDirs
	}
	return cfg, nil
}
