package main

import (
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

func TestHandler(t *testing.T) {
	big := strings.Repeat("<p>hello</p>\n", 100)
	h := newHandler(fstest.MapFS{
		"index.html":      {Data: []byte(big)},
		"docs/index.html": {Data: []byte("docs")},
		"app.js":          {Data: []byte("console.log(1)")},
	}, time.Hour)
	tests := []struct {
		name, path, enc string
		wantCode        int
		wantType        string
		wantGzip        bool
		wantBody        string
	}{
		{"root serves index.html", "/", "", 200, "text/html; charset=utf-8", false, big},
		{"gzip when accepted and large", "/", "gzip, br", 200, "text/html; charset=utf-8", true, big},
		{"folder index", "/docs/", "gzip", 200, "text/html; charset=utf-8", false, "docs"},
		{"javascript type", "/app.js", "", 200, "text/javascript; charset=utf-8", false, "console.log(1)"},
		{"missing file", "/nope.css", "", 404, "", false, ""},
		{"no escape from the root", "/../../etc/passwd", "", 404, "", false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, tt.path, nil)
			if tt.enc != "" {
				req.Header.Set("Accept-Encoding", tt.enc)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tt.wantCode {
				t.Fatalf("code %d, want %d", rec.Code, tt.wantCode)
			}
			if tt.wantCode != 200 {
				return
			}
			if got := rec.Header().Get("Content-Type"); got != tt.wantType {
				t.Errorf("type %q, want %q", got, tt.wantType)
			}
			if rec.Header().Get("ETag") == "" || !strings.Contains(rec.Header().Get("Cache-Control"), "max-age=3600") {
				t.Errorf("cache headers missing: %v", rec.Header())
			}
			var body io.Reader = rec.Body
			if gz := rec.Header().Get("Content-Encoding") == "gzip"; gz != tt.wantGzip {
				t.Fatalf("gzip %v, want %v", gz, tt.wantGzip)
			} else if gz {
				zr, err := gzip.NewReader(rec.Body)
				if err != nil {
					t.Fatal(err)
				}
				body = zr
			}
			got, _ := io.ReadAll(body)
			if string(got) != tt.wantBody {
				t.Errorf("body %q, want %q", got, tt.wantBody)
			}
		})
	}
	// A matching ETag gives 304.
	req := httptest.NewRequest(http.MethodGet, "/app.js", nil)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	req.Header.Set("If-None-Match", rec.Header().Get("ETag"))
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusNotModified {
		t.Errorf("revalidation answered %d, want 304", rec.Code)
	}
}
