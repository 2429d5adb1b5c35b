// Command driftless-static is the web server of the static buildpack: a
// small static binary the buildpack puts in the droplet, serving the app's
// files on $PORT with gzip, ETags and cache headers.
package main

import (
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"io/fs"
	"log"
	"mime"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

func main() {
	root := flag.String("root", ".", "folder to serve")
	maxAge := flag.Duration("max-age", time.Hour, "Cache-Control max-age of served files")
	flag.Parse()
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	srv := &http.Server{Addr: ":" + port, Handler: newHandler(os.DirFS(*root), *maxAge), ReadHeaderTimeout: 10 * time.Second}
	log.Printf("serving %s on :%s", *root, port)
	log.Fatal(srv.ListenAndServe())
}

// handler serves files of a folder: index.html for folders, 404 for what
// is missing, gzip for text when the client accepts it, and an ETag (the
// content's hash) so that caches revalidate cheaply.
type handler struct {
	files  fs.FS
	maxAge time.Duration
	mu     sync.Mutex
	etags  map[string]string
}

func newHandler(files fs.FS, maxAge time.Duration) *handler {
	return &handler{files: files, maxAge: maxAge, etags: map[string]string{}}
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	name := strings.TrimPrefix(path.Clean("/"+r.URL.Path), "/")
	if name == "" {
		name = "."
	}
	if st, err := fs.Stat(h.files, name); err == nil && st.IsDir() {
		name = path.Join(name, "index.html")
	}
	body, err := fs.ReadFile(h.files, name)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	etag := h.etag(name, body)
	w.Header().Set("ETag", etag)
	w.Header().Set("Cache-Control", "public, max-age="+strconv.Itoa(int(h.maxAge/time.Second)))
	w.Header().Set("Vary", "Accept-Encoding")
	ctype := mime.TypeByExtension(filepath.Ext(name))
	if ctype == "" {
		ctype = http.DetectContentType(body)
	}
	w.Header().Set("Content-Type", ctype)
	if match := r.Header.Get("If-None-Match"); match != "" && match == etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	if compressible(ctype) && len(body) > 512 && strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
		w.Header().Set("Content-Encoding", "gzip")
		if r.Method == http.MethodHead {
			return
		}
		gz := gzip.NewWriter(w)
		_, _ = gz.Write(body)
		_ = gz.Close()
		return
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	if r.Method == http.MethodGet {
		_, _ = w.Write(body)
	}
}

func (h *handler) etag(name string, body []byte) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	if e, ok := h.etags[name]; ok {
		return e
	}
	sum := sha256.Sum256(body)
	e := `"` + hex.EncodeToString(sum[:8]) + `"`
	h.etags[name] = e
	return e
}

func compressible(ctype string) bool {
	return strings.HasPrefix(ctype, "text/") || strings.Contains(ctype, "javascript") ||
		strings.Contains(ctype, "json") || strings.Contains(ctype, "xml") || strings.Contains(ctype, "svg")
}
