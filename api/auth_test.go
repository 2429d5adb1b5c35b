package api

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/driftless/driftless/model"
	"github.com/driftless/driftless/reconciler"
	"github.com/driftless/driftless/tokens"
)

// memTokens is a token store in memory for the middleware's unit tests
// (the real one, on Consul, is tested in package tokens and end to end).
type memTokens struct {
	mu     sync.Mutex
	byTok  map[string]tokens.Token
	nextID int
}

func newMemTokens() *memTokens { return &memTokens{byTok: map[string]tokens.Token{}} }

// add makes a token of role in spaces and returns it.
func (m *memTokens) add(name, role string, spaces ...string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.nextID++
	tok := "test-" + name
	m.byTok[tok] = tokens.Token{ID: name, Name: name, Role: role, Spaces: spaces, ExpiresAt: time.Now().Add(time.Hour)}
	return tok
}

func (m *memTokens) Verify(_ context.Context, tok string) (tokens.Token, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.byTok[tok]
	if !ok {
		return tokens.Token{}, tokens.ErrUnknown
	}
	if t.Expired(time.Now()) {
		return tokens.Token{}, tokens.ErrExpired
	}
	return t, nil
}

func (m *memTokens) Create(_ context.Context, req tokens.Request) (string, tokens.Token, error) {
	if err := tokens.Validate(req.Name, req.Role, req.Spaces); err != nil {
		return "", tokens.Token{}, err
	}
	tok := m.add(req.Name, req.Role, req.Spaces...)
	t, _ := m.Verify(context.Background(), tok)
	return tok, t, nil
}

func (m *memTokens) List(context.Context) ([]tokens.Listed, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []tokens.Listed
	for _, t := range m.byTok {
		out = append(out, tokens.Listed{Token: t})
	}
	return out, nil
}

func (m *memTokens) Lookup(_ context.Context, name string) (tokens.Token, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, t := range m.byTok {
		if t.Name == name {
			return t, true, nil
		}
	}
	return tokens.Token{}, false, nil
}

func (m *memTokens) Revoke(_ context.Context, name string) (tokens.Token, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, t := range m.byTok {
		if t.Name == name {
			delete(m.byTok, k)
			return t, nil
		}
	}
	return tokens.Token{}, tokens.ErrNoSuchToken
}

// testHandler is NewHandler with an admin token sent on every request
// that carries none, for the tests of what the routes answer.
func testHandler(cfg ServerConfig) http.Handler {
	store := newMemTokens()
	admin := store.add("admin", tokens.RoleAdmin)
	cfg.Tokens = store
	h := NewHandler(cfg)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") == "" {
			r.Header.Set("Authorization", "Bearer "+admin)
		}
		h.ServeHTTP(w, r)
	})
}

