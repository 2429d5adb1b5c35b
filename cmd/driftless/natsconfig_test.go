package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
)

// TestNATSConfigCmd writes a node's configuration from a users file and
// reads it back with nats-server's parser; without the routes' password
// it writes nothing.
func TestNATSConfigCmd(t *testing.T) {
	dir := t.TempDir()
	users := filepath.Join(dir, "users.yml")
	data := "users:\n  - {user: ctl, password: \"a\", role: controller}\n  - {user: cell-1, password: \"b\", role: cell, cell: cell-1}\n" +
		"  - {user: router-1, password: \"c\", role: router}\n"
	if err := os.WriteFile(users, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "n1.conf")
	args := []string{"--users", users, "--out", out, "--name", "n1", "--route", "10.0.0.1:6222", "--route", "10.0.0.2:6222",
		"--store-dir", filepath.Join(dir, "js")}

	t.Setenv(natsRoutePasswordEnv, "")
	cmd := newNATSConfigCmd()
	cmd.SetArgs(args)
	if err := cmd.Execute(); err == nil {
		t.Fatal("nats-config wrote a configuration without the routes' password")
	}
	if _, err := os.Stat(out); err == nil {
		t.Fatal("nats-config wrote a file without the routes' password")
	}

	t.Setenv(natsRoutePasswordEnv, "route-secret")
	cmd = newNATSConfigCmd()
	cmd.SetArgs(args)
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(out)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", st.Mode().Perm())
	}
	opts, err := server.ProcessConfigFile(out)
	if err != nil {
		t.Fatalf("nats-server refuses it: %v", err)
	}
	if opts.ServerName != "n1" || len(opts.Users) != 3 || len(opts.Routes) != 2 || opts.Cluster.Password != "route-secret" || !opts.JetStream {
		t.Errorf("server %q, %d users, %d routes, route password %q, jetstream %v",
			opts.ServerName, len(opts.Users), len(opts.Routes), opts.Cluster.Password, opts.JetStream)
	}
}
