package runtime

import (
	"context"
	"fmt"
	"time"

	v1 "github.com/containerd/cgroups/v3/cgroup1/stats"
	v2 "github.com/containerd/cgroups/v3/cgroup2/stats"
	"github.com/containerd/containerd/errdefs"
	"github.com/containerd/typeurl/v2"
)

// Stats is what a container's processes use, read from its cgroup.
type Stats struct {
	// CPU is the CPU time its processes used since the container started.
	CPU time.Duration
	// MemoryBytes is its working set: the memory its cgroup charges, but
	// the page cache the kernel may reclaim at once (inactive files), as
	// docker stats and the kubelet count it.
	MemoryBytes int64
}

// Stats reads what container id's task uses from its cgroup (v1 or v2),
// through containerd's task metrics. ErrNotFound (wrapped) says the
// container or its task is gone.
func (r *Runtime) Stats(ctx context.Context, id string) (Stats, error) {
	t, err := r.task(ctx, id)
	if err != nil {
		return Stats{}, fmt.Errorf("reading the usage of %s: %w", id, err)
	}
	m, err := t.Metrics(ctx)
	if errdefs.IsNotFound(err) {
		return Stats{}, fmt.Errorf("reading the usage of %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Stats{}, fmt.Errorf("reading the usage of %s: %w", id, err)
	}
	data, err := typeurl.UnmarshalAny(m.Data)
	if err != nil {
		return Stats{}, fmt.Errorf("reading the usage of %s: decoding its metrics: %w", id, err)
	}
	s, ok := cgroupStats(data)
	if !ok {
		return Stats{}, fmt.Errorf("reading the usage of %s: metrics of type %T are no cgroup's", id, data)
	}
	return s, nil
}

// cgroupStats takes Stats out of a cgroup v1 or v2 metrics message; false
// for any other.
func cgroupStats(data any) (Stats, bool) {
	switch m := data.(type) {
	case *v1.Metrics:
		var s Stats
		if u := m.GetCPU().GetUsage(); u != nil {
			s.CPU = time.Duration(u.Total)
		}
		if mem := m.GetMemory(); mem != nil {
			s.MemoryBytes = workingSet(mem.GetUsage().GetUsage(), mem.GetTotalInactiveFile())
		}
		return s, true
	case *v2.Metrics:
		var s Stats
		if c := m.GetCPU(); c != nil {
			s.CPU = time.Duration(c.GetUsageUsec()) * time.Microsecond
		}
		if mem := m.GetMemory(); mem != nil {
			s.MemoryBytes = workingSet(mem.GetUsage(), mem.GetInactiveFile())
		}
		return s, true
	}
	return Stats{}, false
}

// workingSet is usage less the inactive file cache (never below zero).
func workingSet(usage, inactiveFile uint64) int64 {
	if inactiveFile > usage {
		return 0
	}
	return int64(usage - inactiveFile)
}

// DiskUsage is how many bytes container id's writable layer holds (its
// snapshot's own usage: what the instance wrote, not its image), as the
// snapshotter counts it (overlayfs: the size of the upper folder).
func (r *Runtime) DiskUsage(ctx context.Context, id string) (int64, error) {
	c, err := r.client.LoadContainer(ctx, id)
	if errdefs.IsNotFound(err) {
		return 0, fmt.Errorf("reading the disk usage of %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("reading the disk usage of %s: %w", id, err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("reading the disk usage of %s: %w", id, err)
	}
	sn := info.Snapshotter
	if sn == "" {
		sn = r.cfg.Snapshotter
	}
	u, err := r.client.SnapshotService(sn).Usage(ctx, info.SnapshotKey)
	if errdefs.IsNotFound(err) {
		return 0, fmt.Errorf("reading the disk usage of %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("reading the disk usage of %s: %w", id, err)
	}
	return u.Size, nil
}
