package e2e

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/driftless/driftless/api"
	"github.com/driftless/driftless/bus"
)

// TestNATSAuth runs the cluster on a NATS server with a user per process
// (each given its password in DRIFTLESS_NATS_PASSWORD) and checks, with
// the real processes: an anonymous client is refused; cell a's credential
// can neither subscribe to cell b's commands (nor read them while the
// controller sends b its start commands, which carry the app's env) nor
// forge b's heartbeats; apps still deploy on both cells and serve; no
// password shows in any process's log.
func TestNATSAuth(t *testing.T) {
	c := startCluster(t, []string{"a", "b"}, 1)

	nc, err := nats.Connect(c.natsURL, nats.Timeout(5*time.Second))
	if err == nil {
		nc.Close()
		t.Fatal("an anonymous NATS client connected")
	}
	if !strings.Contains(strings.ToLower(err.Error()), "authorization violation") {
		t.Fatalf("the anonymous client was refused with %v, want an authorization violation", err)
	}

	// A client holding cell a's credential.
	cred := c.natsCreds["a"]
	errs := make(chan error, 16)
	spy, err := bus.Connect(bus.ClientConfig{URL: c.natsURL, Name: "spy", User: cred.User, Password: cred.Password, Identity: cred.Identity,
		ErrorHandler: func(_ *nats.Conn, _ *nats.Subscription, err error) { errs <- err }}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer spy.Close()
	startsOfB, err := spy.SubscribeSync(bus.CellCommand("b", bus.VerbStart))
	if err != nil {
		t.Fatal(err)
	}
	if err := spy.Publish(bus.HeartbeatSubject("b"), []byte(`{"cell_id":"b","boot_id":"forged"}`)); err != nil {
		t.Fatal(err)
	}
	if err := spy.Flush(); err != nil {
		t.Fatalf("cell a's credential does not connect: %v", err)
	}
	refused := map[string]bool{}
	deadline := time.After(10 * time.Second)
	for len(refused) < 2 {
		select {
		case err := <-errs:
			if !errors.Is(err, nats.ErrPermissionViolation) {
				t.Fatalf("unexpected NATS error: %v", err)
			}
			for _, s := range []string{bus.CellCommand("b", bus.VerbStart), bus.HeartbeatSubject("b")} {
				if strings.Contains(err.Error(), `"`+s+`"`) {
					refused[s] = true
				}
			}
		case <-deadline:
			t.Fatalf("the server refused only %v of cell a's subscription to b's commands and its heartbeat for b", refused)
		}
	}

	// The platform still works: instances on both cells (so b got start
	// commands), serving through the router.
	c.addHello("apps/hello")
	c.write(map[string]string{"apps/hello/manifest.yml": helloManifest(4, "Hi")})
	c.commit("four instances")
	c.waitRunning(t, 120*time.Second, 4, func(insts []api.Instance) error {
		if pc := perCell(insts); pc["a"] != 2 || pc["b"] != 2 {
			return fmt.Errorf("instances per cell %v, want 2 and 2", pc)
		}
		return nil
	})
	if m, err := startsOfB.NextMsg(time.Second); err == nil {
		t.Fatalf("cell a's credential received a start command of cell b: %s", m.Data)
	}

	// No process logged a password.
	logs, _ := filepath.Glob(filepath.Join(c.dir, "*.log"))
	if len(logs) < 4 {
		t.Fatalf("only %d process logs: %v", len(logs), logs)
	}
	for _, path := range logs {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for user, cr := range c.natsCreds {
			if strings.Contains(string(data), cr.Password) {
				t.Errorf("%s shows the NATS password of %s", filepath.Base(path), user)
			}
		}
	}
}

// TestNATSUsersFile runs the controller with its own embedded NATS server
// (no --nats): the router authenticates against --nats-users, the remote
// cell (in its own network namespace) with its driftless token of role
// cell, which is good for that cell only; an anonymous client and a wrong
// password are refused, and an app deploys and serves.
func TestNATSUsersFile(t *testing.T) {
	c := startClusterOn(t, true, []string{"a"}, 1)
	cred := c.natsCreds["a"]
	tests := []struct {
		name string
		opts []nats.Option
	}{
		{"anonymous", nil},
		{"wrong password", []nats.Option{nats.UserInfo(cred.User, cred.Password+"x")}},
		{"the controller's own user", []nats.Option{nats.UserInfo("_driftless-controller", cred.Password)}},
	}
	for _, tt := range tests {
		nc, err := nats.Connect(c.natsURL, append(tt.opts, nats.Timeout(5*time.Second))...)
		if err == nil {
			nc.Close()
			t.Fatalf("%s: connected to the controller's NATS", tt.name)
		}
		if !strings.Contains(strings.ToLower(err.Error()), "authorization violation") {
			t.Fatalf("%s: refused with %v, want an authorization violation", tt.name, err)
		}
	}
	// The cell connected with its driftless token (no NATS password of
	// its own), and deploys.
	c.addHello("apps/hello")
	c.write(map[string]string{"apps/hello/manifest.yml": helloManifest(2, "Hi")})
	c.commit("two instances")
	c.waitRunning(t, 120*time.Second, 2, nil)
	// Its token is that cell's only: as another cell's NATS user it is
	// refused.
	tok, err := os.ReadFile(c.cellToken("a"))
	if err != nil {
		t.Fatal(err)
	}
	if nc, err := nats.Connect(c.natsURL, nats.UserInfo("b", strings.TrimSpace(string(tok))), nats.Timeout(5*time.Second)); err == nil {
		nc.Close()
		t.Fatal("cell a's token connected as cell b")
	}
}
