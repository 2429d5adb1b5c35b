package metricsrv

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestIsLoopback(t *testing.T) {
	tests := []struct {
		addr string
		want bool
	}{
		{"127.0.0.1:9100", true},
		{"127.0.0.2:0", true},
		{"[::1]:9100", true},
		{"localhost:9100", true},
		{":9100", false},
		{"0.0.0.0:9100", false},
		{"[::]:9100", false},
		{"10.0.0.1:9100", false},
		{"example.com:9100", false},
		{"127.0.0.1", false},
	}
	for _, tt := range tests {
		if got := IsLoopback(tt.addr); got != tt.want {
			t.Errorf("IsLoopback(%q) = %v, want %v", tt.addr, got, tt.want)
		}
	}
}

func TestToken(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(data), mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good", "s3cret\n", 0o600)
	tests := []struct {
		name    string
		cfg     Config
		want    string
		wantErr string
	}{
		{"loopback, open", Config{Listen: "127.0.0.1:0"}, "", ""},
		{"none", Config{}, "", ""},
		{"loopback with a token", Config{Listen: "127.0.0.1:0", TokenFile: good}, "s3cret", ""},
		{"every interface without a token", Config{Listen: ":9100"}, "", "needs a bearer token"},
		{"an address without a token", Config{Listen: "10.1.2.3:9100"}, "", "needs a bearer token"},
		{"an address with a token", Config{Listen: "10.1.2.3:9100", TokenFile: good}, "s3cret", ""},
		{"a token others may read", Config{Listen: ":9100", TokenFile: write("open", "x", 0o644)}, "", "make it 0600"},
		{"an empty token", Config{Listen: ":9100", TokenFile: write("empty", "\n", 0o600)}, "", "is empty"},
		{"no token file", Config{Listen: ":9100", TokenFile: filepath.Join(dir, "missing")}, "", "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.cfg.Token()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Token() = %q, %v; want an error with %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Token() = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

// TestListenRefusesOpenAddress: a metrics listener on every interface
// without a token is never opened.
func TestListenRefusesOpenAddress(t *testing.T) {
	s, err := Listen(Config{Listen: "0.0.0.0:0"}, prometheus.NewRegistry())
	if !errors.Is(err, ErrOpenListener) || s != nil {
		t.Fatalf("Listen(0.0.0.0:0) = %v, %v; want ErrOpenListener", s, err)
	}
}

// TestServeWithToken serves real HTTP on loopback with a token: requests
// without it, or with another, get 401; with it, the metrics.
func TestServeWithToken(t *testing.T) {
	tokFile := filepath.Join(t.TempDir(), "tok")
	if err := os.WriteFile(tokFile, []byte("s3cret"), 0o600); err != nil {
		t.Fatal(err)
	}
	reg := NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "driftless_test_total", Help: "A test counter."})
	reg.MustRegister(c)
	c.Inc()
	s, err := Listen(Config{Listen: "127.0.0.1:0", TokenFile: tokFile}, reg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Serve(ctx, slog.New(slog.DiscardHandler)); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	tests := []struct {
		name, auth string
		want       int
		body       string
	}{
		{"no token", "", http.StatusUnauthorized, "bearer token"},
		{"another token", "Bearer nope", http.StatusUnauthorized, "bearer token"},
		{"not a bearer", "Basic czNjcmV0", http.StatusUnauthorized, "bearer token"},
		{"the token", "Bearer s3cret", http.StatusOK, "driftless_test_total 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, "http://"+s.Addr()+"/metrics", nil)
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.want || !strings.Contains(string(body), tt.body) {
				t.Fatalf("GET /metrics with %q: %d %s; want %d with %q", tt.auth, resp.StatusCode, body, tt.want, tt.body)
			}
			if tt.want == http.StatusOK && !strings.Contains(string(body), "go_goroutines") {
				t.Fatalf("no Go collector in\n%s", body)
			}
		})
	}
}
