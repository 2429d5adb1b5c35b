package bus

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/driftless/driftless/model"
)

// authServer is an embedded server (the real nats-server) with one user of
// each role: ctl (controller), rtr (router), cell-a, cell-b and host (cell
// host.example.com).
type authServer struct {
	url   string
	creds map[string]Credential
}

func startAuthServer(t *testing.T) *authServer {
	t.Helper()
	creds := map[string]Credential{
		"ctl":    {User: "ctl", Password: "pw-ctl", Identity: Identity{Role: RoleController}},
		"rtr":    {User: "rtr", Password: "pw-rtr", Identity: Identity{Role: RoleRouter}},
		"cell-a": {User: "cell-a", Password: "pw-a", Identity: Identity{Role: RoleCell, Cell: "cell-a"}},
		"cell-b": {User: "cell-b", Password: "pw-b", Identity: Identity{Role: RoleCell, Cell: "cell-b"}},
		"host":   {User: "host", Password: "pw-h", Identity: Identity{Role: RoleCell, Cell: "host.example.com"}},
	}
	var list []Credential
	for _, c := range creds {
		list = append(list, c)
	}
	auth, err := StaticUsers(list...)
	if err != nil {
		t.Fatal(err)
	}
	e, err := StartEmbedded(EmbeddedConfig{Listen: "127.0.0.1:0", Auth: auth, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("starting the embedded NATS server: %v", err)
	}
	t.Cleanup(e.Shutdown)
	return &authServer{url: e.URL(), creds: creds}
}

// client connects as one of the server's users; the channel gets the
// connection's asynchronous errors (permission violations).
func (s *authServer) client(t *testing.T, user string) (*nats.Conn, chan error) {
	t.Helper()
	c := s.creds[user]
	errs := make(chan error, 16)
	nc, err := Connect(ClientConfig{URL: s.url, Name: "test-" + user, User: c.User, Password: c.Password, Identity: c.Identity,
		ErrorHandler: func(_ *nats.Conn, _ *nats.Subscription, err error) { errs <- err }}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("connecting as %s: %v", user, err)
	}
	t.Cleanup(nc.Close)
	if err := nc.Flush(); err != nil {
		t.Fatalf("%s is not connected: %v", user, err)
	}
	return nc, errs
}

// violation waits for a permission violation naming subject; false if
// none came within wait.
func violation(errs chan error, subject string, wait time.Duration) (bool, error) {
	deadline := time.After(wait)
	for {
		select {
		case err := <-errs:
			if errors.Is(err, nats.ErrPermissionViolation) && strings.Contains(err.Error(), `"`+subject+`"`) {
				return true, nil
			}
			return false, err
		case <-deadline:
			return false, nil
		}
	}
}

func TestAuthRefused(t *testing.T) {
	s := startAuthServer(t)
	tests := []struct {
		name     string
		opts     []nats.Option
		refused  bool
		contains string
	}{
		{"anonymous", nil, true, "authorization violation"},
		{"unknown user", []nats.Option{nats.UserInfo("nobody", "pw-ctl")}, true, "authorization violation"},
		{"wrong password", []nats.Option{nats.UserInfo("ctl", "pw-rtr")}, true, "authorization violation"},
		{"empty password", []nats.Option{nats.UserInfo("ctl", "")}, true, "authorization violation"},
		{"password in a token", []nats.Option{nats.Token("pw-ctl")}, true, "authorization violation"},
		{"right password", []nats.Option{nats.UserInfo("ctl", "pw-ctl")}, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nc, err := nats.Connect(s.url, tt.opts...)
			if !tt.refused {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				nc.Close()
				return
			}
			if err == nil {
				nc.Close()
				t.Fatal("connected")
			}
			if !strings.Contains(strings.ToLower(err.Error()), tt.contains) {
				t.Errorf("refused with %v, want %q", err, tt.contains)
			}
			if strings.Contains(err.Error(), "pw-") {
				t.Errorf("the error %q shows a password", err)
			}
		})
	}
}

