package platform

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/driftless/driftless/agents/network"
	"github.com/driftless/driftless/agents/runtime"
	"github.com/driftless/driftless/internal/children"
)

// DownReport is what DownDev stopped and removed.
type DownReport struct {
	// Tasks is how many app containers were running, Containers how many
	// containers were removed.
	Tasks, Containers int
	// Attachments is how many network attachments were removed (each a
	// namespace, a veth, an address and its NAT rules).
	Attachments int
	// FilterRules is how many filter rules of the bridge's walls and
	// network policies were removed (chain declarations included).
	FilterRules int
	// Bridge is the bridge deleted ("" for none).
	Bridge string
	// Mounts is how many mounts under the data folder were unmounted.
	Mounts int
	// Processes is how many processes of the platform (Consul,
	// containerd, PostgreSQL, container shims) were stopped.
	Processes int
	// NATLeft are the NAT rules naming an address of the platform's
	// subnet still on the host afterwards (none is expected).
	NATLeft []string
}

// Empty reports whether nothing was stopped or removed.
func (r DownReport) Empty() bool {
	return r.Tasks == 0 && r.Containers == 0 && r.Attachments == 0 && r.FilterRules == 0 &&
		r.Bridge == "" && r.Mounts == 0 && r.Processes == 0
}

// String says what was removed, or "nothing to stop".
func (r DownReport) String() string {
	if r.Empty() {
		return "nothing to stop"
	}
	var parts []string
	add := func(n int, what string) {
		if n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, what))
		}
	}
	add(r.Tasks, "running app instance(s) stopped")
	add(r.Containers, "container(s) removed")
	add(r.Attachments, "network attachment(s) removed")
	add(r.FilterRules, "filter rule(s) of the walls removed")
	if r.Bridge != "" {
		parts = append(parts, "bridge "+r.Bridge+" deleted")
	}
	add(r.Mounts, "mount(s) unmounted")
	add(r.Processes, "process(es) of the platform stopped")
	return strings.Join(parts, ", ")
}

// DownDev takes down what a stopped `driftless dev` with cfg left on the
// host: it stops and removes every container in its containerd
// namespace (starting its private containerd again for that, on the
// same folder and socket, and stopping it after), detaches every
// network attachment its agent recorded (CNI DEL with the same
// configuration, so the addresses are freed and the port mappings and
// masquerade rules go), takes down the walls and network policies of its
// bridge and deletes the bridge when nothing else is attached to it,
// unmounts what is still mounted under the data folder, and stops the
// processes of the platform still running on it. The data folder (git
// sources, blobs, tokens) stays. Only what belongs to cfg's data folder,
// bridge, subnet and containerd namespace is touched. Running it again
// removes nothing. It refuses with a *DevRunningError while a dev runs
// on the data folder.
func DownDev(ctx context.Context, cfg DevConfig) (DownReport, error) {
	log := orDefault(cfg.Log)
	var rep DownReport
	dataDir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return rep, fmt.Errorf("data folder %s: %w", cfg.DataDir, err)
	}
	if st, err := os.Stat(dataDir); err != nil || !st.IsDir() {
		return rep, fmt.Errorf("no data folder of dev at %s (give the --data dev ran with)", dataDir)
	}
	unlock, err := lockDataDir(dataDir)
	if err != nil {
		return rep, err
	}
	defer unlock()
	cfg.DataDir = dataDir
	if cfg, err = withRecordedHost(cfg, log); err != nil {
		return rep, err
	}
	if err := preflight(cellNeeds(cfg.Agent.Network.PluginDirs)); err != nil {
		return rep, err
	}
	agentDir := filepath.Join(dataDir, "agent")

	// The containers first: their processes end before their network goes.
	sock, stopContainerd, err := downContainerd(ctx, dataDir, cfg.Agent.Runtime.Address, log)
	if err != nil {
		return rep, err
	}
	if stopContainerd != nil {
		defer func() {
			if stopContainerd != nil {
				stopContainerd()
			}
		}()
	}
	if sock != "" {
		if rep.Tasks, rep.Containers, err = removeContainers(ctx, sock, cfg.Agent.Runtime.Namespace, agentDir, log); err != nil {
			return rep, err
		}
	}
	if err := downNetwork(ctx, cfg, agentDir, &rep, log); err != nil {
		return rep, err
	}
	if stopContainerd != nil {
		stopContainerd()
		stopContainerd = nil
	}
	if rep.Mounts, err = unmountUnder(dataDir, log); err != nil {
		return rep, err
	}
	if rep.Processes, err = stopLeftProcesses(leftProcessMarks(dataDir, sock, cfg.Agent.Runtime.Namespace), log); err != nil {
		return rep, err
	}
	return rep, nil
}

