package bus

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/driftless/driftless/model"
)

// connect starts an embedded NATS server on a random loopback port (in
// this process: no root, nothing outside loopback) and connects to it;
// both end with the test.
func connect(t *testing.T) *nats.Conn {
	t.Helper()
	// The encoding tests use subjects of every role on one connection:
	// authenticated, but without the roles' permissions (permissions_test.go
	// checks those).
	auth, err := StaticUsers(Credential{User: "t", Password: "pw", Identity: Identity{Role: RoleController}})
	if err != nil {
		t.Fatal(err)
	}
	e, err := StartEmbedded(EmbeddedConfig{Listen: "127.0.0.1:0", Auth: auth, Log: slog.New(slog.DiscardHandler),
		perms: func(Identity) (*server.Permissions, error) { return nil, nil }})
	if err != nil {
		t.Fatalf("starting the embedded NATS server: %v", err)
	}
	t.Cleanup(e.Shutdown)
	if !strings.HasPrefix(e.URL(), "nats://127.0.0.1:") || strings.HasSuffix(e.URL(), ":0") {
		t.Fatalf("embedded server URL %q is not a loopback address with a port", e.URL())
	}
	nc, err := Connect(ClientConfig{URL: e.URL(), Name: "bus-test", User: "t", Password: "pw"}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("connecting: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}

func TestStartEmbeddedBadAddress(t *testing.T) {
	tests := []struct {
		addr, want string
	}{
		{"127.0.0.1", "embedded NATS address"},
		{"127.0.0.1:http", "embedded NATS port"},
	}
	for _, tt := range tests {
		e, err := StartEmbedded(EmbeddedConfig{Listen: tt.addr, Auth: func(string, string) (Identity, error) { return Identity{}, ErrUnknownUser }})
		if err == nil {
			e.Shutdown()
			t.Errorf("StartEmbedded(%q) started", tt.addr)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("StartEmbedded(%q) = %v, want an error about %q", tt.addr, err, tt.want)
		}
	}
}

func TestPublishDecode(t *testing.T) {
	nc := connect(t)
	sub, err := nc.SubscribeSync(LogsWildcard)
	if err != nil {
		t.Fatal(err)
	}
	want := *messages[7].msg.(*model.LogLine)
	want.App = "hello.v2"
	subject := LogSubject(want)
	if err := Publish(nc, subject, want); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	m, err := sub.NextMsg(5 * time.Second)
	if err != nil {
		t.Fatalf("waiting for the message on %s: %v", LogsWildcard, err)
	}
	if !strings.HasPrefix(m.Subject, "driftless.v1.logs.dev.hello_v2.") {
		t.Errorf("received on %q", m.Subject)
	}
	var got model.LogLine
	if err := Decode(m, &got); err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if got != want {
		t.Errorf("received %+v, want %+v", got, want)
	}
}

func TestPublishUnencodable(t *testing.T) {
	nc := connect(t)
	err := Publish(nc, EventSubject("dev", "hello"), map[string]any{"c": make(chan int)})
	var ute *json.UnsupportedTypeError
	if !errors.As(err, &ute) || !strings.Contains(err.Error(), "encoding message for "+EventSubject("dev", "hello")) {
		t.Errorf("Publish of a channel = %v, want an encoding error naming %s", err, EventSubject("dev", "hello"))
	}
}

func TestRequestRespond(t *testing.T) {
	nc := connect(t)
	subject := CellCommand("cell-1", VerbStart)
	var got StartInstance
	sub, err := nc.Subscribe(subject, func(m *nats.Msg) {
		if err := Decode(m, &got); err != nil {
			_ = Respond(m, Reply{Error: err.Error()})
			return
		}
		_ = Respond(m, Reply{OK: true, BootID: "b-1", Generation: 7})
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	req := messages[2].msg.(*StartInstance)
	var reply Reply
	if err := Request(context.Background(), nc, subject, req, &reply, 5*time.Second); err != nil {
		t.Fatalf("Request: %v", err)
	}
	if reply != (Reply{OK: true, BootID: "b-1", Generation: 7}) {
		t.Errorf("reply %+v", reply)
	}
	if got.Instance != req.Instance || got.Run.Droplet != req.Run.Droplet || got.Run.Env["GREETING"] != "hi" {
		t.Errorf("the cell received %+v, want %+v", got, *req)
	}
}

func TestRequestErrors(t *testing.T) {
	nc := connect(t)
	silent, bad := "driftless.v1.test.silent", "driftless.v1.test.bad"
	// One that never answers, one that answers what is not JSON.
	if _, err := nc.Subscribe(silent, func(*nats.Msg) {}); err != nil {
		t.Fatal(err)
	}
	if _, err := nc.Subscribe(bad, func(m *nats.Msg) { _ = m.Respond([]byte("not json")) }); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name    string
		ctx     context.Context
		subject string
		req     any
		timeout time.Duration
		want    string
		is      error
	}{
		{"nobody listens", context.Background(), CellCommand("gone", VerbStop), StopInstance{GUID: "g"}, 5 * time.Second,
			"request on driftless.v1.cells.gone.stop: nobody is listening", nats.ErrNoResponders},
		{"no answer in time", context.Background(), silent, StopInstance{GUID: "g"}, 200 * time.Millisecond,
			"request on " + silent, context.DeadlineExceeded},
		{"context ended", cancelled, silent, StopInstance{GUID: "g"}, 5 * time.Second, "request on " + silent, context.Canceled},
		{"reply not JSON", context.Background(), bad, StopInstance{GUID: "g"}, 5 * time.Second, "decoding reply from " + bad, nil},
		{"request not encodable", context.Background(), silent, make(chan int), 5 * time.Second, "encoding request for " + silent, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			var reply Reply
			err := Request(tt.ctx, nc, tt.subject, tt.req, &reply, tt.timeout)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Request = %v, want an error with %q", err, tt.want)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("Request = %v, want it to wrap %v", err, tt.is)
			}
			if d := time.Since(start); d > tt.timeout+time.Second {
				t.Errorf("Request took %v with a timeout of %v", d, tt.timeout)
			}
		})
	}
}

func TestRespondUnencodable(t *testing.T) {
	nc := connect(t)
	errs := make(chan error, 1)
	if _, err := nc.Subscribe(SubjectStage, func(m *nats.Msg) { errs <- Respond(m, make(chan int)) }); err != nil {
		t.Fatal(err)
	}
	var res StageResult
	_ = Request(context.Background(), nc, SubjectStage, StageRequest{ReleaseID: "r"}, &res, 300*time.Millisecond)
	select {
	case err := <-errs:
		if err == nil || !strings.Contains(err.Error(), "encoding reply on "+SubjectStage) {
			t.Errorf("Respond of a channel = %v, want an encoding error naming %s", err, SubjectStage)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the responder was never called")
	}
}

func TestDecodeNamesSubject(t *testing.T) {
	tests := []struct {
		name string
		data string
		into any
	}{
		{"not JSON", "{", &CellHeartbeat{}},
		{"wrong type", `{"generation":"many"}`, &CellHeartbeat{}},
		{"empty", "", &Reply{}},
		{"array for object", `[1]`, &StartInstance{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := &nats.Msg{Subject: HeartbeatSubject("c"), Data: []byte(tt.data)}
			err := Decode(m, tt.into)
			if err == nil || !strings.Contains(err.Error(), "decoding message on "+HeartbeatSubject("c")) {
				t.Fatalf("Decode(%q) = %v, want an error naming %s", tt.data, err, HeartbeatSubject("c"))
			}
			var se *json.SyntaxError
			var te *json.UnmarshalTypeError
			if !errors.As(err, &se) && !errors.As(err, &te) {
				t.Errorf("Decode(%q) = %v does not wrap the JSON error", tt.data, err)
			}
		})
	}
}

func TestRedactURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"nats://127.0.0.1:4222", "nats://127.0.0.1:4222"},
		{"nats://u:s3cret@n:4222", "nats://u:xxxxx@n:4222"},
		{"tls://u@n:4222", "tls://u@n:4222"},
		{"nats://n1:4222,nats://n2:4222", "nats://n1:4222,nats://n2:4222"},
	}
	for _, tt := range tests {
		if got := redactURL(tt.in); got != tt.want {
			t.Errorf("redactURL(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
