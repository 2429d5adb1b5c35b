// Command notes is the service-binding example: an HTTP server keeping
// notes in a PostgreSQL database it is bound to. It reads the database's
// URI from VCAP_SERVICES (the first "postgresql" binding's credentials.uri,
// Cloud Foundry's way) or, when that is absent, from the servicebinding.io
// files under $SERVICE_BINDING_ROOT (the first binding of type postgresql,
// its uri file). It is built into a static binary (`make examples`) and
// deployed with the binary buildpack; its services.yml asks the built-in
// postgres broker (`driftless dev --postgres`) for the database.
//
//	GET  /health  ok (the app runs without a binding too: /notes then says why not)
//	POST /notes   the body is a note: inserted (the table is made when missing)
//	GET  /notes   every note, oldest first, as JSON
//	GET  /info    which binding it uses (name, binding_guid, never credentials)
//	              and the names (only) of the credential keys of every binding
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// label is the offering whose binding holds the database.
const label = "postgresql"

// maxNote is the longest note accepted, in bytes.
const maxNote = 64 << 10

// binding is what /info says of one binding: never a credential's value.
type binding struct {
	Label          string   `json:"label"`
	Name           string   `json:"name"`
	BindingGUID    string   `json:"binding_guid,omitempty"`
	InstanceName   string   `json:"instance_name,omitempty"`
	Plan           string   `json:"plan,omitempty"`
	CredentialKeys []string `json:"credential_keys"`
}

// info is what /info answers.
type info struct {
	App   string `json:"app"`
	Index string `json:"index"`
	GUID  string `json:"guid"`
	// Source is where the database's URI came from: "VCAP_SERVICES",
	// "SERVICE_BINDING_ROOT", or "" when the app has no postgresql binding.
	Source string `json:"source"`
	// Database is the binding used (nil without one).
	Database *binding `json:"database"`
	// Bindings are every binding the app sees, in VCAP_SERVICES (or, without
	// it, under SERVICE_BINDING_ROOT).
	Bindings []binding `json:"bindings"`
	// Error says why there is no database, if there is none.
	Error string `json:"error,omitempty"`
}

// note is one row of the notes table.
type note struct {
	ID        int64     `json:"id"`
	Body      string    `json:"body"`
	CreatedAt time.Time `json:"created_at"`
}

// vcapEntry is the part of one VCAP_SERVICES binding the app reads.
type vcapEntry struct {
	Label        string         `json:"label"`
	Name         string         `json:"name"`
	BindingGUID  string         `json:"binding_guid"`
	InstanceName string         `json:"instance_name"`
	Plan         string         `json:"plan"`
	Credentials  map[string]any `json:"credentials"`
}