// TestPermissions checks, for each role, subjects it may and may not use:
// a forbidden one ends in a permission violation from the server, an
// allowed one in none.
func TestPermissions(t *testing.T) {
	s := startAuthServer(t)
	tests := []struct {
		who, op, subject string
		allowed          bool
	}{
		// A cell: its own subjects only.
		{"cell-a", "pub", HeartbeatSubject("cell-a"), true},
		{"cell-a", "pub", InstancesSubject("cell-a"), true},
		{"cell-a", "pub", LogSubject(model.LogLine{Space: "dev", App: "hello", Source: model.LogApp, Index: 0}), true},
		{"cell-a", "pub", LogSubject(model.LogLine{Space: "dev", App: "hello", Source: model.LogStaging, Index: 0}), true},
		{"cell-a", "pub", LogSubject(model.LogLine{Space: "dev", App: "hello", Source: model.LogCell, Index: 1}), true},
		{"cell-a", "pub", LogSubject(model.LogLine{Space: "dev", App: "hello", Source: model.LogHealth, Index: 2}), true},
		{"cell-a", "pub", LogSubject(model.LogLine{Space: "dev", App: "hello", Source: model.LogRouter, Index: 0}), false},
		{"cell-a", "pub", LogSubject(model.LogLine{Space: "dev", App: "hello", Source: model.LogAPI, Index: 0}), false},
		{"cell-a", "pub", EventSubject("dev", "hello"), false},
		{"cell-a", "pub", "$JS.API.STREAM.LIST", false},
		{"cell-a", "pub", HeartbeatSubject("cell-b"), false},
		{"cell-a", "pub", InstancesSubject("cell-b"), false},
		{"cell-a", "pub", CellCommand("cell-b", VerbStart), false},
		{"cell-a", "pub", CellCommand("cell-a", VerbStart), false},
		{"cell-a", "pub", SubjectWake, false},
		{"cell-a", "pub", SubjectStage, false},
		{"cell-a", "pub", "_INBOX.controller.x.y", false},
		{"cell-a", "sub", CellCommand("cell-a", VerbStart), true},
		{"cell-a", "sub", CellCommand("cell-a", VerbStop), true},
		{"cell-a", "sub", SubjectStage, true},
		{"cell-a", "sub", CellCommand("cell-b", VerbStart), false},
		{"cell-a", "sub", CellCommand("cell-b", VerbStop), false},
		{"cell-a", "sub", CellCommand("*", VerbStart), false},
		{"cell-a", "sub", HeartbeatWildcard, false},
		{"cell-a", "sub", LogsWildcard, false},
		{"cell-a", "sub", "_INBOX.controller.>", false},
		{"cell-a", "sub", "_INBOX.cell.cell-b.>", false},
		{"cell-a", "sub", "_INBOX.>", false},
		{"cell-a", "sub", ">", false},
		// A cell named after a host's full name: its subjects hold the token.
		{"host", "pub", HeartbeatSubject("host.example.com"), true},
		{"host", "sub", CellCommand("host.example.com", VerbStart), true},
		{"host", "sub", "_INBOX.cell.host_example_com.>", true},
		{"host", "pub", HeartbeatSubject("cell-a"), false},
		// A router: wake and activity only.
		{"rtr", "pub", SubjectWake, true},
		{"rtr", "pub", SubjectActivity, true},
		{"rtr", "pub", CellCommand("cell-a", VerbStart), false},
		{"rtr", "pub", HeartbeatSubject("cell-a"), false},
		{"rtr", "pub", EventSubject("dev", "hello"), false},
		{"rtr", "pub", LogSubject(model.LogLine{Space: "dev", App: "hello", Source: model.LogRouter, Index: 3}), true},
		{"rtr", "pub", LogSubject(model.LogLine{Space: "dev", App: "hello", Source: model.LogApp, Index: 0}), false},
		{"rtr", "pub", "$JS.API.STREAM.LIST", false},
		{"rtr", "sub", "_INBOX.router.>", true},
		{"rtr", "sub", SubjectWake, false},
		{"rtr", "sub", HeartbeatWildcard, false},
		{"rtr", "sub", "_INBOX.controller.>", false},
		{"rtr", "sub", LogsWildcard, false},
		// The controller: what it sends and handles.
		{"ctl", "pub", CellCommand("cell-a", VerbStart), true},
		{"ctl", "pub", CellCommand("cell-b", VerbStop), true},
		{"ctl", "pub", SubjectStage, true},
		{"ctl", "pub", EventSubject("dev", "hello"), true},
		{"ctl", "pub", EventSubject("_", "_"), true},
		{"ctl", "pub", LogSubject(model.LogLine{Space: "dev", App: "hello", Source: model.LogAPI, Index: 0}), true},
		{"ctl", "pub", LogSubject(model.LogLine{Space: "dev", App: "hello", Source: model.LogApp, Index: 0}), false},
		{"ctl", "pub", "$JS.API.STREAM.LIST", true},
		{"ctl", "pub", HeartbeatSubject("cell-a"), false},
		{"ctl", "pub", SubjectWake, false},
		{"ctl", "sub", HeartbeatWildcard, true},
		{"ctl", "sub", InstancesWildcard, true},
		{"ctl", "sub", LogsWildcard, false},
		{"ctl", "sub", SubjectWake, true},
		{"ctl", "sub", SubjectActivity, true},
		{"ctl", "sub", CellCommand("cell-a", VerbStart), false},
		{"ctl", "sub", "_INBOX.router.>", false},
		{"ctl", "sub", "_INBOX.cell.cell-a.>", false},
	}
	for _, tt := range tests {
		allow := "denied"
		if tt.allowed {
			allow = "allowed"
		}
		t.Run(tt.who+" "+tt.op+" "+tt.subject+" "+allow, func(t *testing.T) {
			nc, errs := s.client(t, tt.who)
			if tt.op == "pub" {
				if err := nc.Publish(tt.subject, []byte("{}")); err != nil {
					t.Fatal(err)
				}
			} else if _, err := nc.SubscribeSync(tt.subject); err != nil {
				t.Fatal(err)
			}
			_ = nc.Flush()
			wait := 2 * time.Second
			if tt.allowed {
				wait = 300 * time.Millisecond
			}
			got, err := violation(errs, tt.subject, wait)
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if got == tt.allowed {
				t.Errorf("%s %s %s: permission violation %v, want %v", tt.who, tt.op, tt.subject, got, !tt.allowed)
			}
		})
	}
}

