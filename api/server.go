package api

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/driftless/driftless/dashboard"
	"github.com/driftless/driftless/model"
	"github.com/driftless/driftless/policies"
	"github.com/driftless/driftless/reconciler"
)

// Backend is what the API serves: the controller's state, of which the
// API makes its views (views.go), and its sync trigger.
// reconciler.Controller implements it.
type Backend interface {
	AppStates(ctx context.Context) []reconciler.AppState
	AppState(ctx context.Context, space, name string) (reconciler.AppState, bool)
	Status(ctx context.Context) reconciler.Status
	// Sync fetches every source of space ("" for every source) now and
	// applies what changed; it returns the statuses of those sources.
	Sync(ctx context.Context, space string) []model.SourceStatus
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
	// RecordEvent records an event of the API's (refused
	// authentications, tokens made and revoked).
	RecordEvent(ev model.Event)
	// Authorize asks the policies in force (driftless.authz) whether in
	// is allowed.
	Authorize(ctx context.Context, in policies.AuthzInput) (policies.Decision, error)
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
	// Journal reads the kept log lines and events (/v1/logs,
	// /v1/events). Required.
	Journal Journal
	// WebhookSecret enables POST /v1/webhook (webhook.go): GitHub's,
	// Gitea's and Forgejo's deliveries must be signed with it (HMAC-SHA256
	// of the body), GitLab's must carry it as X-Gitlab-Token. A push
	// fetches the sources of its repository. Empty disables the webhook.
	WebhookSecret string
	// PublicKey is the platform's age public key, served at
	// /v1/secrets/public-key for `driftless secrets encrypt`.
	PublicKey string
	// Tokens authenticates every request but /healthz and the webhook's
	// (auth.go). Required.
	Tokens TokenStore
	Log    *slog.Logger
}

// NewHandler returns the API's HTTP handler. Every route but /healthz,
// the webhook (signed by the forge) and the dashboard's static assets
// (/ui/, which call the API with the user's token) needs a token
// (auth.go); what a token may do is the policies' decision
// (driftless.authz).
func NewHandler(cfg ServerConfig) http.Handler {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	s := &server{cfg: cfg, auth: newAuth(cfg.Tokens, cfg.Backend)}
	open := http.NewServeMux()
	open.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	open.HandleFunc("POST /v1/webhook", s.leaderOnly(newWebhook(cfg).serve))
	open.Handle("GET "+dashboard.Prefix, dashboard.Handler())
	open.Handle("GET /{$}", http.RedirectHandler(dashboard.Prefix, http.StatusFound))

	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/apps", s.leaderOnly(s.apps))
	mux.HandleFunc("GET /v1/apps/{name}", s.leaderOnly(s.app))
	mux.HandleFunc("GET /v1/apps/{name}/env", s.leaderOnly(s.env))
	mux.HandleFunc("GET /v1/status", s.auth.guard(VerbRead, ResourceStatus, s.status))
	mux.HandleFunc("POST /v1/sync", s.leaderOnly(s.sync))
	mux.HandleFunc("GET /v1/events", s.events)
	mux.HandleFunc("GET /v1/previews", s.leaderOnly(s.previews))
	mux.HandleFunc("GET /v1/services", s.leaderOnly(s.services))
	mux.HandleFunc("GET /v1/brokers", s.leaderOnly(s.auth.guard(VerbRead, ResourceBrokers, s.brokers)))
	mux.HandleFunc("GET /v1/secrets/public-key", s.auth.guard(VerbRead, ResourcePublicKey, s.publicKey))
	mux.HandleFunc("POST /v1/tokens", s.auth.guard(VerbManage, ResourceTokens, s.createToken))
	mux.HandleFunc("GET /v1/tokens", s.auth.guard(VerbRead, ResourceTokens, s.listTokens))
	mux.HandleFunc("DELETE /v1/tokens/{name}", s.auth.guard(VerbManage, ResourceTokens, s.revokeToken))
	mux.HandleFunc("GET /v1/can", s.can)
	mux.HandleFunc("GET /v1/logs/{name}", s.logs)
	if cfg.Blobs != nil {
		mux.Handle("/v2/", s.auth.blobs(cfg.Blobs))
		mux.Handle("/v1/blobs/", s.auth.blobs(cfg.Blobs))
	}
	open.Handle("/", s.auth.authenticate(mux))
	return open
}

