package api

import (
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/driftless/driftless/dashboard"
)

// The dashboard's assets are served without a token (they hold no data);
// the data they show comes from the API with the user's token.
func TestDashboardMounted(t *testing.T) {
	h := NewHandler(ServerConfig{Backend: &fakeBackend{}, Tokens: newMemTokens(), Log: slog.New(slog.DiscardHandler)})
	tests := []struct {
		method, path string
		want         int
		header, val  string
	}{
		{"GET", "/ui/", 200, "Content-Security-Policy", dashboard.CSP},
		{"GET", "/ui/js/api.js", 200, "Content-Type", "javascript"},
		{"GET", "/ui", 307, "Location", "/ui/"},
		{"GET", "/", 302, "Location", "/ui/"},
		{"POST", "/", 401, "WWW-Authenticate", "Bearer"},
		{"GET", "/v1/apps", 401, "WWW-Authenticate", "Bearer"},
		{"GET", "/v1/status", 401, "WWW-Authenticate", "Bearer"},
	}
	for _, tt := range tests {
		req := httptest.NewRequest(tt.method, tt.path, nil)
		req.RemoteAddr = "192.0.2.9:1234"
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != tt.want || !strings.Contains(rec.Header().Get(tt.header), tt.val) {
			t.Errorf("%s %s = %d, %s %q; want %d with %q", tt.method, tt.path, rec.Code, tt.header, rec.Header().Get(tt.header), tt.want, tt.val)
		}
	}
}
