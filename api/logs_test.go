package api

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/driftless/driftless/bus"
	"github.com/driftless/driftless/internal/testenv"
	"github.com/driftless/driftless/journal"
	"github.com/driftless/driftless/model"
	"github.com/driftless/driftless/reconciler"
	"github.com/driftless/driftless/tokens"
)

// journalEnv is the API over a real journal (JetStream on an embedded
// NATS server) holding the lines and events a cell and a controller
// published.
type journalEnv struct {
	srv      *httptest.Server
	tokens   *memTokens
	admin    string
	auditor  string
	other    string
	publishL func(model.LogLine)
	publishE func(model.Event)
}

func startJournalAPI(t *testing.T) *journalEnv {
	t.Helper()
	n := testenv.StartNATS(t)
	ctl := n.Connect(t, bus.Identity{Role: bus.RoleController})
	cell := n.Connect(t, bus.Identity{Role: bus.RoleCell, Cell: "cell-1"})
	j, err := journal.New(ctl, journal.DefaultConfig(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := j.EnsureSpace(ctx, "dev"); err != nil {
		t.Fatal(err)
	}
	if err := j.EnsureEvents(ctx); err != nil {
		t.Fatal(err)
	}
	b := &fakeBackend{apps: []reconciler.AppState{{App: model.App{Space: "dev", Name: "web"}}, {App: model.App{Space: "prod", Name: "api"}}}}
	store := newMemTokens()
	e := &journalEnv{tokens: store, admin: store.add("admin", tokens.RoleAdmin), auditor: store.add("audit", tokens.RoleSpaceAuditor, "dev"),
		other: store.add("other", tokens.RoleSpaceDeveloper, "prod")}
	e.srv = httptest.NewServer(NewHandler(ServerConfig{Backend: b, Journal: j, Tokens: store, Log: slog.New(slog.DiscardHandler)}))
	t.Cleanup(e.srv.Close)
	e.publishL = func(l model.LogLine) {
		if err := bus.Publish(cell, bus.LogSubject(l), l); err != nil {
			t.Fatal(err)
		}
		_ = cell.Flush()
	}
	e.publishE = func(ev model.Event) {
		if err := bus.Publish(ctl, bus.EventSubject(ev.Space, ev.App), ev); err != nil {
			t.Fatal(err)
		}
		_ = ctl.Flush()
	}
	return e
}

func (e *journalEnv) get(t *testing.T, token, path string, header ...string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.srv.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func texts(t *testing.T, ndjson string) []string {
	t.Helper()
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(ndjson), "\n") {
		if l == "" {
			continue
		}
		var line model.LogLine
		if err := json.Unmarshal([]byte(l), &line); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		out = append(out, line.Text)
	}
	return out
}

func TestLogsAPI(t *testing.T) {
	e := startJournalAPI(t)
	for i := range 6 {
		e.publishL(model.LogLine{Time: time.Now(), Space: "dev", App: "web", Source: model.LogApp, Index: i % 2, Text: fmt.Sprintf("app %d", i)})
	}
	e.publishL(model.LogLine{Time: time.Now(), Space: "dev", App: "web", Source: model.LogStaging, Text: "staged"})
	testenv.Eventually(t, 5*time.Second, 20*time.Millisecond, "lines kept", func() error {
		if _, body := e.get(t, e.admin, "/v1/logs/web"); len(texts(t, body)) != 7 {
			return fmt.Errorf("kept %q", body)
		}
		return nil
	})
	tests := []struct {
		name, token, path string
		code              int
		want              string // the texts, or what the error says
	}{
		{"recent", e.admin, "/v1/logs/web", 200, "[app 0 app 1 app 2 app 3 app 4 app 5 staged]"},
		{"the last 2", e.admin, "/v1/logs/web?recent=2", 200, "[app 5 staged]"},
		{"one instance", e.admin, "/v1/logs/web?instance=1", 200, "[app 1 app 3 app 5]"},
		{"one source", e.admin, "/v1/logs/web?source=STG", 200, "[staged]"},
		{"since an hour", e.admin, "/v1/logs/web?since=1h&source=APP&instance=0", 200, "[app 0 app 2 app 4]"},
		{"an auditor reads no logs", e.auditor, "/v1/logs/web?recent=1", 403, "may not read logs"},
		{"another space's developer neither", e.other, "/v1/logs/web?space=dev", 403, "scoped to space(s) prod, not dev"},
		{"an unknown source", e.admin, "/v1/logs/web?source=XYZ", 400, `unknown log source`},
		{"a bad instance", e.admin, "/v1/logs/web?instance=-1", 400, "not an instance index"},
		{"a bad since", e.admin, "/v1/logs/web?since=yesterday", 400, "neither a duration"},
		{"too many", e.admin, "/v1/logs/web?recent=2000000", 400, "not a count"},
		{"an unknown app", e.admin, "/v1/logs/nope", 404, "no app named nope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := e.get(t, tt.token, tt.path)
			if code != tt.code {
				t.Fatalf("GET %s = %d %s, want %d", tt.path, code, body, tt.code)
			}
			got := body
			if code == 200 {
				got = fmt.Sprint(texts(t, body))
			}
			if !strings.Contains(got, tt.want) {
				t.Errorf("GET %s = %s, want %s", tt.path, got, tt.want)
			}
		})
	}
}

// TestLogsFollowSSE: a follower over server-sent events gets each line
// with its seq as id, and one that reconnects with Last-Event-ID misses
// nothing and gets nothing twice.
func TestLogsFollowSSE(t *testing.T) {
	e := startJournalAPI(t)
	e.publishL(model.LogLine{Space: "dev", App: "web", Source: model.LogApp, Text: "before"})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.srv.URL+"/v1/logs/web?follow=1", nil)
	req.Header.Set("Authorization", "Bearer "+e.admin)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	r := bufio.NewReader(resp.Body)
	next := func() (id, text string) {
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("reading the stream: %v", err)
			}
			if v, ok := strings.CutPrefix(l, "id: "); ok {
				id = strings.TrimSpace(v)
			}
			if v, ok := strings.CutPrefix(l, "data: "); ok {
				var line model.LogLine
				if err := json.Unmarshal([]byte(v), &line); err != nil {
					t.Fatalf("data %q: %v", v, err)
				}
				return id, line.Text
			}
		}
	}
	if _, text := next(); text != "before" {
		t.Fatalf("first event %q, want the kept line", text)
	}
	e.publishL(model.LogLine{Space: "dev", App: "web", Source: model.LogApp, Text: "during"})
	id, text := next()
	if text != "during" {
		t.Fatalf("followed %q, want the new line", text)
	}
	resp.Body.Close()
	e.publishL(model.LogLine{Space: "dev", App: "web", Source: model.LogApp, Text: "while away"})
	_, body := e.get(t, e.admin, "/v1/logs/web", "Last-Event-ID", id)
	if got := fmt.Sprint(texts(t, body)); got != "[while away]" {
		t.Errorf("after Last-Event-ID %s: %s, want only the line sent while away", id, got)
	}
}

