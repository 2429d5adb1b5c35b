// Command hello is the demo app: an HTTP server that says which instance
// and release answered. It is built into a static binary and deployed with
// the binary buildpack.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"
)

// info is what /info answers: enough for tests to tell instances and
// releases apart.
type info struct {
	App      string `json:"app"`
	Index    string `json:"index"`
	GUID     string `json:"guid"`
	Release  string `json:"release"`
	Commit   string `json:"commit"`
	Greeting string `json:"greeting"`
}

func getenv(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func main() {
	me := info{
		App:      getenv("DRIFTLESS_APP", "hello"),
		Index:    getenv("INSTANCE_INDEX", "0"),
		GUID:     os.Getenv("INSTANCE_GUID"),
		Release:  os.Getenv("DRIFTLESS_RELEASE"),
		Commit:   os.Getenv("DRIFTLESS_COMMIT"),
		Greeting: getenv("GREETING", "Hello"),
	}
	mux := http.NewServeMux()
	// HEALTH=fail makes the health check fail: a release that never
	// becomes healthy (the platform rolls it back).
	healthy := os.Getenv("HEALTH") != "fail"
	// HEALTH_FAIL_AFTER=2s makes the health check fail from then on: an
	// instance that stops answering while its process lives.
	var sickAt time.Time
	if d, err := time.ParseDuration(os.Getenv("HEALTH_FAIL_AFTER")); err == nil {
		sickAt = time.Now().Add(d)
	}
	mux.HandleFunc("/health", func(w http.ResponseWriter, _ *http.Request) {
		if !healthy || (!sickAt.IsZero() && time.Now().After(sickAt)) {
			http.Error(w, "unhealthy (HEALTH=fail)", http.StatusInternalServerError)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/info", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(me)
	})
	// /log?n=N&tag=T prints N lines "logline T <i> <unix nanoseconds>" on
	// stdout at once (at most 1,000,000): the log benchmarks' load.
	mux.HandleFunc("/log", func(w http.ResponseWriter, r *http.Request) {
		n, err := strconv.Atoi(r.URL.Query().Get("n"))
		if err != nil || n < 1 || n > 1_000_000 {
			http.Error(w, "n must be 1 to 1000000", http.StatusBadRequest)
			return
		}
		tag := r.URL.Query().Get("tag")
		out := bufio.NewWriterSize(os.Stdout, 64<<10)
		for i := range n {
			fmt.Fprintf(out, "logline %s %d %d\n", tag, i, time.Now().UnixNano())
			if n < 100 {
				_ = out.Flush() // a few lines go out one by one, as an app's would
			}
		}
		_ = out.Flush()
		fmt.Fprintf(w, "logged %d\n", n)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		log.Printf("%s %s from %s", r.Method, r.URL.Path, r.Header.Get("X-Forwarded-For"))
		commit := me.Commit
		if len(commit) > 7 {
			commit = commit[:7]
		}
		fmt.Fprintf(w, "%s from %s instance %s (release %s, commit %s)\n", me.Greeting, me.App, me.Index, me.Release, commit)
	})
	srv := &http.Server{Addr: ":" + getenv("PORT", "8080"), Handler: mux, ReadHeaderTimeout: 10 * time.Second}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	// CRASH_AFTER=2s makes the instance exit with status 3 after that
	// long: a crash loop.
	if d, err := time.ParseDuration(os.Getenv("CRASH_AFTER")); err == nil {
		time.AfterFunc(d, func() {
			log.Printf("crashing as asked (CRASH_AFTER=%s)", d)
			os.Exit(3)
		})
	}
	log.Printf("hello instance %s listening on %s", me.Index, srv.Addr)
	if err := srv.ListenAndServe(); err != nil && err != http.ErrServerClosed {
		log.Fatal(err)
	}
}