type server struct {
	cfg  ServerConfig
	auth *auth
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

// appViews is every app the request may read, as `driftless apps` shows
// it.
func (s *server) appViews(ctx context.Context) []App {
	return s.appViewsIn(ctx, s.auth.filter(ctx, VerbRead, ResourceApps))
}

// appViewsIn is appViews with the request's decisions on reading apps.
func (s *server) appViewsIn(ctx context.Context, readable *filter) []App {
	states := s.cfg.Backend.AppStates(ctx)
	now := time.Now()
	out := make([]App, 0, len(states))
	for _, st := range states {
		if readable.in(st.App.Space) {
			out = append(out, appView(st, now))
		}
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
	readable := s.auth.filter(ctx, VerbRead, ResourceApps)
	for _, a := range s.cfg.Backend.AppStates(ctx) {
		if a.App.Name == name && readable.in(a.App.Space) {
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
	if st, ok := s.appState(w, r, ResourceApps); ok {
		writeJSON(w, http.StatusOK, appDetail(st, time.Now()))
	}
}

// env is `driftless env APP`: the app's environment as its manifest
// declares it (what a space developer reads in git), for those who may
// read env; service credentials are never part of it.
func (s *server) env(w http.ResponseWriter, r *http.Request) {
	if st, ok := s.appState(w, r, ResourceEnv); ok {
		env := map[string]string{}
		if rel := st.Release(st.App.ReleaseID); rel != nil && rel.Run.Env != nil {
			env = rel.Run.Env
		}
		writeJSON(w, http.StatusOK, AppEnv{Space: st.App.Space, App: st.App.Name, Env: env})
	}
}

// appState finds the app a request names, if the request may read
// resource of it; otherwise it answers 404, 409 or 403.
func (s *server) appState(w http.ResponseWriter, r *http.Request, resource string) (reconciler.AppState, bool) {
	name := r.PathValue("name")
	space, err := s.resolveSpace(r.Context(), name, r.URL.Query().Get("space"))
	if errors.Is(err, errNotFound) {
		writeError(w, http.StatusNotFound, "no app named "+name+" is declared in any space this token may read")
		return reconciler.AppState{}, false
	}
	if err != nil {
		writeError(w, http.StatusConflict, err.Error())
		return reconciler.AppState{}, false
	}
	if !s.auth.allowed(w, r, VerbRead, resource, space) {
		return reconciler.AppState{}, false
	}
	st, ok := s.cfg.Backend.AppState(r.Context(), space, name)
	if !ok {
		writeError(w, http.StatusNotFound, "no app named "+name+" in space "+space)
		return reconciler.AppState{}, false
	}
	return st, true
}

func (s *server) status(w http.ResponseWriter, r *http.Request) {
	st := s.cfg.Backend.Status(r.Context())
	readable := s.auth.filter(r.Context(), VerbRead, ResourceApps)
	st.Sources = slices.DeleteFunc(st.Sources, func(src model.SourceStatus) bool { return !readable.in(src.Space) })
	var apps []App
	if st.Leading {
		apps = s.appViewsIn(r.Context(), readable)
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
	space := r.URL.Query().Get("space")
	if !s.auth.allowed(w, r, VerbSync, ResourceSources, space) {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	res := SyncResult{Sources: s.cfg.Backend.Sync(ctx, space)}
	if wait {
		res.Converged, res.Message = s.waitSettled(ctx, space)
		res.Sources = s.cfg.Backend.Status(ctx).Sources
	}
	res.Sources = sourceViews(res.Sources)
	writeJSON(w, http.StatusOK, res)
}

// waitSettled waits until every app (of space, "" for all) runs its
// target release at the desired count (or its staging failed), or ctx
// ends.
func (s *server) waitSettled(ctx context.Context, space string) (bool, string) {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		apps := s.appViews(ctx)
		if space != "" {
			apps = slices.DeleteFunc(apps, func(a App) bool { return a.Space != space })
		}
		if done, msg := settled(apps); done {
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
	readable := s.auth.filter(r.Context(), VerbRead, ResourcePreviews)
	var ps []reconciler.PreviewState
	for _, p := range s.cfg.Backend.Previews(r.Context()) {
		if readable.in(p.Status.Space) {
			ps = append(ps, p)
		}
	}
	writeJSON(w, http.StatusOK, previewViews(ps, s.appViews(r.Context())))
}
