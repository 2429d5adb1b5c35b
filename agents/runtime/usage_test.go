package runtime

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/driftless/driftless/internal/testenv"
)

// TestUsage reads a real container's usage through containerd: the CPU
// time and memory from its cgroup (v1 or v2, whichever the host has), the
// bytes it wrote from its overlay snapshot; and ErrNotFound once it is
// gone.
func TestUsage(t *testing.T) {
	e := &env{ctrd: testenv.StartContainerd(t), reg: startRegistry(t), logDir: t.TempDir()}
	e.ref = e.reg.push(t, "droplets/dev/usage", testImage(t, "usage"))
	r := newRuntime(t, e)
	if err := r.Pull(timeout(t, 60*time.Second), e.ref); err != nil {
		t.Fatal(err)
	}
	// 2 MiB written to its writable layer, two seconds of one core, then
	// idle.
	const written = 2 << 20
	s := start(t, r, e, Spec{Args: []string{"/bin/sh", "-c",
		fmt.Sprintf("head -c %d /dev/zero > /tmp/blob; timeout 2 sh -c 'while :; do :; done'; echo busy-done; sleep 3600", written)}})
	waitLog(t, r.LogPath(s.ID), "busy-done")

	st, err := r.Stats(timeout(t, 10*time.Second), s.ID)
	if err != nil {
		t.Fatal(err)
	}
	if st.CPU < 200*time.Millisecond || st.CPU > time.Minute {
		t.Errorf("CPU time %s after a two-second busy loop", st.CPU)
	}
	if st.MemoryBytes <= 0 || st.MemoryBytes > 64<<20 {
		t.Errorf("memory %d bytes, want some, under the 64 MB limit", st.MemoryBytes)
	}
	disk, err := r.DiskUsage(timeout(t, 10*time.Second), s.ID)
	if err != nil {
		t.Fatal(err)
	}
	if disk < written || disk > written+(1<<20) {
		t.Errorf("disk usage %d bytes, want the %d written (and little more)", disk, written)
	}
	t.Logf("usage: CPU %s, memory %d bytes, disk %d bytes", st.CPU, st.MemoryBytes, disk)
	// CPU time only grows.
	again, err := r.Stats(timeout(t, 10*time.Second), s.ID)
	if err != nil || again.CPU < st.CPU {
		t.Errorf("a second read: %+v, %v; want CPU time ≥ %s", again, err, st.CPU)
	}

	if err := r.Stop(timeout(t, 30*time.Second), s.ID, time.Second); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		read func() error
	}{
		{"stats", func() error { _, err := r.Stats(timeout(t, 10*time.Second), s.ID); return err }},
		{"disk", func() error { _, err := r.DiskUsage(timeout(t, 10*time.Second), s.ID); return err }},
		{"stats of one never made", func() error { _, err := r.Stats(timeout(t, 10*time.Second), "i-never"); return err }},
	}
	for _, tt := range tests {
		if err := tt.read(); !errors.Is(err, ErrNotFound) {
			t.Errorf("%s of a container gone: %v, want ErrNotFound", tt.name, err)
		}
	}
}
