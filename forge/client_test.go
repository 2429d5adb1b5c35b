package forge

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

const testToken = "tok-5ecret-ABC123"

// recorded is one request a fake forge received.
type recorded struct {
	Method, URI string
	Header      http.Header
	Body        map[string]any
}

// fakeForge is an httptest server answering every request with answer
// and recording it.
type fakeForge struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []recorded
}

func newFakeForge(t *testing.T, answer http.HandlerFunc) *fakeForge {
	t.Helper()
	f := &fakeForge{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		rec := recorded{Method: r.Method, URI: r.RequestURI, Header: r.Header.Clone()}
		if len(b) > 0 {
			if err := json.Unmarshal(b, &rec.Body); err != nil {
				t.Errorf("request body %q is not a JSON object: %v", b, err)
			}
		}
		f.mu.Lock()
		f.reqs = append(f.reqs, rec)
		f.mu.Unlock()
		answer(w, r)
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeForge) requests() []recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]recorded(nil), f.reqs...)
}

func created(w http.ResponseWriter, _ *http.Request) {
	w.WriteHeader(http.StatusCreated)
	fmt.Fprint(w, `{"id":1}`)
}

func TestPostStatus(t *testing.T) {
	const sha = "0123456789abcdef0123456789abcdef01234567"
	long := strings.Repeat("x", 150)
	cut := strings.Repeat("x", 139) + "…"
	tests := []struct {
		name       string
		api        string // appended to the server's URL
		repo       Repo
		st         Status
		wantURI    string
		wantHeader map[string]string
		wantBody   map[string]any
	}{
		{
			name:    "github",
			repo:    Repo{Kind: GitHub, Path: "octo/app"},
			st:      Status{State: Success, Context: "driftless/preview", TargetURL: "https://app-pr-7.example", Description: "serving"},
			wantURI: "/repos/octo/app/statuses/" + sha,
			wantHeader: map[string]string{"Authorization": "Bearer " + testToken, "Accept": "application/vnd.github+json",
				"X-GitHub-Api-Version": "2022-11-28", "Content-Type": "application/json", "Private-Token": ""},
			wantBody: map[string]any{"state": "success", "context": "driftless/preview",
				"target_url": "https://app-pr-7.example", "description": "serving"},
		},
		{
			name:       "github description truncated",
			repo:       Repo{Kind: GitHub, Path: "octo/app"},
			st:         Status{State: Failure, Context: "driftless", Description: long},
			wantURI:    "/repos/octo/app/statuses/" + sha,
			wantHeader: map[string]string{"Authorization": "Bearer " + testToken},
			wantBody:   map[string]any{"state": "failure", "context": "driftless", "description": cut},
		},
		{
			name:       "gitea under /api/v1",
			api:        "/api/v1/",
			repo:       Repo{Kind: Gitea, Path: "octo/app"},
			st:         Status{State: Pending, Context: "driftless/preview", TargetURL: "https://x.example/e", Description: "staging"},
			wantURI:    "/api/v1/repos/octo/app/statuses/" + sha,
			wantHeader: map[string]string{"Authorization": "token " + testToken, "X-GitHub-Api-Version": "", "Private-Token": ""},
			wantBody: map[string]any{"state": "pending", "context": "driftless/preview",
				"target_url": "https://x.example/e", "description": "staging"},
		},
		{
			name:     "gitea error stays error",
			repo:     Repo{Kind: Gitea, Path: "octo/app"},
			st:       Status{State: Error, Context: "c", Description: "boom"},
			wantURI:  "/repos/octo/app/statuses/" + sha,
			wantBody: map[string]any{"state": "error", "context": "c", "description": "boom"},
		},
		{
			name:       "gitlab path with subgroups",
			api:        "/api/v4",
			repo:       Repo{Kind: GitLab, Path: "group/sub/app"},
			st:         Status{State: Pending, Context: "driftless/preview", TargetURL: "https://t.example", Description: "staging"},
			wantURI:    "/api/v4/projects/group%2Fsub%2Fapp/statuses/" + sha,
			wantHeader: map[string]string{"Private-Token": testToken, "Authorization": ""},
			wantBody: map[string]any{"state": "pending", "name": "driftless/preview",
				"target_url": "https://t.example", "description": "staging"},
		},
		{
			name:     "gitlab project id, failure is failed",
			repo:     Repo{Kind: GitLab, Path: "group/app", ProjectID: "42"},
			st:       Status{State: Failure, Context: "driftless", Description: long},
			wantURI:  "/projects/42/statuses/" + sha,
			wantBody: map[string]any{"state": "failed", "name": "driftless", "description": cut},
		},
		{
			name:     "gitlab error is failed",
			repo:     Repo{Kind: GitLab, ProjectID: "42"},
			st:       Status{State: Error, Context: "driftless"},
			wantURI:  "/projects/42/statuses/" + sha,
			wantBody: map[string]any{"state": "failed", "name": "driftless"},
		},
		{
			name:     "gitlab success",
			repo:     Repo{Kind: GitLab, ProjectID: "42"},
			st:       Status{State: Success, Context: "driftless"},
			wantURI:  "/projects/42/statuses/" + sha,
			wantBody: map[string]any{"state": "success", "name": "driftless"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeForge(t, created)
			c := &Client{API: f.URL + tt.api, Token: testToken}
			if err := c.PostStatus(context.Background(), tt.repo, sha, tt.st); err != nil {
				t.Fatalf("PostStatus: %v", err)
			}
			reqs := f.requests()
			if len(reqs) != 1 {
				t.Fatalf("got %d requests, want 1", len(reqs))
			}
			r := reqs[0]
			if r.Method != http.MethodPost || r.URI != tt.wantURI {
				t.Errorf("request %s %s, want POST %s", r.Method, r.URI, tt.wantURI)
			}
			for k, v := range tt.wantHeader {
				if got := r.Header.Get(k); got != v {
					t.Errorf("header %s = %q, want %q", k, got, v)
				}
			}
			if fmt.Sprint(r.Body) != fmt.Sprint(tt.wantBody) {
				t.Errorf("body %v, want %v", r.Body, tt.wantBody)
			}
		})
	}
}

