package runtime

import (
	"context"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/driftless/driftless/internal/children"
)

// testSeccomp runs testdata/sysprobe (a static Go program) in a container
// as an app runs (uid 2000, no capabilities) and checks that each system
// call the seccomp profile must refuse fails inside, with EPERM or ENOSYS.
// Outside a container, as an unprivileged user, this host allows them all.
func testSeccomp(t *testing.T, r *Runtime, e *env) {
	root, err := children.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	build := exec.Command("go", "build", "-o", filepath.Join(dir, "sysprobe"), "./agents/runtime/testdata/sysprobe")
	build.Dir = root
	build.Env = append(build.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the probe: %v\n%s", err, out)
	}
	s := start(t, r, e, Spec{
		Args: []string{"/probe/sysprobe"},
		UID:  2000, GID: 2000,
		Mounts: []Mount{{Source: dir, Destination: "/probe", ReadOnly: true}},
	})
	if ex := waitExit(t, r, s.ID, 30*time.Second); ex.Status != 0 {
		t.Errorf("probe exited with %d", ex.Status)
	}
	out := readFile(t, r.LogPath(s.ID))
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(out, "DONE") && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
		out = readFile(t, r.LogPath(s.ID))
	}
	t.Logf("probe output:\n%s", out)
	got := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(l, " "); ok {
			got[k] = v
		}
	}
	for _, c := range []struct{ call, want string }{
		{"UNSHARE_USER", "EPERM"}, // unshare(CLONE_NEWUSER)
		{"CLONE_USER", "EPERM"},   // clone(CLONE_NEWUSER)
		{"IO_URING_SETUP", "ENOSYS"},
		{"PERF_EVENT_OPEN", "EPERM"},
	} {
		if got[c.call] != c.want {
			t.Errorf("%s inside the container: %q; want refused with %s", c.call, got[c.call], c.want)
		}
	}
}

// TestSeccompProfile checks the profile made for a container without
// capabilities: no rule allows io_uring, unshare, setns or clone3, one
// refuses io_uring with ENOSYS, clone is allowed only without CLONE_NEW*
// flags, and anything unlisted fails with EPERM.
func TestSeccompProfile(t *testing.T) {
	s := &specs.Spec{Process: &specs.Process{Capabilities: &specs.LinuxCapabilities{}}, Linux: &specs.Linux{}}
	if err := withSeccomp()(context.Background(), nil, nil, s); err != nil {
		t.Fatal(err)
	}
	p := s.Linux.Seccomp
	if p == nil || p.DefaultAction != specs.ActErrno || (p.DefaultErrnoRet != nil && *p.DefaultErrnoRet != uint(syscall.EPERM)) {
		t.Fatalf("default action: %+v", p)
	}
	nosys := false
	for _, r := range p.Syscalls {
		for _, name := range r.Names {
			switch {
			case r.Action == specs.ActAllow && slices.Contains([]string{"io_uring_setup", "io_uring_enter", "io_uring_register", "unshare", "setns", "clone3"}, name):
				t.Errorf("a rule allows %s: %+v", name, r)
			case r.Action == specs.ActAllow && name == "clone":
				if len(r.Args) != 1 || r.Args[0].Op != specs.OpMaskedEqual || r.Args[0].Value&syscall.CLONE_NEWUSER == 0 || r.Args[0].ValueTwo != 0 {
					t.Errorf("clone allowed with namespace flags: %+v", r)
				}
			case name == "io_uring_setup" && r.Action == specs.ActErrno && r.ErrnoRet != nil && *r.ErrnoRet == uint(syscall.ENOSYS):
				nosys = true
			}
		}
	}
	if !nosys {
		t.Error("no rule refuses io_uring_setup with ENOSYS")
	}
}
