package runtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"syscall"
	"time"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/cio"
	"github.com/containerd/containerd/errdefs"
	"github.com/containerd/containerd/oci"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// DefaultPidsLimit is the pids limit of a container whose Spec sets none.
const DefaultPidsLimit = 1024

// killTimeout bounds the wait for a task to go after SIGKILL.
const killTimeout = 10 * time.Second

// ErrNotFound is returned (wrapped) for a container or task that does not
// exist.
var ErrNotFound = errors.New("not found")

// Spec describes one container to start.
type Spec struct {
	// ID is the container id, the instance GUID.
	ID string
	// Image is a ref already pulled with Pull.
	Image string
	// Args is the command; nil means the image's entrypoint and cmd.
	Args []string
	// Env is added to the image's environment ("KEY=value"). It may hold
	// secrets and is never logged.
	Env []string
	// WorkingDir is the command's folder; empty means the image's.
	WorkingDir string
	// UID and GID run the process (no supplementary groups but GID);
	// 0 (root) is refused for either.
	UID, GID uint32
	// MemoryMB is the memory limit, memory+swap included. Required.
	MemoryMB int64
	// CPUShares are the cgroup cpu shares; 0 means the kernel default.
	CPUShares uint64
	// PidsLimit bounds the number of processes; 0 means DefaultPidsLimit.
	PidsLimit int64
	// NetNSPath is the network namespace to join, from network.Attach;
	// empty means a new namespace with only a loopback interface (down).
	NetNSPath string
	// Hostname is the container's host name; empty means none is set.
	Hostname string
	// Labels are stored on the container and returned by List, e.g. to
	// adopt the container after an agent restart.
	Labels map[string]string
	// Mounts are host folders bound into the container (staging: the
	// source read-only, the output and the build cache read-write).
	Mounts []Mount
}

// Mount binds a host folder into a container.
type Mount struct {
	Source, Destination string
	ReadOnly            bool
}

// TaskStatus is the state of a container's task.
type TaskStatus string

// Task states. Absent means the container has no task (never started, or
// its task was deleted).
const (
	StatusRunning TaskStatus = "running"
	StatusCreated TaskStatus = "created"
	StatusStopped TaskStatus = "stopped"
	StatusPaused  TaskStatus = "paused"
	StatusAbsent  TaskStatus = "absent"
	StatusUnknown TaskStatus = "unknown"
)

// Container is one container in the runtime's namespace, as List sees it.
type Container struct {
	ID     string
	Image  string
	Labels map[string]string
	Status TaskStatus
	// Pid is the task's process id on the host (0 if absent).
	Pid uint32
	// ExitStatus and ExitedAt are set once the task has stopped.
	ExitStatus uint32
	ExitedAt   time.Time
}

// Exit is how a task ended, as reported by Wait.
type Exit struct {
	// Status is the exit code; 128+n for a process killed by signal n
	// (137 for SIGKILL).
	Status uint32
	At     time.Time
	// Err is set when the exit could not be observed (e.g. the context
	// ended or containerd went away); Status is then meaningless.
	Err error
}

