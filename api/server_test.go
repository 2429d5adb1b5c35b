package api

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/driftless/driftless/model"
	"github.com/driftless/driftless/policies"
	"github.com/driftless/driftless/reconciler"
)

// fakeBackend is a Backend whose sources are repos (name → repository
// URL): it records the webhook's triggers and syncs.
type fakeBackend struct {
	repos     map[string]string
	mu        sync.Mutex
	triggered [][]string // the sources matched, per Trigger
	prs       []model.PullRequest
	synced    int
	previews  []reconciler.PreviewState
	saw       []model.RepoRef
	services  []reconciler.ServiceState
	brokers   []reconciler.BrokerState
	apps      []reconciler.AppState
	events    []model.Event
	syncedIn  []string
}

func (b *fakeBackend) Previews(context.Context) []reconciler.PreviewState { return b.previews }
func (b *fakeBackend) Services(context.Context) []reconciler.ServiceState { return b.services }
func (b *fakeBackend) Brokers(context.Context) []reconciler.BrokerState   { return b.brokers }

func (b *fakeBackend) AppStates(context.Context) []reconciler.AppState { return b.apps }
func (b *fakeBackend) AppState(_ context.Context, space, name string) (reconciler.AppState, bool) {
	for _, a := range b.apps {
		if a.App.Space == space && a.App.Name == name {
			return a, true
		}
	}
	return reconciler.AppState{}, false
}
func (b *fakeBackend) Status(context.Context) reconciler.Status { return reconciler.Status{} }
func (b *fakeBackend) Leading(context.Context) (bool, string)   { return true, "test" }
func (b *fakeBackend) Sync(_ context.Context, space string) []model.SourceStatus {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.synced++
	b.syncedIn = append(b.syncedIn, space)
	return nil
}

// RecordEvent keeps the API's events.
func (b *fakeBackend) RecordEvent(ev model.Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.events = append(b.events, ev)
}

// Authorize asks the built-in policies, as a controller without a policy
// source does.
func (b *fakeBackend) Authorize(ctx context.Context, in policies.AuthzInput) (policies.Decision, error) {
	set, err := policies.Default(ctx)
	if err != nil {
		return policies.Decision{}, err
	}
	return set.Authorize(ctx, in)
}

// Trigger matches as the controller does, by normalised URL.
func (b *fakeBackend) Trigger(_ context.Context, urls []string) []string {
	var names []string
	for name, repo := range b.repos {
		for _, u := range urls {
			if model.NormalizeRepoURL(u) == model.NormalizeRepoURL(repo) {
				names = append(names, name)
				break
			}
		}
	}
	slices.Sort(names)
	b.mu.Lock()
	defer b.mu.Unlock()
	b.triggered = append(b.triggered, names)
	return names
}

// PullRequest matches as Trigger does and names a preview per source
// for the actions that deploy or remove one.
func (b *fakeBackend) PullRequest(_ context.Context, pr model.PullRequest, urls []string) []string {
	b.mu.Lock()
	b.prs = append(b.prs, pr)
	b.mu.Unlock()
	if !pr.Action.Open() && !pr.Action.Closed() {
		return nil
	}
	var names []string
	for name, repo := range b.repos {
		for _, u := range urls {
			if model.NormalizeRepoURL(u) == model.NormalizeRepoURL(repo) {
				names = append(names, model.PreviewSourceName(name, pr.Number))
				break
			}
		}
	}
	slices.Sort(names)
	return names
}

func (b *fakeBackend) triggers() [][]string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.triggered)
}

func sign(secret, body string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(body))
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// post sends one delivery to h and returns its answer.
func post(t *testing.T, h http.Handler, header http.Header, body string) (*httptest.ResponseRecorder, WebhookResult) {
	t.Helper()
	req := httptest.NewRequest("POST", "/v1/webhook", strings.NewReader(body))
	for k, v := range header {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var res WebhookResult
	_ = json.Unmarshal(rec.Body.Bytes(), &res)
	return rec, res
}

// logCapture is a logger whose output the test reads.
type logCapture struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logCapture) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logCapture) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// githubPR as opened, closed and edited.
var (
	githubPROpened = strings.Replace(githubPR, `"action":"labeled"`, `"action":"opened"`, 1)
	githubPRClosed = strings.Replace(githubPR, `"action":"labeled"`, `"action":"closed"`, 1)
	githubPREdited = strings.Replace(githubPR, `"action":"labeled"`, `"action":"edited"`, 1)
)

