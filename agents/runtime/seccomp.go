package runtime

import (
	"context"
	"slices"
	"syscall"

	"github.com/containerd/containerd/containers"
	"github.com/containerd/containerd/contrib/seccomp"
	"github.com/containerd/containerd/oci"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// refusedSyscalls are taken out of containerd's default seccomp profile,
// which allows them to every container: io_uring (a large kernel attack
// surface, a source of privilege escalations, and invisible to seccomp
// once a ring is set up). They fail with ENOSYS, as on a kernel without
// io_uring, so that runtimes that try it (libuv, liburing users) fall back
// to ordinary system calls.
var refusedSyscalls = []string{"io_uring_setup", "io_uring_enter", "io_uring_register"}

// withSeccomp gives the container containerd's default seccomp profile
// (Docker's), made for the capabilities already in the spec — it must
// come after them — with refusedSyscalls refused. Of what matters here,
// with no capabilities the profile refuses (EPERM unless said otherwise):
//   - creating namespaces, user namespaces among them: unshare(2) and
//     setns(2) altogether, clone(2) with any CLONE_NEW* flag, and clone3(2)
//     (ENOSYS, so that libcs fall back to clone);
//   - perf_event_open(2), bpf(2), mount(2), keyctl(2), add_key(2), kexec,
//     modules, reboot, clock and swap changes.
//
// Without it an app process (uid 2000, no capabilities) could still make a
// user namespace, become root in it and reach the kernel code that only
// root in a namespace may use; this kernel allows unprivileged user
// namespaces (user.max_user_namespaces > 0).
func withSeccomp() oci.SpecOpts {
	return func(_ context.Context, _ oci.Client, _ *containers.Container, s *specs.Spec) error {
		p := seccomp.DefaultProfile(s)
		refuse(p, refusedSyscalls)
		s.Linux.Seccomp = p
		return nil
	}
}

// refuse removes names from every rule of p and adds a rule that fails
// them with ENOSYS.
func refuse(p *specs.LinuxSeccomp, names []string) {
	kept := p.Syscalls[:0]
	for _, rule := range p.Syscalls {
		rule.Names = slices.DeleteFunc(slices.Clone(rule.Names), func(n string) bool { return slices.Contains(names, n) })
		if len(rule.Names) > 0 {
			kept = append(kept, rule)
		}
	}
	nosys := uint(syscall.ENOSYS)
	p.Syscalls = append(kept, specs.LinuxSyscall{Names: slices.Clone(names), Action: specs.ActErrno, ErrnoRet: &nosys})
}