// keysOf is the sorted keys of a credentials mapping.
func keysOf(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// fromVCAP finds the database's URI in VCAP_SERVICES: the first binding
// labelled postgresql with a string credentials.uri.
func fromVCAP(raw string, in *info) (string, error) {
	var services map[string][]vcapEntry
	if err := json.Unmarshal([]byte(raw), &services); err != nil {
		return "", fmt.Errorf("VCAP_SERVICES is not JSON: %w", err)
	}
	labels := make([]string, 0, len(services))
	for l := range services {
		labels = append(labels, l)
	}
	sort.Strings(labels)
	for _, l := range labels {
		for _, e := range services[l] {
			in.Bindings = append(in.Bindings, binding{Label: e.Label, Name: e.Name, BindingGUID: e.BindingGUID,
				InstanceName: e.InstanceName, Plan: e.Plan, CredentialKeys: keysOf(e.Credentials)})
		}
	}
	for _, e := range services[label] {
		if uri, ok := e.Credentials["uri"].(string); ok && uri != "" {
			in.Source = "VCAP_SERVICES"
			in.Database = &binding{Label: e.Label, Name: e.Name, BindingGUID: e.BindingGUID, InstanceName: e.InstanceName,
				Plan: e.Plan, CredentialKeys: keysOf(e.Credentials)}
			return uri, nil
		}
	}
	return "", fmt.Errorf("VCAP_SERVICES has no %s binding with credentials.uri", label)
}

// fromFiles finds the database's URI under root, servicebinding.io's
// layout: the first folder (by name) whose type file says postgresql and
// that has a uri file.
func fromFiles(root string, in *info) (string, error) {
	entries, err := os.ReadDir(root)
	if err != nil {
		return "", fmt.Errorf("reading SERVICE_BINDING_ROOT: %w", err)
	}
	uri := ""
	for _, e := range entries { // sorted by name
		if !e.IsDir() {
			continue
		}
		dir := filepath.Join(root, e.Name())
		files, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		b := binding{Name: e.Name(), CredentialKeys: []string{}}
		for _, f := range files {
			if f.Name() != "type" && f.Name() != "provider" {
				b.CredentialKeys = append(b.CredentialKeys, f.Name())
			}
		}
		if t, err := os.ReadFile(filepath.Join(dir, "type")); err == nil {
			b.Label = strings.TrimSpace(string(t))
		}
		in.Bindings = append(in.Bindings, b)
		if uri != "" || b.Label != label {
			continue
		}
		if u, err := os.ReadFile(filepath.Join(dir, "uri")); err == nil && len(strings.TrimSpace(string(u))) > 0 {
			uri = strings.TrimSpace(string(u))
			in.Source = "SERVICE_BINDING_ROOT"
			found := b
			in.Database = &found
		}
	}
	if uri == "" {
		return "", fmt.Errorf("no %s binding with a uri file under %s", label, root)
	}
	return uri, nil
}

// databaseURI finds the database's URI: VCAP_SERVICES first, then the
// servicebinding.io files.
func databaseURI(in *info) (string, error) {
	if raw := os.Getenv("VCAP_SERVICES"); raw != "" {
		uri, err := fromVCAP(raw, in)
		if err == nil {
			return uri, nil
		}
		log.Printf("%v: trying SERVICE_BINDING_ROOT", err)
	}
	root := os.Getenv("SERVICE_BINDING_ROOT")
	if root == "" {
		return "", errors.New("neither VCAP_SERVICES nor SERVICE_BINDING_ROOT names a postgresql binding: bind a service (manifest services:)")
	}
	in.Bindings = nil
	return fromFiles(root, in)
}

// store is the notes table, made on first use.
type store struct {
	pool *pgxpool.Pool
	mu   sync.Mutex
	made bool
}

func (s *store) ensure(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.made {
		return nil
	}
	_, err := s.pool.Exec(ctx, `CREATE TABLE IF NOT EXISTS notes (
		id bigserial PRIMARY KEY,
		body text NOT NULL,
		created_at timestamptz NOT NULL DEFAULT now())`)
	if err != nil {
		return fmt.Errorf("creating the notes table: %w", err)
	}
	s.made = true
	return nil
}

func (s *store) add(ctx context.Context, body string) (note, error) {
	if err := s.ensure(ctx); err != nil {
		return note{}, err
	}
	n := note{Body: body}
	err := s.pool.QueryRow(ctx, `INSERT INTO notes (body) VALUES ($1) RETURNING id, created_at`, body).Scan(&n.ID, &n.CreatedAt)
	if err != nil {
		return note{}, fmt.Errorf("inserting the note: %w", err)
	}
	return n, nil
}

func (s *store) list(ctx context.Context) ([]note, error) {
	if err := s.ensure(ctx); err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, `SELECT id, body, created_at FROM notes ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("listing the notes: %w", err)
	}
	defer rows.Close()
	out := []note{}
	for rows.Next() {
		var n note
		if err := rows.Scan(&n.ID, &n.Body, &n.CreatedAt); err != nil {
			return nil, fmt.Errorf("reading a note: %w", err)
		}
		out = append(out, n)
	}
	return out, rows.Err()
}

func getenv(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// dbError answers a database error. pgx's errors name the host, user and
// database at most, never the password, but the answer stays generic.
func dbError(w http.ResponseWriter, err error) {
	log.Printf("database: %v", err)
	writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "the database did not answer (see the app's logs)"})
}

func main() {
	me := info{App: getenv("DRIFTLESS_APP", "notes"), Index: getenv("INSTANCE_INDEX", "0"), GUID: os.Getenv("INSTANCE_GUID"),
		Bindings: []binding{}}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	var db *store
	uri, err := databaseURI(&me)
	if err != nil {
		me.Error = err.Error()
		log.Printf("no database: %v", err)
	} else {
		pool, err := pgxpool.New(ctx, uri) // connects on first use
		if err != nil {
			// The parse error of a URI may quote it: not logged.
			me.Error = "the binding's uri is not a PostgreSQL URI"
			log.Print(me.Error)
		} else {
			defer pool.Close()
			db = &store{pool: pool}
			log.Printf("using binding %s (%s) from %s", me.Database.Name, me.Database.BindingGUID, me.Source)
		}
	}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("GET /info", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, http.StatusOK, me) })
	mux.HandleFunc("GET /notes", func(w http.ResponseWriter, r *http.Request) {
		if db == nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": me.Error})
			return
		}
		notes, err := db.list(r.Context())
		if err != nil {
			dbError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, notes)
	})
	mux.HandleFunc("POST /notes", func(w http.ResponseWriter, r *http.Request) {
		if db == nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": me.Error})
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxNote))
		if err != nil {
			writeJSON(w, http.StatusRequestEntityTooLarge, map[string]string{"error": fmt.Sprintf("a note is at most %d bytes", maxNote)})
			return
		}
		if strings.TrimSpace(string(body)) == "" {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "the body is the note: it is empty"})
			return
		}
		n, err := db.add(r.Context(), string(body))
		if err != nil {
			dbError(w, err)
			return
		}
		writeJSON(w, http.StatusCreated, n)
	})
	srv := &http.Server{Addr: ":" + getenv("PORT", "8080"), Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	log.Printf("notes instance %s listening on %s", me.Index, srv.Addr)
	if err := srv.ListenAndServe(); err != nil && err != http.ErrServerClosed {
		log.Fatal(err)
	}
	// ListenAndServe returns as soon as Shutdown begins: the requests in
	// flight finish before main returns and closes the database pool.
	<-stopped
}