func TestWebhook(t *testing.T) {
	repos := map[string]string{
		"apps":     "https://github.com/octo/apps.git",
		"mirror":   "https://GITHUB.com/octo/apps/",
		"diaspora": "http://example.com/mike/diaspora",
		"gitea":    "http://localhost:3000/gitea/webhooks",
		"other":    "https://github.com/octo/other",
	}
	otherPush := strings.ReplaceAll(githubPush, "octo/apps", "someone/else")
	tests := []struct {
		name     string
		secret   string
		header   http.Header
		body     string
		code     int
		status   string     // a part of the answer
		triggers [][]string // the sources triggered, per trigger
		prs      []model.PRAction
		saw      string // the forge:path the backend learnt for each of the payload's URLs
	}{
		{name: "github push fetches the matching sources only", secret: testSecret,
			header: githubHeaders("push", "1", githubPush, testSecret), body: githubPush,
			code: http.StatusAccepted, status: "fetching apps, mirror", triggers: [][]string{{"apps", "mirror"}}, saw: "github:octo/apps"},
		{name: "github push of another repository", secret: testSecret,
			header: githubHeaders("push", "1", otherPush, testSecret), body: otherPush,
			code: http.StatusAccepted, status: "no source matches", triggers: [][]string{nil}},
		{name: "gitea push", secret: testSecret, header: giteaHeaders("push", "1", giteaPush, testSecret), body: giteaPush,
			code: http.StatusAccepted, status: "fetching gitea", triggers: [][]string{{"gitea"}}},
		{name: "forgejo push", secret: testSecret, header: forgejoHeaders("push", "1", giteaPush, testSecret), body: giteaPush,
			code: http.StatusAccepted, status: "fetching gitea", triggers: [][]string{{"gitea"}}},
		{name: "gitlab push", secret: testSecret, header: gitlabHeaders("Push Hook", "1", testSecret), body: gitlabPush,
			code: http.StatusAccepted, status: "fetching diaspora", triggers: [][]string{{"diaspora"}}, saw: "gitlab:mike/diaspora"},
		{name: "github ping", secret: testSecret, header: githubHeaders("ping", "1", githubPing, testSecret), body: githubPing,
			code: http.StatusOK, status: "pong"},
		{name: "github pull request relabelled: the backend decides", secret: testSecret,
			header: githubHeaders("pull_request", "1", githubPR, testSecret), body: githubPR,
			code: http.StatusAccepted, status: "no preview acted on", prs: []model.PRAction{model.PRLabeled}},
		{name: "github pull request opened deploys its previews", secret: testSecret,
			header: githubHeaders("pull_request", "1", githubPROpened, testSecret), body: githubPROpened,
			code: http.StatusAccepted, status: "previews acted on: apps#pr-42, mirror#pr-42", prs: []model.PRAction{model.PROpened}},
		{name: "github pull request closed removes its previews", secret: testSecret,
			header: githubHeaders("pull_request", "1", githubPRClosed, testSecret), body: githubPRClosed,
			code: http.StatusAccepted, status: "previews removed: apps#pr-42, mirror#pr-42", prs: []model.PRAction{model.PRClosed}},
		{name: "github pull request edited: nothing to do", secret: testSecret,
			header: githubHeaders("pull_request", "1", githubPREdited, testSecret), body: githubPREdited,
			code: http.StatusAccepted, status: "pull request edited: nothing to do", prs: []model.PRAction{model.PROther}},
		{name: "gitlab merge request updated", secret: testSecret,
			header: gitlabHeaders("Merge Request Hook", "1", testSecret), body: gitlabMR,
			code: http.StatusAccepted, status: "no preview acted on: no source matches", prs: []model.PRAction{model.PRUpdated}},
		{name: "ignored event", secret: testSecret, header: githubHeaders("issues", "1", `{}`, testSecret), body: `{}`,
			code: http.StatusAccepted, status: "event issues is ignored"},
		{name: "wrong secret", secret: testSecret, header: githubHeaders("push", "1", githubPush, "other"), body: githubPush,
			code: http.StatusUnauthorized, status: "X-Hub-Signature-256"},
		{name: "gitlab wrong token", secret: testSecret, header: gitlabHeaders("Push Hook", "1", "not-"+testSecret), body: gitlabPush,
			code: http.StatusUnauthorized, status: "X-Gitlab-Token"},
		{name: "gitea wrong signature, valid github one", secret: testSecret, header: func() http.Header {
			h := giteaHeaders("push", "1", giteaPush, testSecret)
			h.Set("X-Gitea-Signature", signHex("other", giteaPush))
			return h
		}(), body: giteaPush, code: http.StatusUnauthorized, status: "X-Gitea-Signature"},
		{name: "missing signature", secret: testSecret, header: headers("X-GitHub-Event", "push"), body: githubPush,
			code: http.StatusUnauthorized, status: "X-Hub-Signature-256"},
		{name: "no headers at all", secret: testSecret, body: githubPush, code: http.StatusUnauthorized, status: "no signature"},
		{name: "unreadable body", secret: testSecret, header: githubHeaders("push", "1", "{", testSecret), body: "{",
			code: http.StatusBadRequest, status: "decoding the JSON body"},
		{name: "disabled", secret: "", header: githubHeaders("push", "1", githubPush, ""), body: githubPush,
			code: http.StatusNotFound, status: "webhooks are disabled"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := &fakeBackend{repos: repos}
			logs := &logCapture{}
			h := testHandler(ServerConfig{Backend: b, WebhookSecret: tt.secret, Log: slog.New(slog.NewTextHandler(logs, nil))})
			rec, _ := post(t, h, tt.header, tt.body)
			if rec.Code != tt.code || !strings.Contains(rec.Body.String(), tt.status) {
				t.Fatalf("answer %d %s, want %d with %q", rec.Code, rec.Body, tt.code, tt.status)
			}
			if got := b.triggers(); !reflect.DeepEqual(got, tt.triggers) {
				t.Fatalf("triggers %q, want %q", got, tt.triggers)
			}
			var prs []model.PRAction
			for _, pr := range b.prs {
				prs = append(prs, pr.Action)
			}
			if !reflect.DeepEqual(prs, tt.prs) {
				t.Fatalf("pull requests acted on %v, want %v", prs, tt.prs)
			}
			if b.synced != 0 {
				t.Fatal("a webhook synced every source")
			}
			if tt.saw != "" && len(b.saw) != 3 || tt.saw == "" && tt.code == http.StatusUnauthorized && len(b.saw) > 0 {
				t.Fatalf("repositories learnt %+v, want 3 as %q", b.saw, tt.saw)
			}
			for _, ref := range b.saw {
				if tt.saw != "" && ref.Forge+":"+ref.Path != tt.saw || ref.URL == "" {
					t.Fatalf("repository learnt %+v, want %s", ref, tt.saw)
				}
			}
			if tt.secret != "" && (strings.Contains(rec.Body.String(), tt.secret) || strings.Contains(logs.String(), tt.secret)) {
				t.Fatalf("the secret is in the answer or the logs:\n%s\n%s", rec.Body, logs)
			}
		})
	}
}

