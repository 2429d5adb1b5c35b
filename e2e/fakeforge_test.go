package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/driftless/driftless/forge"
	"github.com/driftless/driftless/model"
)

// fakeForge is a forge's REST API on loopback, the test's own (an
// httptest server): it records every commit status posted to it and
// serves the open pull requests (GitLab: merge requests) from a list the
// test changes. It checks the shape of every request strictly, as the
// forge's documentation gives it — path, authentication header, JSON
// fields, state, context — and answers a request of another shape 422
// (a status) or 404 (an unknown path); each such request fails the test
// when it ends. Only the forge is fake: the platform driving it is real.
type fakeForge struct {
	kind  forge.Kind
	token string
	srv   *httptest.Server

	mu sync.Mutex
	// repo matches the repository paths the platform may name ("o/r";
	// GitLab: a project id or its path).
	repo     *regexp.Regexp
	statuses []postedStatus
	open     []fakePR
	lists    int
	bad      []string
}

// postedStatus is one commit status the forge was sent, as it came.
type postedStatus struct {
	Method, Path, Auth string
	Repo, SHA          string
	// State, Context (GitLab: name), TargetURL and Description are the
	// JSON body's.
	State, Context, TargetURL, Description string
	At                                     time.Time
}

// fakePR is an open pull request the forge lists.
type fakePR struct {
	Number int
	Head   string
	Branch string
	// CloneURL is the head repository's URL.
	CloneURL string
}

// forgeContexts are the contexts (GitLab: names) the platform posts.
var forgeContexts = []string{model.StatusContextPreview, model.StatusContextDeploy}

// forgeStates are the states each kind of forge accepts in a status.
var forgeStates = map[forge.Kind][]string{
	forge.GitHub: {"pending", "success", "failure", "error"},
	forge.GitLab: {"pending", "running", "success", "failed", "canceled"},
	forge.Gitea:  {"pending", "success", "error", "failure", "warning"},
}

var shaRE = regexp.MustCompile(`^[0-9a-f]{40}$`)

// newFakeForge starts a forge of kind answering token, for the
// repositories repo matches; it is closed, and its strictness checked,
// when the test ends (after a platform started later has stopped).
func newFakeForge(t testing.TB, kind forge.Kind, token string, repo *regexp.Regexp) *fakeForge {
	t.Helper()
	f := &fakeForge{kind: kind, token: token, repo: repo}
	f.srv = httptest.NewServer(f) // loopback: 127.0.0.1
	t.Cleanup(func() {
		f.srv.Close()
		f.mu.Lock()
		defer f.mu.Unlock()
		for _, b := range f.bad {
			t.Errorf("the forge got a request of the wrong shape: %s", b)
		}
	})
	return f
}

// URL is the forge's API root.
func (f *fakeForge) URL() string { return f.srv.URL }

// setRepo makes repo match the repository paths the platform may name.
func (f *fakeForge) setRepo(repo *regexp.Regexp) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.repo = repo
}

// setOpen makes prs the open pull requests the forge lists.
func (f *fakeForge) setOpen(prs ...fakePR) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.open = slices.Clone(prs)
}

// listed is how many times the open pull requests were listed.
func (f *fakeForge) listed() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lists
}

// posted returns the statuses posted on commit sha with context ctx, in
// the order they came ("" for any sha or context).
func (f *fakeForge) posted(sha, ctx string) []postedStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []postedStatus
	for _, s := range f.statuses {
		if (sha == "" || s.SHA == sha) && (ctx == "" || s.Context == ctx) {
			out = append(out, s)
		}
	}
	return out
}

// states is the states of statuses, in order.
func states(statuses []postedStatus) []string {
	out := make([]string, len(statuses))
	for i, s := range statuses {
		out[i] = s.State
	}
	return out
}

// ServeHTTP answers the forge's API.
func (f *fakeForge) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err == nil {
		code, answer, bad := f.serve(r, body)
		if bad != "" {
			f.mu.Lock()
			f.bad = append(f.bad, fmt.Sprintf("%s %s: %s", r.Method, r.URL.RequestURI(), bad))
			f.mu.Unlock()
			answer = map[string]string{"message": bad}
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(answer)
	}
}