var idPattern = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.\-]{0,75}$`)

// startTimeout bounds Start, which ctx does not cut short.
const startTimeout = 2 * time.Minute

// Start creates container spec.ID from its image, with a task whose stdout
// and stderr go to LogPath(spec.ID), and starts it. On failure nothing is
// left behind (but the log file). The end of ctx does not abandon it
// half-way (only its values are used): containerd finishes a task it was
// asked to create even when the caller has gone, and one created for a
// container deleted meanwhile keeps its shim running for ever.
func (r *Runtime) Start(ctx context.Context, spec Spec) (err error) {
	if err := validate(spec); err != nil {
		return fmt.Errorf("starting container %s: %w", spec.ID, err)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), startTimeout)
	defer cancel()
	img, err := r.client.GetImage(ctx, spec.Image)
	if err != nil {
		return fmt.Errorf("starting container %s: image %s (pull it first): %w", spec.ID, spec.Image, err)
	}
	container, err := r.client.NewContainer(ctx, spec.ID,
		containerd.WithImage(img),
		containerd.WithSnapshotter(r.cfg.Snapshotter),
		// The snapshot must exist before the spec is made: the image's
		// /etc/group is read from it.
		containerd.WithNewSnapshot(spec.ID, img),
		containerd.WithNewSpec(specOpts(img, spec)...),
		containerd.WithContainerLabels(spec.Labels),
	)
	if err != nil {
		return fmt.Errorf("starting container %s: creating it: %w", spec.ID, err)
	}
	defer func() {
		if err == nil {
			return
		}
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if t, terr := container.Task(cctx, nil); terr == nil {
			_, _ = t.Delete(cctx, containerd.WithProcessKill)
		}
		if derr := container.Delete(cctx, containerd.WithSnapshotCleanup); derr != nil {
			slog.Error("removing a container that failed to start", "id", spec.ID, "err", derr)
		}
	}()
	// Created only now: a Start for an id that already exists must not
	// truncate that container's log.
	logPath := r.LogPath(spec.ID)
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o640)
	if err != nil {
		return fmt.Errorf("starting container %s: creating its log file: %w", spec.ID, err)
	}
	f.Close()
	task, err := container.NewTask(ctx, cio.LogFile(logPath))
	if err != nil {
		return fmt.Errorf("starting container %s: creating its task: %w", spec.ID, err)
	}
	if err := task.Start(ctx); err != nil {
		return fmt.Errorf("starting container %s: starting its task: %w", spec.ID, err)
	}
	slog.Debug("container started", "id", spec.ID, "image", spec.Image, "pid", task.Pid())
	return nil
}

func validate(spec Spec) error {
	switch {
	case !idPattern.MatchString(spec.ID):
		return errors.New("invalid id")
	case spec.Image == "":
		return errors.New("no image")
	case spec.UID == 0 || spec.GID == 0:
		return errors.New("refusing to run as root (UID or GID 0)")
	case spec.MemoryMB <= 0:
		return errors.New("no memory limit")
	case spec.PidsLimit < 0:
		return errors.New("negative pids limit")
	case spec.Args != nil && len(spec.Args) == 0:
		return errors.New("empty command")
	}
	for _, m := range spec.Mounts {
		if !filepath.IsAbs(m.Source) || !filepath.IsAbs(m.Destination) {
			return fmt.Errorf("mount %s → %s: paths must be absolute", m.Source, m.Destination)
		}
	}
	return nil
}

// specOpts make the OCI spec: containerd's defaults (own mount, pid, ipc,
// uts and network namespaces; masked and read-only paths; a writable
// rootfs; RLIMIT_NOFILE 1024), the image's config (but its USER), then the instance's
// settings and lock-down (seccomp: see withSeccomp), the host's /etc/resolv.conf and /etc/hosts
// (read-only) and the container's cgroups at /sys/fs/cgroup (read-only).
func specOpts(img containerd.Image, spec Spec) []oci.SpecOpts {
	mem := spec.MemoryMB << 20
	pids := spec.PidsLimit
	if pids == 0 {
		pids = DefaultPidsLimit
	}
	opts := []oci.SpecOpts{withImageConfig(img)} // without its USER: imageconfig.go
	if spec.Args != nil {
		opts = append(opts, oci.WithProcessArgs(spec.Args...))
	}
	if spec.WorkingDir != "" {
		opts = append(opts, oci.WithProcessCwd(spec.WorkingDir))
	}
	opts = append(opts,
		oci.WithEnv(spec.Env),
		oci.WithUIDGID(spec.UID, spec.GID),
		oci.WithNoNewPrivileges,
		oci.WithCapabilities(nil),
		oci.WithAmbientCapabilities(nil),
		// After the capabilities: the profile is made for them.
		withSeccomp(),
		oci.WithMemoryLimit(uint64(mem)),
		oci.WithMemorySwap(mem),
		oci.WithPidsLimit(pids),
		oci.WithHostResolvconf,
		oci.WithHostHostsFile,
		// The container's own cgroups, read-only, as Docker and the CRI
		// give them: runtimes (JVM, Node, Go) size themselves from them.
		oci.WithMounts([]specs.Mount{{
			Destination: "/sys/fs/cgroup",
			Type:        "cgroup",
			Source:      "cgroup",
			Options:     []string{"ro", "nosuid", "noexec", "nodev", "relatime"},
		}}),
	)
	for _, m := range spec.Mounts {
		mode := "rw"
		if m.ReadOnly {
			mode = "ro"
		}
		opts = append(opts, oci.WithMounts([]specs.Mount{{Destination: m.Destination, Type: "bind", Source: m.Source,
			Options: []string{"rbind", mode, "nosuid", "nodev"}}}))
	}
	if spec.CPUShares > 0 {
		opts = append(opts, oci.WithCPUShares(spec.CPUShares))
	}
	if spec.NetNSPath != "" {
		opts = append(opts, oci.WithLinuxNamespace(specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: spec.NetNSPath}))
	}
	if spec.Hostname != "" {
		opts = append(opts, oci.WithHostname(spec.Hostname))
	}
	return opts
}

// List returns every container in the runtime's namespace with the state
// of its task.
func (r *Runtime) List(ctx context.Context) ([]Container, error) {
	cs, err := r.client.Containers(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing containers: %w", err)
	}
	out := make([]Container, 0, len(cs))
	for _, c := range cs {
		info, err := c.Info(ctx, containerd.WithoutRefreshedMetadata)
		if errdefs.IsNotFound(err) {
			continue // deleted meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("listing containers: reading %s: %w", c.ID(), err)
		}
		item := Container{ID: c.ID(), Image: info.Image, Labels: info.Labels, Status: StatusAbsent}
		task, err := c.Task(ctx, nil)
		switch {
		case errdefs.IsNotFound(err):
		case err != nil:
			return nil, fmt.Errorf("listing containers: task of %s: %w", c.ID(), err)
		default:
			st, err := task.Status(ctx)
			if errdefs.IsNotFound(err) {
				break
			}
			if err != nil {
				return nil, fmt.Errorf("listing containers: status of %s: %w", c.ID(), err)
			}
			item.Status = taskStatus(st.Status)
			item.Pid = task.Pid()
			if st.Status == containerd.Stopped {
				item.ExitStatus, item.ExitedAt = st.ExitStatus, st.ExitTime
			}
		}
		out = append(out, item)
	}
	return out, nil
}

func taskStatus(s containerd.ProcessStatus) TaskStatus {
	switch s {
	case containerd.Running:
		return StatusRunning
	case containerd.Created:
		return StatusCreated
	case containerd.Stopped:
		return StatusStopped
	case containerd.Paused, containerd.Pausing:
		return StatusPaused
	}
	return StatusUnknown
}

// task loads the task of container id.
func (r *Runtime) task(ctx context.Context, id string) (containerd.Task, error) {
	c, err := r.client.LoadContainer(ctx, id)
	if errdefs.IsNotFound(err) {
		return nil, fmt.Errorf("container %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("loading container %s: %w", id, err)
	}
	t, err := c.Task(ctx, nil)
	if errdefs.IsNotFound(err) {
		return nil, fmt.Errorf("task of container %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("loading the task of container %s: %w", id, err)
	}
	return t, nil
}

// Wait returns a channel that receives one Exit when the task of container
// id ends (at once if it already has), then closes. It works as well for a
// task another agent process started. Ending ctx ends the wait with an
// Exit whose Err is set.
func (r *Runtime) Wait(ctx context.Context, id string) (<-chan Exit, error) {
	t, err := r.task(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("waiting for %s: %w", id, err)
	}
	return waitProcess(ctx, t, id)
}

// Kill sends SIGKILL to the task of container id and returns without
// waiting; the container stays until Stop.
func (r *Runtime) Kill(ctx context.Context, id string) error {
	t, err := r.task(ctx, id)
	if err != nil {
		return fmt.Errorf("killing %s: %w", id, err)
	}
	if err := t.Kill(ctx, syscall.SIGKILL, containerd.WithKillAll); err != nil {
		return fmt.Errorf("killing %s: %w", id, err)
	}
	return nil
}

// Stop ends container id and removes it: SIGTERM, SIGKILL if it is still
// running after grace, then the task, the container and its snapshot are
// deleted. The log file stays (see RemoveLog). Stopping a container that
// does not exist, or no longer, is not an error.
func (r *Runtime) Stop(ctx context.Context, id string, grace time.Duration) error {
	c, err := r.client.LoadContainer(ctx, id)
	if errdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("stopping %s: loading the container: %w", id, err)
	}
	t, err := c.Task(ctx, nil)
	switch {
	case errdefs.IsNotFound(err):
	case err != nil:
		return fmt.Errorf("stopping %s: loading the task: %w", id, err)
	default:
		if err := stopTask(ctx, t, grace); err != nil {
			return fmt.Errorf("stopping %s: %w", id, err)
		}
		if _, err := t.Delete(ctx, containerd.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("stopping %s: deleting the task: %w", id, err)
		}
	}
	if err := c.Delete(ctx, containerd.WithSnapshotCleanup); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("stopping %s: deleting the container: %w", id, err)
	}
	slog.Debug("container stopped", "id", id)
	return nil
}

// Reap deletes the task of container id, whose process has ended, and
// returns once the task's shim has written the last of its output to the
// log: a shim copies a process's output after the process has gone and
// drains it before it deletes the task, so the last lines a crashed
// instance printed are in the log only then. The container stays until
// Stop. A task already gone is not an error.
func (r *Runtime) Reap(ctx context.Context, id string) error {
	t, err := r.task(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reaping %s: %w", id, err)
	}
	if _, err := t.Delete(ctx, containerd.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("reaping %s: deleting the ended task: %w", id, err)
	}
	return nil
}

// stopTask signals a live task with SIGTERM, then SIGKILL after grace, and
// waits for it to end.
func stopTask(ctx context.Context, t containerd.Task, grace time.Duration) error {
	st, err := t.Status(ctx)
	if errdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("task status: %w", err)
	}
	if st.Status == containerd.Stopped {
		return nil
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	exited, err := t.Wait(wctx)
	if err != nil {
		return fmt.Errorf("waiting for the task: %w", err)
	}
	if st.Status == containerd.Running {
		if err := t.Kill(ctx, syscall.SIGTERM); err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("sending SIGTERM: %w", err)
		}
		timer := time.NewTimer(grace)
		defer timer.Stop()
		select {
		case <-exited:
			return nil
		case <-timer.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if err := t.Kill(ctx, syscall.SIGKILL, containerd.WithKillAll); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("sending SIGKILL: %w", err)
	}
	timer := time.NewTimer(killTimeout)
	defer timer.Stop()
	select {
	case <-exited:
		return nil
	case <-timer.C:
		return fmt.Errorf("task still running %s after SIGKILL", killTimeout)
	case <-ctx.Done():
		return ctx.Err()
	}
}
