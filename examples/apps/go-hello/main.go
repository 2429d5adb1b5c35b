// Command go-hello is the Go example: built from source by the go
// buildpack (go build, CGO off) on the tiny stack.
package main

import (
	"fmt"
	"log"
	"net/http"
	"os"
	"runtime"
)

// greeting is what / answers; a test edits it to prove a rebuild.
const greeting = "Hello from Go"

func main() {
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	http.HandleFunc("/health", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	http.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, "%s (%s, instance %s)\n", greeting, runtime.Version(), os.Getenv("INSTANCE_INDEX"))
	})
	log.Printf("go-hello listening on :%s", port)
	log.Fatal(http.ListenAndServe(":"+port, nil))
}
