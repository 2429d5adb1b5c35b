package testenv

import (
	"context"
	"testing"

	consul "github.com/hashicorp/consul/api"
	"github.com/nats-io/nats.go"

	"github.com/driftless/driftless/bus"
)

// TestEngines starts every engine and checks that each really answers.
func TestEngines(t *testing.T) {
	c := StartConsul(t)
	if _, _, err := c.Client.KV().Get("nothing", nil); err != nil {
		t.Fatalf("consul KV: %v", err)
	}
	if _, err := c.Client.KV().Put(&consul.KVPair{Key: "driftless/test", Value: []byte("x")}, nil); err != nil {
		t.Fatalf("consul KV put: %v", err)
	}

	n := StartNATS(t)
	if nc, err := nats.Connect(n.URL); err == nil {
		nc.Close()
		t.Fatal("an anonymous NATS client connected")
	}
	n.Connect(t, bus.Identity{Role: bus.RoleController}).Close()

	ctr := StartContainerd(t)
	v, err := ctr.Client.Version(context.Background())
	if err != nil {
		t.Fatalf("containerd version: %v", err)
	}
	t.Logf("containerd %s", v.Version)

	dir := t.TempDir()
	Git(t, dir, "init", "-q", "-b", "main")
	if out := Git(t, dir, "symbolic-ref", "--short", "HEAD"); out != "main" {
		t.Fatalf("git branch = %q", out)
	}
}
