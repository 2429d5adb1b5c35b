package network

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"github.com/containerd/containerd/pkg/netns"
	"golang.org/x/sys/unix"
)

// NetNSDir is where named network namespaces are bind-mounted, the same
// folder `ip netns` uses, so that they outlive the agent process and show in
// `ip netns list`.
const NetNSDir = "/var/run/netns"

// createNetNS creates a new network namespace and bind-mounts it at path,
// which must not exist yet. It is containerd's pkg/netns recipe with a
// chosen name instead of a random one, so that an agent restarted later can
// find the namespace of an instance by its id.
func createNetNS(path string) (err error) {
	if err := ensureNetNSDir(filepath.Dir(path)); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o444)
	if err != nil {
		return fmt.Errorf("creating netns mount point %s: %w", path, err)
	}
	f.Close()
	defer func() {
		if err != nil {
			_ = os.Remove(path)
		}
	}()

	errc := make(chan error, 1)
	// Namespace work happens on a dedicated, locked OS thread. The thread
	// is never unlocked, so the Go runtime ends it with the goroutine
	// instead of reusing a thread whose namespace may be wrong.
	go func() {
		runtime.LockOSThread()
		threadNS := fmt.Sprintf("/proc/%d/task/%d/ns/net", os.Getpid(), unix.Gettid())
		orig, err := os.Open(threadNS)
		if err != nil {
			errc <- fmt.Errorf("opening the current network namespace: %w", err)
			return
		}
		defer orig.Close()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("unsharing a new network namespace: %w", err)
			return
		}
		// threadNS names the new namespace now.
		err = unix.Mount(threadNS, path, "none", unix.MS_BIND, "")
		if err != nil {
			err = fmt.Errorf("bind-mounting the network namespace at %s: %w", path, err)
		}
		// Going back is only a courtesy: the thread dies with the goroutine.
		_ = unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET)
		errc <- err
	}()
	return <-errc
}

// ensureNetNSDir creates dir and, like iproute2, makes it a shared mount
// point so that namespaces mounted in it propagate to other mount
// namespaces (containerd's shims, runc).
func ensureNetNSDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	err := unix.Mount("", dir, "none", unix.MS_SHARED|unix.MS_REC, "")
	if err == nil {
		return nil
	}
	if !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("making %s a shared mount: %w", dir, err)
	}
	// Not a mount point yet: bind-mount it onto itself first.
	if err := unix.Mount(dir, dir, "none", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind-mounting %s onto itself: %w", dir, err)
	}
	if err := unix.Mount("", dir, "none", unix.MS_SHARED|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("making %s a shared mount: %w", dir, err)
	}
	return nil
}

// isNetNS reports whether path is a mounted network namespace.
func isNetNS(path string) bool {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return false
	}
	return st.Type == unix.NSFS_MAGIC
}

// removeNetNS unmounts and removes the namespace at path; a missing one is
// fine.
func removeNetNS(path string) error {
	if err := netns.LoadNetNS(path).Remove(); err != nil {
		return fmt.Errorf("removing network namespace %s: %w", path, err)
	}
	return nil
}