func TestPostStatusErrors(t *testing.T) {
	const sha = "abc123"
	tests := []struct {
		name      string
		answer    http.HandlerFunc
		repo      Repo
		st        Status
		sha       string
		wantErr   bool
		invalid   bool // wraps ErrInvalid, no request made
		status    int  // the HTTPError's
		retryable bool
	}{
		{name: "422 is not retryable", answer: answer(422, `{"message":"Validation Failed"}`),
			repo: Repo{Kind: GitHub, Path: "o/r"}, st: Status{State: Success, Context: "c"}, sha: sha,
			wantErr: true, status: 422},
		{name: "404 is not retryable", answer: answer(404, `{"message":"Not Found"}`),
			repo: Repo{Kind: Gitea, Path: "o/r"}, st: Status{State: Success, Context: "c"}, sha: sha,
			wantErr: true, status: 404},
		{name: "500 is retryable", answer: answer(500, `oops`),
			repo: Repo{Kind: GitHub, Path: "o/r"}, st: Status{State: Success, Context: "c"}, sha: sha,
			wantErr: true, status: 500, retryable: true},
		{name: "429 is retryable", answer: answer(429, ``),
			repo: Repo{Kind: GitLab, ProjectID: "1"}, st: Status{State: Success, Context: "c"}, sha: sha,
			wantErr: true, status: 429, retryable: true},
		{name: "403 without a rate limit is not retryable", answer: answer(403, `{"message":"Resource not accessible"}`),
			repo: Repo{Kind: GitHub, Path: "o/r"}, st: Status{State: Success, Context: "c"}, sha: sha,
			wantErr: true, status: 403},
		{name: "403 rate limit is retryable", answer: func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("X-RateLimit-Remaining", "0")
			w.Header().Set("X-RateLimit-Reset", fmt.Sprint(time.Now().Add(time.Minute).Unix()))
			w.WriteHeader(403)
		}, repo: Repo{Kind: GitHub, Path: "o/r"}, st: Status{State: Success, Context: "c"}, sha: sha,
			wantErr: true, status: 403, retryable: true},
		{name: "gitlab same state again is success",
			answer: answer(400, `{"message":"Cannot transition status via :enqueue from :pending (Reason(s): Status cannot transition via \"enqueue\")"}`),
			repo:   Repo{Kind: GitLab, ProjectID: "1"}, st: Status{State: Pending, Context: "c"}, sha: sha},
		{name: "unknown state", repo: Repo{Kind: GitHub, Path: "o/r"}, st: Status{State: "done", Context: "c"}, sha: sha,
			wantErr: true, invalid: true},
		{name: "no context", repo: Repo{Kind: GitHub, Path: "o/r"}, st: Status{State: Success}, sha: sha,
			wantErr: true, invalid: true},
		{name: "no commit", repo: Repo{Kind: GitHub, Path: "o/r"}, st: Status{State: Success, Context: "c"},
			wantErr: true, invalid: true},
		{name: "path not owner/repo", repo: Repo{Kind: GitHub, Path: "o/r/x"}, st: Status{State: Success, Context: "c"}, sha: sha,
			wantErr: true, invalid: true},
		{name: "unknown kind", repo: Repo{Kind: "svn", Path: "o/r"}, st: Status{State: Success, Context: "c"}, sha: sha,
			wantErr: true, invalid: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.answer == nil {
				tt.answer = created
			}
			f := newFakeForge(t, tt.answer)
			c := &Client{API: f.URL, Token: testToken}
			err := c.PostStatus(context.Background(), tt.repo, tt.sha, tt.st)
			if (err != nil) != tt.wantErr {
				t.Fatalf("PostStatus error %v, want error %v", err, tt.wantErr)
			}
			if err == nil {
				return
			}
			if got := errors.Is(err, ErrInvalid); got != tt.invalid {
				t.Errorf("errors.Is(%v, ErrInvalid) = %v, want %v", err, got, tt.invalid)
			}
			if tt.invalid && len(f.requests()) != 0 {
				t.Errorf("an invalid status made %d requests", len(f.requests()))
			}
			var he *HTTPError
			if tt.status != 0 && (!errors.As(err, &he) || he.StatusCode != tt.status) {
				t.Errorf("error %v is not an HTTPError with status %d", err, tt.status)
			}
			if got := Retryable(err); got != tt.retryable {
				t.Errorf("Retryable(%v) = %v, want %v", err, got, tt.retryable)
			}
			if !strings.Contains(err.Error(), "posting commit status") {
				t.Errorf("error %q does not say what was being done", err)
			}
		})
	}
}