// serve checks one request and answers it: the status code, the JSON
// answer, and what was wrong with it ("" if nothing).
func (f *fakeForge) serve(r *http.Request, body []byte) (int, any, string) {
	if bad := f.checkAuth(r.Header); bad != "" {
		return http.StatusUnauthorized, nil, bad
	}
	path := r.URL.EscapedPath()
	if f.kind == forge.Gitea {
		rest, ok := strings.CutPrefix(path, "/api/v1/")
		if !ok {
			return http.StatusNotFound, nil, "Gitea's API is under /api/v1"
		}
		path = "/" + rest
	}
	seg := strings.Split(strings.TrimPrefix(path, "/"), "/")
	github := f.kind == forge.GitHub || f.kind == forge.Gitea // Gitea's paths are GitHub's
	var repo, sha, op string
	switch {
	case github && len(seg) == 5 && seg[0] == "repos" && seg[3] == "statuses":
		repo, op, sha = seg[1]+"/"+seg[2], "status", seg[4]
	case github && len(seg) == 4 && seg[0] == "repos" && seg[3] == "pulls":
		repo, op = seg[1]+"/"+seg[2], "list"
	case f.kind == forge.GitLab && len(seg) == 4 && seg[0] == "projects" && seg[2] == "statuses":
		repo, op, sha = seg[1], "status", seg[3]
	case f.kind == forge.GitLab && len(seg) == 3 && seg[0] == "projects" && seg[2] == "merge_requests":
		repo, op = seg[1], "list"
	default:
		return http.StatusNotFound, nil, "no such API path for " + string(f.kind)
	}
	if p, err := url.PathUnescape(repo); err == nil {
		repo = p
	}
	f.mu.Lock()
	want := f.repo
	f.mu.Unlock()
	if !want.MatchString(repo) {
		return http.StatusNotFound, nil, fmt.Sprintf("repository %q is not the platform's (want %s)", repo, want)
	}
	if op == "list" {
		return f.list(r)
	}
	return f.status(r, body, repo, sha)
}

// checkAuth checks the token is sent as the forge wants it, and only so.
func (f *fakeForge) checkAuth(h http.Header) string {
	switch f.kind {
	case forge.GitHub:
		if got := h.Get("Authorization"); got != "Bearer "+f.token {
			return fmt.Sprintf("Authorization header %q is not Bearer and the token", redact(got, f.token))
		}
	case forge.GitLab:
		if got := h.Get("PRIVATE-TOKEN"); got != f.token || h.Get("Authorization") != "" {
			return "PRIVATE-TOKEN is not the token, or an Authorization header came too"
		}
	case forge.Gitea:
		if got := h.Get("Authorization"); got != "token "+f.token {
			return fmt.Sprintf("Authorization header %q is not Gitea's token scheme", redact(got, f.token))
		}
	}
	return ""
}

// redact hides token in s.
func redact(s, token string) string { return strings.ReplaceAll(s, token, "<token>") }

