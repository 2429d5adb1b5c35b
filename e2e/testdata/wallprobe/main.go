// Command wallprobe is the e2e tests' app for the walls between instances,
// the host and each other. / answers "guid=GUID ip=INTERNAL_IP"; /dial?addr=HOST:PORT
// opens a TCP connection to addr from inside the instance and answers
// "connected", "refused", "timeout" or "error: …".
package main

import (
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"syscall"
	"time"
)

func main() {
	mux := http.NewServeMux()
	mux.HandleFunc("/health", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, "guid=%s ip=%s\n", os.Getenv("CF_INSTANCE_GUID"), os.Getenv("CF_INSTANCE_INTERNAL_IP"))
	})
	mux.HandleFunc("/dial", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, dial(r.URL.Query().Get("addr")))
	})
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	srv := &http.Server{Addr: ":" + port, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	log.Fatal(srv.ListenAndServe())
}

// dial tries a TCP connection to addr for 2 s at most.
func dial(addr string) string {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	var nerr net.Error
	switch {
	case err == nil:
		c.Close()
		return "connected"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused"
	case errors.As(err, &nerr) && nerr.Timeout():
		return "timeout"
	}
	return "error: " + err.Error()
}
