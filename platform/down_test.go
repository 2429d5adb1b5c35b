package platform

import (
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestDownReportString(t *testing.T) {
	tests := []struct {
		rep  DownReport
		want string
	}{
		{DownReport{}, "nothing to stop"},
		{DownReport{NATLeft: []string{"-A X -s 10.1.0.2/32"}}, "nothing to stop"},
		{DownReport{Tasks: 2, Containers: 3, Attachments: 2, FilterRules: 9, Bridge: "dle1", Processes: 1},
			"2 running app instance(s) stopped, 3 container(s) removed, 2 network attachment(s) removed, " +
				"9 filter rule(s) of the walls removed, bridge dle1 deleted, 1 process(es) of the platform stopped"},
		{DownReport{Mounts: 1}, "1 mount(s) unmounted"},
	}
	for _, tt := range tests {
		if got := tt.rep.String(); got != tt.want {
			t.Errorf("%+v.String() = %q, want %q", tt.rep, got, tt.want)
		}
	}
}

func TestMountsUnder(t *testing.T) {
	const info = `22 1 8:1 / / rw - ext4 /dev/sda1 rw
30 22 0:50 / /d/data rw - ext4 /dev/sdb1 rw
31 30 0:51 / /d/data/containerd/state/run/x/rootfs rw - overlay overlay rw
32 31 0:52 / /d/data/containerd/state/run/x/rootfs/proc rw - proc proc rw
33 22 0:53 / /d/data2/containerd/rootfs rw - overlay overlay rw
34 30 0:54 / /d/data/a\040b rw - tmpfs tmpfs rw
35 30 0:54 / /d/data/a\040b rw - tmpfs tmpfs rw
`
	got := mountsUnder(info, "/d/data")
	want := []string{"/d/data/containerd/state/run/x/rootfs/proc", "/d/data/containerd/state/run/x/rootfs", "/d/data/a b"}
	if !slices.Equal(got, want) {
		t.Errorf("mountsUnder = %q, want %q", got, want)
	}
}

func TestProcessMarks(t *testing.T) {
	m := leftProcessMarks("/d/data", "/d/ctrd.sock", "driftless")
	sys := leftProcessMarks("/d/data", SystemContainerdSocket, "")
	tests := []struct {
		name  string
		marks processMarks
		args  string
		want  bool
	}{
		{"dev's consul", m, "/w/bin/consul agent -dev -config-file /d/data/consul/acl.hcl", true},
		{"dev's containerd", m, "containerd --config /d/data/containerd/config.toml", true},
		{"dev's postgres", m, "/usr/lib/postgresql/15/bin/postgres -D /d/data/postgres/cluster", true},
		{"another data folder", m, "containerd --config /d/data2/containerd/config.toml", false},
		{"the data folder itself", m, "consul agent -data-dir /d/data", true},
		{"not a child of dev", m, "vim /d/data/admin.token", false},
		{"dev's shim", m, "/usr/bin/containerd-shim-runc-v2 -namespace driftless -id a-1 -address /d/ctrd.sock", true},
		{"another namespace's shim", m, "/usr/bin/containerd-shim-runc-v2 -namespace k8s.io -id a-1 -address /d/ctrd.sock", false},
		{"another containerd's shim", m, "/usr/bin/containerd-shim-runc-v2 -namespace driftless -id a-1 -address /e/ctrd.sock", false},
		{"the system containerd's shim", sys, "/usr/bin/containerd-shim-runc-v2 -namespace driftless -id a-1 -address " + SystemContainerdSocket, false},
		{"no command line", m, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var args []string
			if tt.args != "" {
				args = strings.Fields(tt.args)
			}
			if got := tt.marks.marked(args); got != tt.want {
				t.Errorf("marked(%q) = %v, want %v", tt.args, got, tt.want)
			}
		})
	}
}

func TestLockDataDir(t *testing.T) {
	dir := t.TempDir()
	unlock, err := lockDataDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	_, err = lockDataDir(dir)
	var running *DevRunningError
	if !errors.As(err, &running) || running.Pid <= 0 || !strings.Contains(err.Error(), "dev is running on "+dir) {
		t.Fatalf("second lock: %v, want a DevRunningError with this process's pid", err)
	}
	unlock()
	again, err := lockDataDir(dir)
	if err != nil {
		t.Fatalf("lock after unlock: %v", err)
	}
	again()
	if _, err := lockDataDir(filepath.Join(dir, "missing")); err == nil {
		t.Error("locking a missing folder succeeded")
	}
}

func TestWithRecordedHost(t *testing.T) {
	dir := t.TempDir()
	rec := devHost{Containerd: "/d/ctrd.sock", Namespace: "driftless", Network: "driftless", Bridge: "dle1", Subnet: "10.170.0.0/16",
		PluginDirs: []string{"/opt/cni/bin"}, Address: "127.0.0.1"}
	if err := writeDevHost(dir, rec); err != nil {
		t.Fatal(err)
	}
	given := DefaultDevConfig()
	given.DataDir = dir
	given.Agent.Network.Bridge = "dle2" // a flag given
	tests := []struct {
		name                 string
		cfg                  DevConfig
		sock, bridge, subnet string
	}{
		{"flags left at their defaults", withDir(DefaultDevConfig(), dir), "/d/ctrd.sock", "dle1", "10.170.0.0/16"},
		{"a flag given wins", given, "/d/ctrd.sock", "dle2", "10.170.0.0/16"},
		{"no record", withDir(DefaultDevConfig(), t.TempDir()), SystemContainerdSocket, "driftless0", "10.200.0.0/16"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := withRecordedHost(tt.cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			a := got.Agent
			if a.Runtime.Address != tt.sock || a.Network.Bridge != tt.bridge || a.Network.Subnet != tt.subnet {
				t.Errorf("containerd %s, bridge %s, subnet %s; want %s, %s, %s",
					a.Runtime.Address, a.Network.Bridge, a.Network.Subnet, tt.sock, tt.bridge, tt.subnet)
			}
		})
	}
}

func withDir(cfg DevConfig, dir string) DevConfig {
	cfg.DataDir = dir
	return cfg
}
