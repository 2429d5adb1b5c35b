package network

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A wrapped plugin runs with SIGINT ignored: the Ctrl-C of the agent's
// terminal does not kill it mid-way.
func TestWrappersIgnoreSIGINT(t *testing.T) {
	dir := t.TempDir()
	if err := writeWrappers(dir, map[string]string{"sleepy": "/bin/sleep"}); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(dir, "sleepy"), "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	status := filepath.Join("/proc", strconv.Itoa(cmd.Process.Pid), "status")
	var ignored string
	for i := 0; i < 100; i++ { // the script execs the plugin
		data, err := os.ReadFile(status)
		if err == nil && strings.Contains(string(data), "Name:\tsleep\n") {
			for _, line := range strings.Split(string(data), "\n") {
				if v, ok := strings.CutPrefix(line, "SigIgn:\t"); ok {
					ignored = v
				}
			}
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	mask, err := strconv.ParseUint(ignored, 16, 64)
	if err != nil {
		t.Fatalf("SigIgn of the wrapped plugin: %q (%v)", ignored, err)
	}
	if mask&(1<<(syscall.SIGINT-1)) == 0 {
		t.Fatalf("the wrapped plugin does not ignore SIGINT (SigIgn %s)", ignored)
	}
	_ = cmd.Process.Signal(syscall.SIGINT)
	time.Sleep(200 * time.Millisecond)
	if err := cmd.Process.Signal(syscall.Signal(0)); err != nil {
		t.Fatalf("the wrapped plugin died of SIGINT: %v", err)
	}
}

func TestFindPlugins(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	for _, p := range []string{filepath.Join(a, "bridge"), filepath.Join(a, "portmap"), filepath.Join(b, "portmap"),
		filepath.Join(b, "host-local"), filepath.Join(b, "loopback")} {
		if err := os.WriteFile(p, nil, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	found, err := findPlugins([]string{a, b})
	if err != nil {
		t.Fatal(err)
	}
	if found["portmap"] != filepath.Join(a, "portmap") || found["loopback"] != filepath.Join(b, "loopback") || len(found) != 4 {
		t.Fatalf("found %v", found)
	}
	if _, err := findPlugins([]string{b}); err == nil || !strings.Contains(err.Error(), "bridge missing") {
		t.Fatalf("without bridge: %v", err)
	}
}