func answer(code int, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(code)
		fmt.Fprint(w, body)
	}
}

// echoAuth answers 500 with every credential header it was sent.
func echoAuth(w http.ResponseWriter, r *http.Request) {
	w.WriteHeader(http.StatusInternalServerError)
	fmt.Fprintf(w, "internal error; you sent Authorization=%q PRIVATE-TOKEN=%q url=%s",
		r.Header.Get("Authorization"), r.Header.Get("PRIVATE-TOKEN"), r.URL)
}

func TestTokenNeverShown(t *testing.T) {
	f := newFakeForge(t, echoAuth)
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	for _, kind := range Kinds {
		for _, api := range []string{f.URL, closed.URL, "ftp://" + testToken + "@x"} {
			c := &Client{API: api, Token: testToken}
			repo := Repo{Kind: kind, Path: "o/r"}
			errs := []error{
				c.PostStatus(context.Background(), repo, "abc", Status{State: Success, Context: "c"}),
			}
			_, err := c.OpenPullRequests(context.Background(), repo)
			errs = append(errs, err)
			for _, err := range errs {
				if err == nil {
					t.Fatalf("%s at %s: no error", kind, api)
				}
				for _, s := range []string{err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err)} {
					if strings.Contains(s, testToken) {
						t.Errorf("%s at %s: the token is in the error %s", kind, api, s)
					}
				}
				log.Error("failed", "err", err, "client", c)
			}
			for _, s := range []string{c.String(), fmt.Sprint(c), fmt.Sprintf("%v %+v %#v %s", c, c, c, c)} {
				if strings.Contains(s, testToken) {
					t.Errorf("the token is in the client's string %s", s)
				}
			}
		}
	}
	if got := len(f.requests()); got == 0 {
		t.Fatal("the echoing server was never called: the test proves nothing")
	}
	if !strings.Contains(logs.String(), "Authorization") {
		t.Errorf("the server's echo is not in the errors: the test proves nothing:\n%s", logs.String())
	}
	if strings.Contains(logs.String(), testToken) {
		t.Errorf("the token is in the log:\n%s", logs.String())
	}
	if !strings.Contains((&Client{API: f.URL, Token: testToken}).String(), redacted) {
		t.Error("String does not say a token is set")
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name   string
		header map[string]string
		want   time.Duration
	}{
		{"none", nil, 0},
		{"seconds", map[string]string{"Retry-After": "30"}, 30 * time.Second},
		{"zero is a second", map[string]string{"Retry-After": "0"}, time.Second},
		{"http date", map[string]string{"Retry-After": now.Add(2 * time.Minute).Format(http.TimeFormat)}, 2 * time.Minute},
		{"garbage", map[string]string{"Retry-After": "soon"}, 0},
		{"rate limit reset", map[string]string{"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": fmt.Sprint(now.Add(90 * time.Second).Unix())}, 90 * time.Second},
		{"requests remain", map[string]string{"X-RateLimit-Remaining": "10", "X-RateLimit-Reset": fmt.Sprint(now.Add(90 * time.Second).Unix())}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for k, v := range tt.header {
				h.Set(k, v)
			}
			if got := retryAfter(h, now); got != tt.want {
				t.Errorf("retryAfter = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestRedirectOffHostRefused(t *testing.T) {
	other := newFakeForge(t, created)
	f := newFakeForge(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+r.URL.Path, http.StatusTemporaryRedirect)
	})
	c := &Client{API: f.URL, Token: testToken}
	err := c.PostStatus(context.Background(), Repo{Kind: GitLab, ProjectID: "1"}, "abc", Status{State: Success, Context: "c"})
	if err == nil || !strings.Contains(err.Error(), "redirect") {
		t.Errorf("PostStatus redirected to another host: error %v, want a refused redirect", err)
	}
	if n := len(other.requests()); n != 0 {
		t.Errorf("the other host got %d requests (with the token)", n)
	}
}