// TestRolesDoTheirJobs runs each request/reply and stream of the contract
// between real clients of each role, and checks that what a cell may not
// see or forge does not get through.
func TestRolesDoTheirJobs(t *testing.T) {
	s := startAuthServer(t)
	ctl, _ := s.client(t, "ctl")
	rtr, _ := s.client(t, "rtr")
	cellA, errsA := s.client(t, "cell-a")
	cellB, _ := s.client(t, "cell-b")
	ctx := context.Background()

	// cell-b serves its commands, cell-a tries to listen in.
	if _, err := cellB.Subscribe(CellCommand("cell-b", VerbStart), func(m *nats.Msg) {
		_ = Respond(m, Reply{OK: true, BootID: "b"})
	}); err != nil {
		t.Fatal(err)
	}
	spy, err := cellA.SubscribeSync(CellCommand("cell-b", VerbStart))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cellA.QueueSubscribe(SubjectStage, QueueStagers, func(m *nats.Msg) {
		_ = Respond(m, StageResult{Droplet: "sha256:d"})
	}); err != nil {
		t.Fatal(err)
	}
	hbs, err := ctl.SubscribeSync(HeartbeatWildcard)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ctl.Subscribe(SubjectWake, func(m *nats.Msg) { _ = Respond(m, Reply{OK: true}) }); err != nil {
		t.Fatal(err)
	}
	acts, err := ctl.SubscribeSync(SubjectActivity)
	if err != nil {
		t.Fatal(err)
	}
	for _, nc := range []*nats.Conn{ctl, cellA, cellB} {
		_ = nc.Flush()
	}

	var reply Reply
	if err := Request(ctx, ctl, CellCommand("cell-b", VerbStart), messages[2].msg, &reply, 5*time.Second); err != nil || !reply.OK {
		t.Fatalf("the controller's start command to cell-b: %+v, %v", reply, err)
	}
	if m, err := spy.NextMsg(300 * time.Millisecond); err == nil {
		t.Errorf("cell-a received cell-b's command: %s", m.Data)
	}
	if ok, _ := violation(errsA, CellCommand("cell-b", VerbStart), 2*time.Second); !ok {
		t.Error("cell-a's subscription to cell-b's commands was not refused")
	}
	var res StageResult
	if err := Request(ctx, ctl, SubjectStage, StageRequest{ReleaseID: "r"}, &res, 5*time.Second); err != nil || res.Droplet != "sha256:d" {
		t.Fatalf("staging through cell-a: %+v, %v", res, err)
	}
	// A forged heartbeat never reaches the controller; the cell's own does.
	_ = cellA.Publish(HeartbeatSubject("cell-b"), []byte(`{"cell_id":"cell-b"}`))
	_ = cellA.Publish(HeartbeatSubject("cell-a"), []byte(`{"cell_id":"cell-a"}`))
	m, err := hbs.NextMsg(5 * time.Second)
	if err != nil || m.Subject != HeartbeatSubject("cell-a") {
		t.Fatalf("the controller's first heartbeat: %v, %v; want cell-a's own", m, err)
	}
	// The router wakes and reports.
	if err := Request(ctx, rtr, SubjectWake, WakeRequest{Space: "dev", App: "a"}, &reply, 5*time.Second); err != nil || !reply.OK {
		t.Fatalf("the router's wake request: %+v, %v", reply, err)
	}
	if err := Publish(rtr, SubjectActivity, RouterActivity{Router: "r"}); err != nil {
		t.Fatal(err)
	}
	if _, err := acts.NextMsg(5 * time.Second); err != nil {
		t.Fatalf("the controller got no router activity: %v", err)
	}
}

