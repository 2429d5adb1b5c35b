package dashboard

import (
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func TestHandlerServesAssets(t *testing.T) {
	srv := httptest.NewServer(Handler())
	defer srv.Close()
	tests := []struct {
		path, method string
		status       int
		typ, body    string
	}{
		{"/ui/", http.MethodGet, http.StatusOK, "text/html", `<script type="module" src="js/main.js">`},
		{"/ui/style.css", http.MethodGet, http.StatusOK, "text/css", "--accent"},
		{"/ui/js/main.js", http.MethodGet, http.StatusOK, "javascript", "hashchange"},
		{"/ui/js/logs.js", http.MethodGet, http.StatusOK, "javascript", "follow: 1"},
		{"/ui/favicon.svg", http.MethodGet, http.StatusOK, "image/svg+xml", "<svg"},
		{"/ui/nope.js", http.MethodGet, http.StatusNotFound, "", ""},
		{"/ui/", http.MethodPost, http.StatusMethodNotAllowed, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.method+tt.path, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, srv.URL+tt.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.status)
			}
			if got := resp.Header.Get("Content-Security-Policy"); got != CSP {
				t.Errorf("Content-Security-Policy %q, want %q", got, CSP)
			}
			if got := resp.Header.Get("X-Content-Type-Options"); got != "nosniff" {
				t.Errorf("X-Content-Type-Options %q", got)
			}
			if !strings.Contains(resp.Header.Get("Content-Type"), tt.typ) {
				t.Errorf("Content-Type %q, want %q", resp.Header.Get("Content-Type"), tt.typ)
			}
			if !strings.Contains(string(body), tt.body) {
				t.Errorf("body does not contain %q", tt.body)
			}
		})
	}
}

// The policy allows only the API's own origin and no inline code.
func TestCSPIsStrict(t *testing.T) {
	for _, want := range []string{"default-src 'self'", "script-src 'self'", "style-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"} {
		if !strings.Contains(CSP, want) {
			t.Errorf("CSP lacks %q", want)
		}
	}
	for _, bad := range []string{"unsafe-inline", "unsafe-eval", "http:", "https:", "*"} {
		if strings.Contains(CSP, bad) {
			t.Errorf("CSP allows %q", bad)
		}
	}
}

// Nothing is fetched from elsewhere: no asset names an absolute URL (the
// SVG namespace is a name, never fetched), none has inline script or
// style, and every local reference of index.html exists.
func TestAssetsAreSelfContained(t *testing.T) {
	abs := regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}`)
	names := map[string]bool{}
	err := fs.WalkDir(Assets(), ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		names[path] = true
		data, err := fs.ReadFile(Assets(), path)
		if err != nil {
			return err
		}
		text := strings.ReplaceAll(string(data), `xmlns="http://www.w3.org/2000/svg"`, "")
		for _, m := range abs.FindAllString(text, -1) {
			t.Errorf("%s refers to %s: assets must be served by the controller", path, m)
		}
		if strings.Contains(text, "@import") || strings.Contains(text, "url(") {
			t.Errorf("%s loads CSS resources", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"index.html", "style.css", "favicon.svg", "js/main.js", "js/api.js", "js/dom.js", "js/pages.js", "js/app.js", "js/logs.js"} {
		if !names[want] {
			t.Errorf("asset %s is missing", want)
		}
	}
	index, err := fs.ReadFile(Assets(), "index.html")
	if err != nil {
		t.Fatal(err)
	}
	if regexp.MustCompile(`<script(?:\s[^>]*)?>\s*[^<\s]`).Match(index) || strings.Contains(string(index), "<style") || strings.Contains(string(index), " style=") {
		t.Error("index.html has inline script or style (the CSP refuses them)")
	}
	for _, m := range regexp.MustCompile(`(?:src|href)="([^"#]+)"`).FindAllSubmatch(index, -1) {
		if ref := string(m[1]); !names[ref] {
			t.Errorf("index.html refers to %s, which is not an asset", ref)
		}
	}
	// Every module a script imports exists.
	for name := range names {
		if !strings.HasSuffix(name, ".js") {
			continue
		}
		data, _ := fs.ReadFile(Assets(), name)
		for _, m := range regexp.MustCompile(`from "\./([^"]+)"`).FindAllSubmatch(data, -1) {
			if !names["js/"+string(m[1])] {
				t.Errorf("%s imports %s, which is not an asset", name, m[1])
			}
		}
	}
}
