package api

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/driftless/driftless/model"
	"github.com/driftless/driftless/reconciler"
)

// Backend is what the API serves: the controller's state, of which the
// API makes its views (views.go), and its sync trigger.
// reconciler.Controller implements it.
type Backend interface {
	AppStates(ctx context.Context) []reconciler.AppState
	AppState(ctx context.Context, space, name string) (reconciler.AppState, bool)
	Status(ctx context.Context) reconciler.Status
	// Sync fetches every source now and applies what changed.
	Sync(ctx context.Context) []model.SourceStatus
	// Trigger starts a fetch, in the background, of every source whose
	// repository is one of urls (compared as model.NormalizeRepoURL
	// makes them), and returns the names of those sources.
	Trigger(ctx context.Context, urls []string) []string
	// PullRequest deploys (opened, reopened, new commits, relabelled) or
	// removes (closed, merged) the preview of a pull request of the
	// repository known by urls for every source of that repository, and
	// returns the names of the previews acted on (nil when no source
	// matches or the action asks for nothing).
	PullRequest(ctx context.Context, pr model.PullRequest, urls []string) []string
	// SawRepository records how the forge names the repository at
	// ref.URL (a verified webhook delivery told it).
	SawRepository(ref model.RepoRef)
	// Previews describes the deployed pull-request previews.
	Previews(ctx context.Context) []reconciler.PreviewState
	// Services describes the service instances; Brokers the registered
	// service brokers (services.go).
	Services(ctx context.Context) []reconciler.ServiceState
	Brokers(ctx context.Context) []reconciler.BrokerState
	Events(space, app string) []model.Event
	// Leading reports whether this controller acts and which one leads.
	// A standby answers only /v1/status; the rest answers 503 naming the
	// leader.
	Leading(ctx context.Context) (leading bool, leader string)
}

// ServerConfig configures the API handler.
type ServerConfig struct {
	Backend Backend
	// Blobs serves the blob store (/v2/ and /v1/blobs/); nil disables it.
	Blobs http.Handler
	// Logs streams and remembers app logs; nil disables /v1/logs.
	Logs *LogHub
	// WebhookSecret enables POST /v1/webhook (webhook.go): GitHub's,
	// Gitea's and Forgejo's deliveries must be signed with it (HMAC-SHA256
	// of the body), GitLab's must carry it as X-Gitlab-Token. A push
	// fetches the sources of its repository. Empty disables the webhook.
	WebhookSecret string
	// PublicKey is the platform's age public key, served at
	// /v1/secrets/public-key for `driftless secrets encrypt`.
	PublicKey string
	Log       *slog.Logger
}

// NewHandler returns the API's HTTP handler.
func NewHandler(cfg ServerConfig) http.Handler {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	s := &server{cfg: cfg}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("GET /v1/apps", s.leaderOnly(s.apps))
	mux.HandleFunc("GET /v1/apps/{name}", s.leaderOnly(s.app))
	mux.HandleFunc("GET /v1/status", s.status)
	mux.HandleFunc("POST /v1/sync", s.leaderOnly(s.sync))
	mux.HandleFunc("GET /v1/events", s.leaderOnly(s.events))
	mux.HandleFunc("GET /v1/previews", s.leaderOnly(s.previews))
	mux.HandleFunc("GET /v1/services", s.leaderOnly(s.services))
	mux.HandleFunc("GET /v1/brokers", s.leaderOnly(s.brokers))
	mux.HandleFunc("GET /v1/secrets/public-key", s.publicKey)
	mux.HandleFunc("POST /v1/webhook", s.leaderOnly(newWebhook(cfg).serve))
	if cfg.Logs != nil {
		mux.HandleFunc("GET /v1/logs/{name}", s.logs)
	}
	if cfg.Blobs != nil {
		mux.Handle("/v2/", cfg.Blobs)
		mux.Handle("/v1/blobs/", cfg.Blobs)
	}
	return mux
}

type server struct {
	cfg ServerConfig
}