func TestStaticUsersAndFirstOf(t *testing.T) {
	own, err := StaticUsers(Credential{User: "ctl", Password: "p1", Identity: Identity{Role: RoleController}})
	if err != nil {
		t.Fatal(err)
	}
	others, err := StaticUsers(Credential{User: "c1", Password: "p2", Identity: Identity{Role: RoleCell, Cell: "c1"}},
		Credential{User: "ctl", Password: "p3", Identity: Identity{Role: RoleRouter}})
	if err != nil {
		t.Fatal(err)
	}
	auth := FirstOf(own, nil, others)
	tests := []struct {
		user, pw string
		want     Identity
		err      error
	}{
		{"ctl", "p1", Identity{Role: RoleController}, nil},
		{"ctl", "p3", Identity{}, ErrBadPassword}, // the first that knows the user decides
		{"c1", "p2", Identity{Role: RoleCell, Cell: "c1"}, nil},
		{"c1", "p1", Identity{}, ErrBadPassword},
		{"nobody", "p1", Identity{}, ErrUnknownUser},
	}
	for _, tt := range tests {
		id, err := auth(tt.user, tt.pw)
		if id != tt.want || !errors.Is(err, tt.err) || (tt.err == nil) != (err == nil) {
			t.Errorf("auth(%q) = %v, %v; want %v, %v", tt.user, id, err, tt.want, tt.err)
		}
		if err != nil && strings.Contains(err.Error(), tt.pw) {
			t.Errorf("auth(%q)'s error %q shows the password", tt.user, err)
		}
	}
	bad := []Credential{
		{User: "", Password: "p", Identity: Identity{Role: RoleRouter}},
		{User: "u", Password: "", Identity: Identity{Role: RoleRouter}},
		{User: "u", Password: "p", Identity: Identity{Role: "admin"}},
		{User: "u", Password: "p", Identity: Identity{Role: RoleCell}},
		{User: "u", Password: "p", Identity: Identity{Role: RoleCell, Cell: "a*b"}},
		{User: "u", Password: "p", Identity: Identity{Role: RoleCell, Cell: "a>"}},
		{User: "u", Password: "p", Identity: Identity{Role: RoleCell, Cell: "a b"}},
		{User: "u", Password: "p", Identity: Identity{Role: RoleRouter, Cell: "c"}},
	}
	for _, c := range bad {
		if _, err := StaticUsers(c); err == nil {
			t.Errorf("StaticUsers(%+v) accepted it", c.Identity)
		}
	}
	if _, err := StaticUsers(Credential{User: "u", Password: "p", Identity: Identity{Role: RoleRouter}},
		Credential{User: "u", Password: "q", Identity: Identity{Role: RoleRouter}}); err == nil {
		t.Error("StaticUsers accepted a user given twice")
	}
	if _, err := StartEmbedded(EmbeddedConfig{Listen: "127.0.0.1:0"}); err == nil {
		t.Error("StartEmbedded started without an authenticator")
	}
}

// TestOperationsDocMatches checks that docs/operations.md's nats-server
// configuration names every subject of every role's permissions (its cell
// is cell-1), so that the external server's users follow the contract.
func TestOperationsDocMatches(t *testing.T) {
	data, err := os.ReadFile("../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	for _, id := range []Identity{{Role: RoleController}, {Role: RoleRouter}, {Role: RoleCell, Cell: "cell-1"}} {
		p, err := Permissions(id)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range append(p.Publish, p.Subscribe...) {
			if !strings.Contains(doc, `"`+s+`"`) {
				t.Errorf("docs/operations.md does not give %s %q", id, s)
			}
		}
	}
}