func TestEventsAPI(t *testing.T) {
	e := startJournalAPI(t)
	for _, ev := range []model.Event{
		{Kind: model.EventCommitApplied, Space: "dev", Message: "commit 1"},
		{Kind: model.EventStaging, Space: "dev", App: "web", Message: "staging web"},
		{Kind: model.EventStarted, Space: "prod", App: "api", Message: "api started"},
		{Kind: model.EventTokenCreated, Message: "token made"},
	} {
		e.publishE(ev)
	}
	messages := func(body string) string {
		var evs []model.Event
		if err := json.Unmarshal([]byte(body), &evs); err != nil {
			t.Fatalf("%q: %v", body, err)
		}
		var out []string
		for _, ev := range evs {
			if ev.Seq == 0 {
				t.Errorf("event %q has no seq", ev.Message)
			}
			out = append(out, ev.Message)
		}
		return fmt.Sprint(out)
	}
	testenv.Eventually(t, 5*time.Second, 20*time.Millisecond, "events kept", func() error {
		if _, body := e.get(t, e.admin, "/v1/events"); messages(body) != "[commit 1 staging web api started token made]" {
			return fmt.Errorf("events %s", body)
		}
		return nil
	})
	tests := []struct{ name, token, path, want string }{
		{"an app's timeline has its space's commits", e.admin, "/v1/events?app=web", "[commit 1 staging web]"},
		{"one space", e.admin, "/v1/events?space=prod", "[api started]"},
		{"an auditor of dev sees dev only", e.auditor, "/v1/events", "[commit 1 staging web]"},
		{"the last one", e.admin, "/v1/events?recent=1", "[token made]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := e.get(t, tt.token, tt.path)
			if code != 200 || messages(body) != tt.want {
				t.Errorf("GET %s = %d %s, want %s", tt.path, code, body, tt.want)
			}
		})
	}
	// Following: NDJSON, new events as they come.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.srv.URL+"/v1/events?app=web&follow=1&recent=1", nil)
	req.Header.Set("Authorization", "Bearer "+e.admin)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	dec := json.NewDecoder(resp.Body)
	var ev model.Event
	if err := dec.Decode(&ev); err != nil || ev.Message != "staging web" {
		t.Fatalf("followed %+v (%v), want the last kept event first", ev, err)
	}
	e.publishE(model.Event{Kind: model.EventStarted, Space: "dev", App: "web", Message: "web started"})
	if err := dec.Decode(&ev); err != nil || ev.Message != "web started" {
		t.Fatalf("followed %+v (%v), want the new event", ev, err)
	}
}
