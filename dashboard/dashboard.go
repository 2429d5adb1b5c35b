// Package dashboard serves the web dashboard: plain HTML, CSS and
// JavaScript embedded in the binary (no build step, no CDN, nothing
// fetched from elsewhere), mounted by the API at /ui/. The assets need no
// token; every piece of data the page shows comes from the API itself,
// called with the user's token, so the dashboard may do exactly what the
// CLI may with that token.
package dashboard

import (
	"embed"
	"io/fs"
	"net/http"
)

// Prefix is where the API mounts the dashboard.
const Prefix = "/ui/"

// CSP is the Content-Security-Policy of every asset: scripts, styles,
// images and API calls from the API's own origin only, no inline script
// or style, no framing.
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"font-src 'none'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

//go:embed assets
var embedded embed.FS

// Assets are the dashboard's files, index.html at the root.
func Assets() fs.FS {
	sub, err := fs.Sub(embedded, "assets")
	if err != nil {
		panic(err) // the folder is embedded above: it is always there
	}
	return sub
}

// Handler serves the dashboard's assets under Prefix with a strict
// Content-Security-Policy. It answers GET and HEAD only.
func Handler() http.Handler {
	files := http.StripPrefix(Prefix, http.FileServerFS(Assets()))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", CSP)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-cache")
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			h.Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		files.ServeHTTP(w, r)
	})
}
