package runtime

import (
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// probeScript prints what a container can see of its own confinement,
// one "KEY value" line each, and tries things it must not be able to do.
// The pids limit is tried last: it makes forks fail.
const probeScript = `
echo "ARGS $0|$1"
echo "ENV FOO=$FOO IMAGE_VAR=$IMAGE_VAR"
echo "PWD $(pwd)"
echo "HOSTNAME $(hostname)"
echo "MYPID $$"
grep -E '^(Uid|Gid|Groups|NoNewPrivs|CapInh|CapPrm|CapEff|CapBnd|CapAmb):' /proc/self/status | sed 's/^/STATUS /'
echo "MEM $(cat /sys/fs/cgroup/memory/memory.limit_in_bytes)"
echo "MEMSW $(cat /sys/fs/cgroup/memory/memory.memsw.limit_in_bytes 2>/dev/null || echo none)"
echo "PIDS $(cat /sys/fs/cgroup/pids/pids.max)"
echo "SHARES $(cat /sys/fs/cgroup/cpu/cpu.shares)"
for n in mnt pid ipc uts net; do echo "NS $n $(readlink /proc/self/ns/$n)"; done
grep -E ' /proc/(kcore|keys|timer_list|acpi) | /proc/(sys|sysrq-trigger|bus) ' /proc/self/mountinfo | sed 's/^/MOUNT /'
touch /tmp/written && echo "TMP writable"
echo "ROOTHOME $(touch /root-owned 2>/dev/null && echo writable || echo refused)"
echo "BIND80 $(timeout 2 nc -l -p 80 2>&1)"
echo "MOUNTTRY $(mount -t tmpfs none /mnt >/dev/null 2>&1 && echo mounted || echo refused)"
echo "CGROUPWRITE $( (echo 1 > /sys/fs/cgroup/pids/pids.max) 2>/dev/null && echo written || echo refused)"
i=0; while [ $i -lt 40 ]; do sleep 3 & i=$((i+1)); done
echo "FORKS done"
`

// probeEnded reports whether the probe's output has its end: the last
// line, or the fork failure that stops it.
func probeEnded(out string) bool {
	return strings.Contains(out, "FORKS done") || strings.Contains(out, "can't fork") || strings.Contains(out, "Resource temporarily unavailable")
}

func testLockedDown(t *testing.T, r *Runtime, e *env) {
	id := randomID(t)
	a := attach(t, e, id)
	s := start(t, r, e, Spec{
		ID:         id,
		Args:       []string{"/bin/sh", "-c", probeScript, "argzero", "first arg"},
		Env:        []string{"FOO=bar baz"},
		WorkingDir: "/tmp",
		UID:        2000, GID: 2000,
		MemoryMB:  48,
		CPUShares: 512,
		PidsLimit: 16,
		NetNSPath: a.NetNSPath,
		Hostname:  "probe-0",
	})
	// The shell ends with status 2 when the pids limit stops its forks.
	waitExit(t, r, s.ID, 60*time.Second)
	// The log's last lines may land just after the exit: the shim copies
	// the output while it reports the exit (seen: "argzero: " cut short).
	out := readFile(t, r.LogPath(s.ID))
	for deadline := time.Now().Add(5 * time.Second); !probeEnded(out) && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
		out = readFile(t, r.LogPath(s.ID))
	}
	t.Logf("probe output:\n%s", out)
	lines := map[string][]string{}
	for _, l := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(l, " "); ok {
			lines[k] = append(lines[k], v)
		}
	}
	one := func(key string) string {
		if len(lines[key]) != 1 {
			t.Errorf("%s: %q, want one line", key, lines[key])
			return ""
		}
		return lines[key][0]
	}
	expect := func(key, want string) {
		t.Helper()
		if got := one(key); got != want {
			t.Errorf("%s = %q; want %q", key, got, want)
		}
	}

	expect("ARGS", "argzero|first arg")
	expect("ENV", "FOO=bar baz IMAGE_VAR=from-image")
	expect("PWD", "/tmp")
	expect("HOSTNAME", "probe-0")
	expect("MYPID", "1")
	expect("MEM", fmt.Sprint(48<<20))
	if sw := one("MEMSW"); sw != "none" && sw != fmt.Sprint(48<<20) {
		t.Errorf("memory+swap limit = %s; want %d", sw, 48<<20)
	}
	expect("PIDS", "16")
	expect("SHARES", "512")
	expect("TMP", "writable")
	expect("ROOTHOME", "refused")
	expect("MOUNTTRY", "refused")
	expect("CGROUPWRITE", "refused")
	if got := one("BIND80"); !strings.Contains(got, "denied") {
		t.Errorf("listening on port 80 without CAP_NET_BIND_SERVICE: %q; want permission denied", got)
	}
	if !strings.Contains(out, "can't fork") && !strings.Contains(out, "Resource temporarily unavailable") {
		t.Error("40 background processes under a pids limit of 16 never failed to fork")
	}

	status := map[string]string{}
	for _, v := range lines["STATUS"] {
		k, val, _ := strings.Cut(v, ":")
		status[k] = strings.Join(strings.Fields(val), " ")
	}
	want := map[string]string{
		"Uid": "2000 2000 2000 2000", "Gid": "2000 2000 2000 2000", "NoNewPrivs": "1",
		"CapInh": "0000000000000000", "CapPrm": "0000000000000000", "CapEff": "0000000000000000",
		"CapBnd": "0000000000000000", "CapAmb": "0000000000000000",
	}
	for k, w := range want {
		if status[k] != w {
			t.Errorf("/proc/self/status %s = %q; want %q", k, status[k], w)
		}
	}
	for _, g := range strings.Fields(status["Groups"]) {
		if g == "0" {
			t.Errorf("supplementary groups %q include root", status["Groups"])
		}
	}

	// Own mount, pid, ipc and uts namespaces; the attachment's network one.
	var netnsStat syscall.Stat_t
	if err := syscall.Stat(a.NetNSPath, &netnsStat); err != nil {
		t.Fatal(err)
	}
	for _, v := range lines["NS"] {
		kind, inside, _ := strings.Cut(v, " ")
		host, err := os.Readlink("/proc/self/ns/" + kind)
		if err != nil {
			t.Fatal(err)
		}
		if kind == "net" {
			if want := fmt.Sprintf("net:[%d]", netnsStat.Ino); inside != want {
				t.Errorf("network namespace %s; want the attachment's %s", inside, want)
			}
			continue
		}
		if inside == host || inside == "" {
			t.Errorf("%s namespace %q is the host's (%s)", kind, inside, host)
		}
	}
	if len(lines["NS"]) != 5 {
		t.Errorf("namespaces: %q", lines["NS"])
	}

	// containerd's default masked (mounted over) and read-only paths, those
	// this kernel has (runc skips the others).
	mounts := strings.Join(lines["MOUNT"], "\n")
	checked := 0
	for _, p := range []string{"/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/acpi"} {
		if _, err := os.Stat(p); err != nil {
			continue
		}
		checked++
		if !strings.Contains(mounts, " "+p+" ") {
			t.Errorf("%s is not masked; mounts:\n%s", p, mounts)
		}
	}
	for _, p := range []string{"/proc/sys", "/proc/sysrq-trigger", "/proc/bus"} {
		if _, err := os.Stat(p); err != nil {
			continue
		}
		checked++
		found := false
		for _, m := range lines["MOUNT"] {
			f := strings.Fields(m)
			if len(f) > 5 && f[4] == p && strings.HasPrefix(f[5], "ro") {
				found = true
			}
		}
		if !found {
			t.Errorf("%s is not mounted read-only; mounts:\n%s", p, mounts)
		}
	}
	if checked < 4 {
		t.Errorf("only %d masked or read-only paths exist on this host to check", checked)
	}
}