// A delivery sent again (a forge's retry, a redelivery, a replay) is not
// acted on twice; the same id from another forge, or a new id, is.
func TestWebhookDuplicateDelivery(t *testing.T) {
	b := &fakeBackend{repos: map[string]string{"apps": "https://github.com/octo/apps", "gitea": "http://localhost:3000/gitea/webhooks"}}
	h := testHandler(ServerConfig{Backend: b, WebhookSecret: testSecret, Log: slog.New(slog.DiscardHandler)})
	steps := []struct {
		header  http.Header
		body    string
		status  string
		trigger bool
	}{
		{githubHeaders("push", "72d3162e-cc78-11e3-81ab-4c9367dc0958", githubPush, testSecret), githubPush, "fetching apps", true},
		{githubHeaders("push", "72d3162e-cc78-11e3-81ab-4c9367dc0958", githubPush, testSecret), githubPush, "received before", false},
		{giteaHeaders("push", "72d3162e-cc78-11e3-81ab-4c9367dc0958", giteaPush, testSecret), giteaPush, "fetching gitea", true},
		{githubHeaders("push", "another", githubPush, testSecret), githubPush, "fetching apps", true},
		{gitlabHeaders("Push Hook", "e-1", testSecret), gitlabPush, "no source matches", true},
		{gitlabHeaders("Push Hook", "e-1", testSecret), gitlabPush, "received before", false},
		// A refused delivery is not remembered: the genuine one that
		// follows with its id is acted on.
		{githubHeaders("push", "forged", githubPush, "other"), githubPush, "X-Hub-Signature-256", false},
		{githubHeaders("push", "forged", githubPush, testSecret), githubPush, "fetching apps", true},
	}
	for i, s := range steps {
		before := len(b.triggers())
		rec, _ := post(t, h, s.header, s.body)
		if !strings.Contains(rec.Body.String(), s.status) {
			t.Fatalf("step %d: answer %d %s, want %q", i, rec.Code, rec.Body, s.status)
		}
		if triggered := len(b.triggers()) > before; triggered != s.trigger {
			t.Fatalf("step %d: triggered %v, want %v", i, triggered, s.trigger)
		}
	}
}

// standby is a Backend of a controller that does not lead.
type standby struct{ fakeBackend }

func (*standby) Leading(context.Context) (bool, string) { return false, "ctl-2" }

func TestStandbyAnswersOnlyStatus(t *testing.T) {
	h := testHandler(ServerConfig{Backend: &standby{}, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	tests := []struct {
		method, path string
		want         int
	}{
		{"GET", "/v1/status", http.StatusOK},
		{"GET", "/healthz", http.StatusOK},
		{"GET", "/v1/apps", http.StatusServiceUnavailable},
		{"GET", "/v1/apps/hello", http.StatusServiceUnavailable},
		{"POST", "/v1/sync", http.StatusServiceUnavailable},
		{"POST", "/v1/webhook", http.StatusServiceUnavailable},
	}
	for _, tt := range tests {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(tt.method, tt.path, nil))
		if rec.Code != tt.want {
			t.Errorf("%s %s = %d, want %d", tt.method, tt.path, rec.Code, tt.want)
		}
		if tt.want == http.StatusServiceUnavailable && !strings.Contains(rec.Body.String(), "the leader is ctl-2") {
			t.Errorf("%s %s body %q does not name the leader", tt.method, tt.path, rec.Body.String())
		}
	}
}

// SawRepository records what the webhook learnt of a repository.
func (b *fakeBackend) SawRepository(ref model.RepoRef) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.saw = append(b.saw, ref)
}
