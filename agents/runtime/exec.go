package runtime

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/cio"
	"github.com/containerd/containerd/errdefs"
)

// ExecSpec is a process started in the running task of a container
// (an instance's sidecar): it shares the container's namespaces, cgroup
// (its memory and pids limits), root filesystem, user, environment,
// working directory and lock-down (capabilities, no new privileges,
// rlimits); only its command differs.
type ExecSpec struct {
	// ID names the process in the task, unique in it (e.g.
	// "sidecar-config"); its output goes to ExecLogPath.
	ID string
	// Args is its command. Required.
	Args []string
}

var execIDPattern = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.\-]{0,75}$`)

// ExecLogPath is the file the process execID started in container id's
// task writes its stdout and stderr to, beside the container's own log
// (see Runtime.LogPath); RemoveLog removes it with the container's.
func ExecLogPath(containerLog, execID string) string {
	return strings.TrimSuffix(containerLog, ".log") + ".exec." + execID + ".log"
}

// Exec starts spec's process in the running task of container id and
// watches it: the channel receives its exit (or an Exit with Err when the
// watch broke). The process belongs to the task: the task's end ends it,
// and an agent that restarts finds it again with WatchExec.
func (r *Runtime) Exec(ctx context.Context, id string, spec ExecSpec) (<-chan Exit, error) {
	if !execIDPattern.MatchString(spec.ID) || len(spec.Args) == 0 {
		return nil, fmt.Errorf("starting process %q in %s: invalid id or empty command", spec.ID, id)
	}
	c, err := r.client.LoadContainer(ctx, id)
	if errdefs.IsNotFound(err) {
		return nil, fmt.Errorf("starting process %s in %s: %w", spec.ID, id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("starting process %s in %s: loading the container: %w", spec.ID, id, err)
	}
	t, err := c.Task(ctx, nil)
	if errdefs.IsNotFound(err) {
		return nil, fmt.Errorf("starting process %s in %s: task: %w", spec.ID, id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("starting process %s in %s: loading the task: %w", spec.ID, id, err)
	}
	oci, err := c.Spec(ctx)
	if err != nil {
		return nil, fmt.Errorf("starting process %s in %s: reading the container's spec: %w", spec.ID, id, err)
	}
	if oci.Process == nil {
		return nil, fmt.Errorf("starting process %s in %s: the container's spec has no process", spec.ID, id)
	}
	if oci.Process.User.UID == 0 || oci.Process.User.GID == 0 {
		return nil, fmt.Errorf("starting process %s in %s: refusing to run as root", spec.ID, id)
	}
	pspec := *oci.Process
	pspec.Args = spec.Args
	pspec.Terminal = false
	logPath := ExecLogPath(r.LogPath(id), spec.ID)
	if err := os.MkdirAll(filepath.Dir(logPath), 0o750); err != nil {
		return nil, fmt.Errorf("starting process %s in %s: %w", spec.ID, id, err)
	}
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o640)
	if err != nil {
		return nil, fmt.Errorf("starting process %s in %s: creating its log file: %w", spec.ID, id, err)
	}
	f.Close()
	p, err := t.Exec(ctx, spec.ID, &pspec, cio.LogFile(logPath))
	if err != nil {
		return nil, fmt.Errorf("starting process %s in %s: %w", spec.ID, id, err)
	}
	exits, err := waitProcess(ctx, p, id+"/"+spec.ID)
	if err != nil {
		_, _ = p.Delete(context.WithoutCancel(ctx), containerd.WithProcessKill)
		return nil, err
	}
	if err := p.Start(ctx); err != nil {
		_, _ = p.Delete(context.WithoutCancel(ctx), containerd.WithProcessKill)
		return nil, fmt.Errorf("starting process %s in %s: %w", spec.ID, id, err)
	}
	return exits, nil
}

// WatchExec watches process execID of container id's task again (after
// an agent restart): see Exec. ErrNotFound (wrapped) says the container,
// its task or the process is gone.
func (r *Runtime) WatchExec(ctx context.Context, id, execID string) (<-chan Exit, error) {
	t, err := r.task(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("watching process %s of %s: %w", execID, id, err)
	}
	p, err := t.LoadProcess(ctx, execID, nil)
	if errdefs.IsNotFound(err) {
		return nil, fmt.Errorf("watching process %s of %s: %w", execID, id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("watching process %s of %s: %w", execID, id, err)
	}
	return waitProcess(ctx, p, id+"/"+execID)
}

// waitProcess waits for p in the background: see Runtime.Wait.
func waitProcess(ctx context.Context, p containerd.Process, what string) (<-chan Exit, error) {
	statusC, err := p.Wait(ctx)
	if err != nil {
		return nil, fmt.Errorf("waiting for %s: %w", what, err)
	}
	out := make(chan Exit, 1)
	go func() {
		defer close(out)
		st := <-statusC
		code, at, err := st.Result()
		if err != nil {
			out <- Exit{Err: fmt.Errorf("waiting for %s: %w", what, err)}
			return
		}
		out <- Exit{Status: code, At: at}
	}()
	return out, nil
}

// removeExecLogs deletes the logs of the processes started in container
// id's task.
func (r *Runtime) removeExecLogs(id string) error {
	logs, err := filepath.Glob(ExecLogPath(r.LogPath(id), "*"))
	if err != nil {
		return fmt.Errorf("listing the process logs of %s: %w", id, err)
	}
	var errs []error
	for _, l := range logs {
		if err := os.Remove(l); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("removing the process logs of %s: %w", id, err)
	}
	return nil
}
