// Command readyapp is the e2e tests' app for readiness checks and http2
// routes. It answers / with its instance index, guid and the protocol the
// request came in; /health always passes (liveness); /ready passes while
// the instance is ready, and POST /ready?set=false|true (sent to the
// instance itself, not through the router) flips it. With MODE=h2c it
// speaks only HTTP/2 over cleartext (prior knowledge), no HTTP/1.1.
package main

import (
	"fmt"
	"log"
	"net/http"
	"os"
	"sync/atomic"
	"time"
)

func main() {
	index := os.Getenv("CF_INSTANCE_INDEX")
	guid := os.Getenv("CF_INSTANCE_GUID")
	var notReady atomic.Bool
	mux := http.NewServeMux()
	mux.HandleFunc("/health", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "alive") })
	mux.HandleFunc("GET /ready", func(w http.ResponseWriter, _ *http.Request) {
		if notReady.Load() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	mux.HandleFunc("POST /ready", func(w http.ResponseWriter, r *http.Request) {
		notReady.Store(r.URL.Query().Get("set") == "false")
		fmt.Fprintf(w, "index=%s ready=%v\n", index, !notReady.Load())
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "readyapp index=%s guid=%s proto=%s\n", index, guid, r.Proto)
	})
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	srv := &http.Server{Addr: ":" + port, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	if os.Getenv("MODE") == "h2c" {
		srv.Protocols = new(http.Protocols)
		srv.Protocols.SetUnencryptedHTTP2(true)
	}
	log.Printf("readyapp index %s listening on %s (mode %q)", index, srv.Addr, os.Getenv("MODE"))
	log.Fatal(srv.ListenAndServe())
}