// TestAuth checks who gets what: every route but /healthz and the webhook
// needs a token, and the built-in roles' decisions hold on each route.
func TestAuth(t *testing.T) {
	b := &fakeBackend{apps: []reconciler.AppState{
		{App: model.App{Space: "dev", Name: "web", ReleaseID: "r1"}, Releases: []model.Release{{ID: "r1", Run: model.RunSpec{Env: map[string]string{"GREETING": "hi"}}}}},
		{App: model.App{Space: "prod", Name: "api"}},
	}}
	store := newMemTokens()
	admin := store.add("root", tokens.RoleAdmin)
	dev := store.add("dev-team", tokens.RoleSpaceDeveloper, "dev")
	auditor := store.add("audit", tokens.RoleSpaceAuditor, "dev", "prod")
	ci := store.add("ci-dev", tokens.RoleCI, "dev")
	cell := store.add("cell-a", tokens.RoleCell)
	blobs := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "blob") })
	h := NewHandler(ServerConfig{Backend: b, Tokens: store, Blobs: blobs, WebhookSecret: testSecret, Log: slog.New(slog.DiscardHandler)})

	tests := []struct {
		name, tok, method, path string
		want                    int
		body                    string // in the answer
	}{
		{"healthz is open", "", "GET", "/healthz", 200, "ok"},
		{"webhook has its own signatures", "", "POST", "/v1/webhook", 401, "webhook not authenticated"},
		{"anonymous", "", "GET", "/v1/apps", 401, "no token"},
		{"unknown token", "dlt_0123456789ab_" + strings.Repeat("A", 43), "GET", "/v1/apps", 401, "unknown token"},
		{"admin reads every app", admin, "GET", "/v1/apps", 200, `"prod"`},
		{"developer reads its space's env", dev, "GET", "/v1/apps/web/env", 200, `"GREETING": "hi"`},
		{"developer sees only its space", dev, "GET", "/v1/apps/api", 404, "no app named api"},
		{"auditor reads apps", auditor, "GET", "/v1/apps/web", 200, `"web"`},
		{"auditor gets no env", auditor, "GET", "/v1/apps/web/env", 403, "role space-auditor may not read env"},
		{"auditor cannot sync", auditor, "POST", "/v1/sync?space=dev", 403, "may not sync sources"},
		{"ci syncs its space", ci, "POST", "/v1/sync?space=dev", 200, ""},
		{"ci cannot sync another space", ci, "POST", "/v1/sync?space=prod", 403, "scoped to space(s) dev, not prod"},
		{"ci cannot sync everything", ci, "POST", "/v1/sync", 403, "token ci-dev acts in spaces (dev): say which one (--space)"},
		{"developer cannot make tokens", dev, "POST", "/v1/tokens", 403, "may not manage tokens"},
		{"cell pulls blobs", cell, "GET", "/v2/droplets/dev/web/manifests/sha256:00", 200, "blob"},
		{"cell reads no apps", cell, "GET", "/v1/apps/web", 404, ""},
		{"developer pulls no blobs", dev, "GET", "/v2/droplets/dev/web/manifests/sha256:00", 403, "may not pull blobs"},
		{"anonymous registry client is challenged", "", "GET", "/v2/", 401, ""},
		{"auditor reads status", auditor, "GET", "/v1/status", 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(tt.method, tt.path, nil)
			req.RemoteAddr = "192.0.2.1:1234" // one address, whose failures stay under the limit here
			if tt.tok != "" {
				req.Header.Set("Authorization", "Bearer "+tt.tok)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tt.want || !strings.Contains(rec.Body.String(), tt.body) {
				t.Fatalf("%s %s = %d %q, want %d with %q", tt.method, tt.path, rec.Code, rec.Body, tt.want, tt.body)
			}
			if rec.Code == 401 && tt.path != "/v1/webhook" && rec.Header().Get("WWW-Authenticate") == "" {
				t.Error("a 401 without a challenge")
			}
		})
	}
	if len(b.syncedIn) != 1 || b.syncedIn[0] != "dev" {
		t.Errorf("synced %v, want only dev", b.syncedIn)
	}
	var failed []model.Event
	for _, ev := range b.events {
		if ev.Kind == model.EventAuthFailed {
			failed = append(failed, ev)
		}
	}
	if len(failed) != 3 || !strings.Contains(failed[1].Message, "token id 0123456789ab") || strings.Contains(failed[1].Message, "AAAA") {
		t.Errorf("auth-failed events %+v: want 3, the second naming the token's id and not its secret", failed)
	}
}

// TestAuthLimitsFailures: an address that fails too often gets 429 for
// its failures, while its good tokens and other addresses still get in.
func TestAuthLimitsFailures(t *testing.T) {
	store := newMemTokens()
	good := store.add("root", tokens.RoleAdmin)
	h := NewHandler(ServerConfig{Backend: &fakeBackend{}, Tokens: store})
	call := func(addr, tok string) int {
		req := httptest.NewRequest("GET", "/v1/apps", nil)
		req.RemoteAddr = addr + ":5555"
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code
	}
	for i := range failBurst {
		if code := call("198.51.100.7", "wrong"); code != 401 {
			t.Fatalf("failure %d answered %d, want 401", i, code)
		}
	}
	for _, tok := range []string{"wrong", ""} {
		if code := call("198.51.100.7", tok); code != http.StatusTooManyRequests {
			t.Fatalf("failure past the budget (token %q) answered %d, want 429", tok, code)
		}
	}
	if code := call("198.51.100.7", good); code != 200 {
		t.Fatalf("a good token from a limited address answered %d, want 200", code)
	}
	if code := call("198.51.100.8", "wrong"); code != 401 {
		t.Fatalf("another address answered %d, want 401", code)
	}
}

// TestCan explains decisions, of the caller's token or (for admins) of a
// named one.
func TestCan(t *testing.T) {
	store := newMemTokens()
	admin := store.add("root", tokens.RoleAdmin)
	store.add("audit", tokens.RoleSpaceAuditor, "dev")
	dev := store.add("dev-team", tokens.RoleSpaceDeveloper, "dev")
	h := NewHandler(ServerConfig{Backend: &fakeBackend{}, Tokens: store})
	ask := func(tok, query string) (int, CanResult) {
		req := httptest.NewRequest("GET", "/v1/can?"+query, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		var res CanResult
		_ = json.Unmarshal(rec.Body.Bytes(), &res)
		return rec.Code, res
	}
	if code, res := ask(admin, "verb=read&resource=env&space=dev&token=audit"); code != 200 || res.Allow || res.Reason != "role space-auditor may not read env" {
		t.Errorf("admin asking of audit: %d %+v", code, res)
	}
	if code, res := ask(dev, "verb=read&resource=env&space=dev"); code != 200 || !res.Allow || res.Token != "dev-team" {
		t.Errorf("developer asking of itself: %d %+v", code, res)
	}
	if code, _ := ask(dev, "verb=read&resource=env&space=dev&token=audit"); code != 403 {
		t.Errorf("developer asking of another token: %d, want 403", code)
	}
}