// leaderOnly answers 503 on a standby controller: its view of the apps is
// not kept up to date.
func (s *server) leaderOnly(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if leading, leader := s.cfg.Backend.Leading(r.Context()); !leading {
			if leader == "" {
				leader = "not elected yet"
			}
			writeError(w, http.StatusServiceUnavailable, "this controller is a standby; the leader is "+leader)
			return
		}
		h(w, r)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, Error{Error: msg})
}

func (s *server) apps(w http.ResponseWriter, r *http.Request) {
	space := r.URL.Query().Get("space")
	out := []App{}
	for _, a := range s.appViews(r.Context()) {
		if space == "" || a.Space == space {
			out = append(out, a)
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// appViews is every app as `driftless apps` shows it.
func (s *server) appViews(ctx context.Context) []App {
	states := s.cfg.Backend.AppStates(ctx)
	now := time.Now()
	out := make([]App, 0, len(states))
	for _, st := range states {
		out = append(out, appView(st, now))
	}
	return out
}

// resolveSpace finds the space of an app named name: the one asked for, or
// the only space that has such an app.
func (s *server) resolveSpace(ctx context.Context, name, space string) (string, error) {
	if space != "" {
		return space, nil
	}
	var found []string
	for _, a := range s.cfg.Backend.AppStates(ctx) {
		if a.App.Name == name {
			found = append(found, a.App.Space)
		}
	}
	switch len(found) {
	case 0:
		return "", errNotFound
	case 1:
		return found[0], nil
	default:
		return "", errors.New("app " + name + " exists in several spaces (" + strings.Join(found, ", ") + "): say which with --space")
	}
}

var errNotFound = errors.New("no such app")

func (s *server) app(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	space, err := s.resolveSpace(r.Context(), name, r.URL.Query().Get("space"))
	if errors.Is(err, errNotFound) {
		writeError(w, http.StatusNotFound, "no app named "+name+" is declared in any source")
		return
	}
	if err != nil {
		writeError(w, http.StatusConflict, err.Error())
		return
	}
	st, ok := s.cfg.Backend.AppState(r.Context(), space, name)
	if !ok {
		writeError(w, http.StatusNotFound, "no app named "+name+" in space "+space)
		return
	}
	writeJSON(w, http.StatusOK, appDetail(st, time.Now()))
}

func (s *server) status(w http.ResponseWriter, r *http.Request) {
	st := s.cfg.Backend.Status(r.Context())
	var apps []App
	if st.Leading {
		apps = s.appViews(r.Context())
	}
	writeJSON(w, http.StatusOK, statusView(st, apps))
}

func (s *server) sync(w http.ResponseWriter, r *http.Request) {
	wait := r.URL.Query().Get("wait") != ""
	timeout := 5 * time.Minute
	if t := r.URL.Query().Get("timeout"); t != "" {
		d, err := time.ParseDuration(t)
		if err != nil || d <= 0 {
			writeError(w, http.StatusBadRequest, "timeout must be a duration such as 90s")
			return
		}
		timeout = d
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	res := SyncResult{Sources: s.cfg.Backend.Sync(ctx)}
	if wait {
		res.Converged, res.Message = s.waitSettled(ctx)
		res.Sources = s.cfg.Backend.Status(ctx).Sources
	}
	res.Sources = sourceViews(res.Sources)
	writeJSON(w, http.StatusOK, res)
}

// waitSettled waits until every app runs its target release at the
// desired count (or its staging failed), or ctx ends.
func (s *server) waitSettled(ctx context.Context) (bool, string) {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		if done, msg := settled(s.appViews(ctx)); done {
			return true, msg
		}
		select {
		case <-ctx.Done():
			return false, "gave up waiting: " + ctx.Err().Error()
		case <-t.C:
		}
	}
}

func (s *server) previews(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, previewViews(s.cfg.Backend.Previews(r.Context()), s.appViews(r.Context())))
}

func (s *server) events(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	evs := s.cfg.Backend.Events(q.Get("space"), q.Get("app"))
	if evs == nil {
		evs = []model.Event{}
	}
	writeJSON(w, http.StatusOK, evs)
}
