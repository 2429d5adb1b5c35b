package runtime

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Engine is the container engine a Runner drives: *Runtime (containerd),
// or a fake in unit tests of what runs containers.
type Engine interface {
	Pull(ctx context.Context, ref string) error
	Start(ctx context.Context, spec Spec) error
	Wait(ctx context.Context, id string) (<-chan Exit, error)
	Kill(ctx context.Context, id string) error
	Stop(ctx context.Context, id string, grace time.Duration) error
	Reap(ctx context.Context, id string) error
	List(ctx context.Context) ([]Container, error)
	LogPath(id string) string
	RemoveLog(id string) error
	Exec(ctx context.Context, id string, spec ExecSpec) (<-chan Exit, error)
	WatchExec(ctx context.Context, id, execID string) (<-chan Exit, error)
}

var _ Engine = (*Runtime)(nil)

// Runner is the one way a cell runs a container, app instances and
// buildpack compile steps alike: its image fetched (Fetch), the container
// created and started in a network namespace made for it beforehand and
// its exit watched (Run), and in the end removed with its log (Remove).
// Each of the three is a step its caller can undo or repeat: Remove is
// idempotent.
type Runner struct {
	// Engine creates and runs the containers.
	Engine Engine
}

// NewRunner makes a Runner driving e.
func NewRunner(e Engine) Runner { return Runner{Engine: e} }

// Fetch makes image ready to run: pulled and unpacked unless it already is.
func (r Runner) Fetch(ctx context.Context, image string) error {
	if err := r.Engine.Pull(ctx, image); err != nil {
		return fmt.Errorf("fetching image %s: %w", image, err)
	}
	return nil
}

// Run creates and starts spec's container (not abandoned half-way when ctx
// ends: see Runtime.Start) and watches its process: the channel receives
// its exit, or an Exit with Err when the watch broke. A container that
// started but could not be watched is left for Remove.
func (r Runner) Run(ctx context.Context, spec Spec) (<-chan Exit, error) {
	if err := r.Engine.Start(ctx, spec); err != nil {
		return nil, fmt.Errorf("running container %s: %w", spec.ID, err)
	}
	exits, err := r.Engine.Wait(ctx, spec.ID)
	if err != nil {
		return nil, fmt.Errorf("watching container %s: %w", spec.ID, err)
	}
	return exits, nil
}

// Watch watches the process of a container already running (adopted, or
// whose watch broke): see Runtime.Wait. ErrNotFound (wrapped) says the
// container or its task is gone.
func (r Runner) Watch(ctx context.Context, id string) (<-chan Exit, error) {
	exits, err := r.Engine.Wait(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("watching container %s: %w", id, err)
	}
	return exits, nil
}

// Kill ends a container's process at once; the container stays until
// Remove.
func (r Runner) Kill(ctx context.Context, id string) error {
	if err := r.Engine.Kill(ctx, id); err != nil && !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("killing container %s: %w", id, err)
	}
	return nil
}

// Reap deletes the ended task of container id once its output is all in
// the log: see Runtime.Reap.
func (r Runner) Reap(ctx context.Context, id string) error {
	if err := r.Engine.Reap(ctx, id); err != nil {
		return fmt.Errorf("reaping container %s: %w", id, err)
	}
	return nil
}

// Remove stops container id (SIGTERM, SIGKILL after grace) and deletes it
// and its log. A container that is not there is no error.
func (r Runner) Remove(ctx context.Context, id string, grace time.Duration) error {
	if err := r.Engine.Stop(ctx, id, grace); err != nil {
		return fmt.Errorf("removing container %s: %w", id, err)
	}
	if err := r.Engine.RemoveLog(id); err != nil {
		return fmt.Errorf("removing container %s: %w", id, err)
	}
	return nil
}

// List lists the containers in the engine's namespace.
func (r Runner) List(ctx context.Context) ([]Container, error) {
	cs, err := r.Engine.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing containers: %w", err)
	}
	return cs, nil
}

// LogPath is where container id's output is written.
func (r Runner) LogPath(id string) string { return r.Engine.LogPath(id) }

// Exec starts a process in the running task of container id (an
// instance's sidecar) and watches it: see Runtime.Exec.
func (r Runner) Exec(ctx context.Context, id string, spec ExecSpec) (<-chan Exit, error) {
	exits, err := r.Engine.Exec(ctx, id, spec)
	if err != nil {
		return nil, fmt.Errorf("running process %s in container %s: %w", spec.ID, id, err)
	}
	return exits, nil
}

// WatchExec watches a process started with Exec again (adoption).
func (r Runner) WatchExec(ctx context.Context, id, execID string) (<-chan Exit, error) {
	exits, err := r.Engine.WatchExec(ctx, id, execID)
	if err != nil {
		return nil, fmt.Errorf("watching process %s in container %s: %w", execID, id, err)
	}
	return exits, nil
}
