package api

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/driftless/driftless/model"
	"github.com/driftless/driftless/reconciler"
)

// syncCounter is a Backend that only counts syncs: the webhook's job is to
// check the signature and trigger one.
type syncCounter struct{ synced chan bool }

func (s *syncCounter) AppStates(context.Context) []reconciler.AppState { return nil }
func (s *syncCounter) AppState(context.Context, string, string) (reconciler.AppState, bool) {
	return reconciler.AppState{}, false
}
func (s *syncCounter) Status(context.Context) reconciler.Status { return reconciler.Status{} }
func (s *syncCounter) Events(string, string) []model.Event      { return nil }
func (s *syncCounter) Leading(context.Context) (bool, string)   { return true, "test" }
func (s *syncCounter) Sync(context.Context) []model.SourceStatus {
	s.synced <- true
	return nil
}

func sign(secret, body string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(body))
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

func TestWebhookSignature(t *testing.T) {
	body := `{"ref":"refs/heads/main"}`
	tests := []struct {
		name, secret, sig string
		code              int
		syncs             bool
	}{
		{"valid", "s3cret", sign("s3cret", body), http.StatusAccepted, true},
		{"wrong secret", "s3cret", sign("other", body), http.StatusUnauthorized, false},
		{"missing", "s3cret", "", http.StatusUnauthorized, false},
		{"not hex", "s3cret", "sha256=zz", http.StatusUnauthorized, false},
		{"sha1 form", "s3cret", strings.Replace(sign("s3cret", body), "sha256=", "sha1=", 1), http.StatusUnauthorized, false},
		{"disabled", "", sign("", body), http.StatusNotFound, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := &syncCounter{synced: make(chan bool, 1)}
			h := NewHandler(ServerConfig{Backend: b, WebhookSecret: tt.secret, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
			req := httptest.NewRequest("POST", "/v1/webhook", strings.NewReader(body))
			if tt.sig != "" {
				req.Header.Set("X-Hub-Signature-256", tt.sig)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tt.code {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.code, rec.Body)
			}
			select {
			case <-b.synced:
				if !tt.syncs {
					t.Fatal("an unsigned webhook triggered a sync")
				}
			case <-time.After(200 * time.Millisecond):
				if tt.syncs {
					t.Fatal("a signed webhook did not trigger a sync")
				}
			}
		})
	}
}

// standby is a Backend of a controller that does not lead.
type standby struct{ syncCounter }

func (*standby) Leading(context.Context) (bool, string) { return false, "ctl-2" }

func TestStandbyAnswersOnlyStatus(t *testing.T) {
	h := NewHandler(ServerConfig{Backend: &standby{}, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	tests := []struct {
		method, path string
		want         int
	}{
		{"GET", "/v1/status", http.StatusOK},
		{"GET", "/healthz", http.StatusOK},
		{"GET", "/v1/apps", http.StatusServiceUnavailable},
		{"GET", "/v1/apps/hello", http.StatusServiceUnavailable},
		{"GET", "/v1/events", http.StatusServiceUnavailable},
		{"POST", "/v1/sync", http.StatusServiceUnavailable},
	}
	for _, tt := range tests {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(tt.method, tt.path, nil))
		if rec.Code != tt.want {
			t.Errorf("%s %s = %d, want %d", tt.method, tt.path, rec.Code, tt.want)
		}
		if tt.want == http.StatusServiceUnavailable && !strings.Contains(rec.Body.String(), "the leader is ctl-2") {
			t.Errorf("%s %s body %q does not name the leader", tt.method, tt.path, rec.Body.String())
		}
	}
}