// downContainerd is the socket of dev's containerd, started again under
// dataDir as dev starts it when none answers, with the function that
// stops it (nil when it answered already). The socket is "" when dev
// never had a containerd of its own there: no container can be left.
func downContainerd(ctx context.Context, dataDir, sock string, log *slog.Logger) (string, func(), error) {
	if children.ContainerdAnswers(ctx, sock) {
		return sock, nil, nil
	}
	if _, err := os.Stat(filepath.Join(dataDir, "containerd", "root")); errors.Is(err, os.ErrNotExist) {
		return "", nil, nil
	}
	return devContainerd(ctx, dataDir, sock, log)
}

// removeContainers stops (SIGTERM, SIGKILL after a few seconds) and
// removes every container in namespace ns of the containerd at sock, in
// parallel. It returns how many were running and how many were removed.
func removeContainers(ctx context.Context, sock, ns, agentDir string, log *slog.Logger) (int, int, error) {
	rt, err := runtime.New(ctx, runtime.Config{Address: sock, Namespace: ns, LogDir: filepath.Join(agentDir, "logs")})
	if err != nil {
		return 0, 0, fmt.Errorf("taking the apps down: %w", err)
	}
	defer rt.Close()
	conts, err := rt.List(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("taking the apps down: %w", err)
	}
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		running int
		removed int
		errs    []error
	)
	for _, c := range conts {
		wg.Go(func() {
			err := rt.Stop(ctx, c.ID, 5*time.Second)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			removed++
			if c.Status == runtime.StatusRunning {
				running++
			}
			log.Info("removed container", "id", c.ID, "was", c.Status)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return running, removed, fmt.Errorf("taking the apps down: %w", err)
	}
	return running, removed, nil
}

// downNetwork detaches every attachment dev's agent recorded, then takes
// the walls of its bridge down and deletes the bridge unless another
// agent's instances are on it.
func downNetwork(ctx context.Context, cfg DevConfig, agentDir string, rep *DownReport, log *slog.Logger) error {
	ncfg := cfg.Agent.Network
	if ncfg.StateDir == "" {
		ncfg.StateDir = filepath.Join(agentDir, "network") // as the agent has it
	}
	if ncfg.HostIP == "" {
		ncfg.HostIP = cfg.Agent.Address
	}
	nw, err := network.New(ncfg)
	if err != nil {
		return fmt.Errorf("taking the network down: %w", err)
	}
	atts, err := nw.Attachments()
	if err != nil {
		return fmt.Errorf("taking the network down: %w", err)
	}
	for _, a := range atts {
		if err := nw.Detach(ctx, a.ID, 0, 0); err != nil {
			return fmt.Errorf("taking the network down: %w", err)
		}
		rep.Attachments++
		log.Info("removed network attachment", "id", a.ID, "ip", a.IP, "host_port", a.HostPort)
	}
	ncfg = nw.Config()
	if idle, err := nw.BridgeIdle(); err != nil {
		return fmt.Errorf("taking the network down: %w", err)
	} else if !idle {
		log.Warn("the bridge has interfaces of another agent's instances: its walls and the bridge stay", "bridge", ncfg.Bridge)
		return nil
	}
	before, err := nw.FilterRules(ctx)
	if err != nil {
		return err
	}
	if err := nw.RemoveWalls(ctx); err != nil {
		return fmt.Errorf("taking the network down: %w", err)
	}
	after, err := nw.FilterRules(ctx)
	if err != nil {
		return err
	}
	rep.FilterRules = len(before) - len(after)
	deleted, err := nw.RemoveBridge(ctx)
	if err != nil {
		return fmt.Errorf("taking the network down: %w", err)
	}
	if deleted {
		rep.Bridge = ncfg.Bridge
	}
	if rep.NATLeft, err = nw.NATRules(ctx); err != nil {
		return err
	}
	for _, r := range rep.NATLeft {
		log.Warn("a NAT rule of the platform's subnet is left (of an attachment with no record)", "rule", r)
	}
	return nil
}