// status records a commit status after checking it.
func (f *fakeForge) status(r *http.Request, body []byte, repo, sha string) (int, any, string) {
	if r.Method != http.MethodPost {
		return http.StatusMethodNotAllowed, nil, "statuses are POSTed"
	}
	if ct, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || ct != "application/json" {
		return http.StatusUnsupportedMediaType, nil, "Content-Type is not application/json"
	}
	if !shaRE.MatchString(sha) {
		return http.StatusUnprocessableEntity, nil, fmt.Sprintf("commit %q is not a full sha", sha)
	}
	// The body has the forge's fields and no other.
	var gh struct {
		State       string `json:"state"`
		TargetURL   string `json:"target_url"`
		Description string `json:"description"`
		Context     string `json:"context"`
	}
	var gl struct {
		State       string `json:"state"`
		Name        string `json:"name"`
		TargetURL   string `json:"target_url"`
		Description string `json:"description"`
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	st := postedStatus{Method: r.Method, Path: r.URL.EscapedPath(), Auth: redact(r.Header.Get("Authorization"), f.token),
		Repo: repo, SHA: sha, At: time.Now()}
	switch f.kind {
	case forge.GitLab:
		if err := dec.Decode(&gl); err != nil {
			return http.StatusUnprocessableEntity, nil, fmt.Sprintf("body %s: %v", body, err)
		}
		st.State, st.Context, st.TargetURL, st.Description = gl.State, gl.Name, gl.TargetURL, gl.Description
	default:
		if err := dec.Decode(&gh); err != nil {
			return http.StatusUnprocessableEntity, nil, fmt.Sprintf("body %s: %v", body, err)
		}
		st.State, st.Context, st.TargetURL, st.Description = gh.State, gh.Context, gh.TargetURL, gh.Description
	}
	switch {
	case !slices.Contains(forgeStates[f.kind], st.State):
		return http.StatusUnprocessableEntity, nil, fmt.Sprintf("state %q is not one of %v", st.State, forgeStates[f.kind])
	case !slices.Contains(forgeContexts, st.Context):
		return http.StatusUnprocessableEntity, nil, fmt.Sprintf("context %q is not one of %v", st.Context, forgeContexts)
	case len([]rune(st.Description)) > forge.MaxDescription:
		return http.StatusUnprocessableEntity, nil, fmt.Sprintf("description longer than %d characters", forge.MaxDescription)
	case strings.Contains(string(body), f.token):
		return http.StatusUnprocessableEntity, nil, "the body holds the token"
	}
	if st.TargetURL != "" {
		if u, err := url.Parse(st.TargetURL); err != nil || u.Scheme != "http" || u.Host == "" {
			return http.StatusUnprocessableEntity, nil, fmt.Sprintf("target_url %q is not an http URL", st.TargetURL)
		}
	}
	f.mu.Lock()
	f.statuses = append(f.statuses, st)
	n := len(f.statuses)
	f.mu.Unlock()
	return http.StatusCreated, map[string]any{"id": n, "state": st.State, "context": st.Context, "sha": sha}, ""
}

// list answers the open pull requests (GitLab: merge requests) after
// checking the query asks for the open ones.
func (f *fakeForge) list(r *http.Request) (int, any, string) {
	if r.Method != http.MethodGet {
		return http.StatusMethodNotAllowed, nil, "pull requests are listed with GET"
	}
	q := r.URL.Query()
	want := map[forge.Kind]string{forge.GitHub: "open", forge.GitLab: "opened", forge.Gitea: "open"}[f.kind]
	pageSize, size := "per_page", "100"
	if f.kind == forge.Gitea {
		pageSize, size = "limit", q.Get("limit") // Gitea pages with limit and page
	}
	if q.Get("state") != want || q.Get(pageSize) != size || size == "" {
		return http.StatusUnprocessableEntity, nil, fmt.Sprintf("query %q does not ask for state=%s and a page size", r.URL.RawQuery, want)
	}
	f.mu.Lock()
	f.lists++
	open := slices.Clone(f.open)
	f.mu.Unlock()
	out := []map[string]any{}
	for _, pr := range open {
		if f.kind == forge.GitLab {
			out = append(out, map[string]any{"iid": pr.Number, "title": "e2e", "state": "opened", "sha": pr.Head,
				"source_branch": pr.Branch, "target_branch": "main", "labels": []string{}, "author": map[string]string{"username": "e2e"}})
			continue
		}
		repo := map[string]any{"full_name": "e2e/repo", "clone_url": pr.CloneURL, "html_url": pr.CloneURL}
		out = append(out, map[string]any{"number": pr.Number, "title": "e2e", "state": "open", "user": map[string]string{"login": "e2e"},
			"labels": []any{}, "head": map[string]any{"sha": pr.Head, "ref": pr.Branch, "repo": repo},
			"base": map[string]any{"ref": "main", "repo": repo}})
	}
	return http.StatusOK, out, ""
}

// randomToken is a token no test output could hold by chance.
func randomToken(t testing.TB) string {
	t.Helper()
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "e2e-forge-" + hex.EncodeToString(b)
}
