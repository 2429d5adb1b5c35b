package forge

import (
	"context"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/driftless/driftless/model"
)

// Real-shaped answers of each forge's "list pull requests", trimmed to a
// few of their many fields besides the ones read.
const (
	githubPage1 = `[{"url":"https://api.github.com/repos/octo/app/pulls/7","id":1934,"node_id":"PR_kwDO","html_url":"https://github.com/octo/app/pull/7",
 "number":7,"state":"open","locked":false,"title":"Add the search page","user":{"login":"alice","id":1,"type":"User","site_admin":false},
 "body":"Adds search.","labels":[{"id":208045946,"node_id":"MDU6","url":"https://api.github.com/repos/octo/app/labels/preview","name":"preview","description":"","color":"f29513","default":false}],
 "milestone":null,"draft":false,"created_at":"2025-01-02T03:04:05Z","updated_at":"2025-01-02T03:04:05Z","merged_at":null,"merge_commit_sha":null,
 "head":{"label":"alice:search","ref":"search","sha":"6dcb09b5b57875f334f61aebed695e2e4193db5e","user":{"login":"alice"},
   "repo":{"id":2,"name":"app","full_name":"alice/app","private":false,"clone_url":"https://github.com/alice/app.git","ssh_url":"git@github.com:alice/app.git","html_url":"https://github.com/alice/app"}},
 "base":{"label":"octo:main","ref":"main","sha":"aa218f56b14c9653891f9e74264a383fa43fefbd","user":{"login":"octo"},
   "repo":{"id":1,"name":"app","full_name":"octo/app","clone_url":"https://github.com/octo/app.git"}},
 "author_association":"CONTRIBUTOR","auto_merge":null,"active_lock_reason":null}]`
	githubPage2 = `[{"number":9,"state":"open","title":"Deleted fork","user":{"login":"bob"},"labels":[],
 "head":{"label":"unknown:fix","ref":"fix","sha":"1111111111111111111111111111111111111111","repo":null},
 "base":{"ref":"main","sha":"aa218f56b14c9653891f9e74264a383fa43fefbd"}}]`
	giteaPage = `[{"id":12,"url":"https://gitea.example/octo/app/pulls/3","number":3,"user":{"id":1,"login":"carol","login_name":"","full_name":"","email":"carol@noreply.gitea.example","avatar_url":"","language":"","is_admin":false},
 "title":"Fix the footer","body":"","labels":[{"id":5,"name":"bug","exclusive":false,"is_archived":false,"color":"ee0701","description":"","url":"https://gitea.example/api/v1/repos/octo/app/labels/5"},{"id":6,"name":"preview","color":"00ff00"}],
 "milestone":null,"assignee":null,"assignees":null,"requested_reviewers":null,"state":"open","draft":false,"is_locked":false,"comments":0,
 "html_url":"https://gitea.example/octo/app/pulls/3","diff_url":"https://gitea.example/octo/app/pulls/3.diff","patch_url":"https://gitea.example/octo/app/pulls/3.patch",
 "mergeable":true,"merged":false,"merged_at":null,"merge_commit_sha":null,"merged_by":null,"allow_maintainer_edit":false,
 "base":{"label":"main","ref":"main","sha":"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb","repo_id":1,"repo":{"id":1,"full_name":"octo/app","clone_url":"https://gitea.example/octo/app.git"}},
 "head":{"label":"footer","ref":"footer","sha":"cccccccccccccccccccccccccccccccccccccccc","repo_id":1,
   "repo":{"id":1,"full_name":"octo/app","clone_url":"https://gitea.example/octo/app.git","ssh_url":"git@gitea.example:octo/app.git","html_url":"https://gitea.example/octo/app"}},
 "merge_base":"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb","due_date":null,"created_at":"2025-01-02T03:04:05Z","updated_at":"2025-01-02T03:04:05Z","closed_at":null,"pin_order":0}]`
	gitlabPage1 = `[{"id":84,"iid":5,"project_id":3,"title":"Draft: new header","description":"","state":"opened","created_at":"2025-01-02T03:04:05.000Z",
 "updated_at":"2025-01-02T03:04:05.000Z","merged_by":null,"merge_user":null,"merged_at":null,"closed_by":null,"closed_at":null,
 "target_branch":"main","source_branch":"header","user_notes_count":0,"upvotes":0,"downvotes":0,
 "author":{"id":1,"username":"dave","name":"Dave","state":"active","locked":false,"avatar_url":null,"web_url":"https://gitlab.example/dave"},
 "assignees":[],"assignee":null,"reviewers":[],"source_project_id":3,"target_project_id":3,"labels":["preview","ui"],"draft":true,"work_in_progress":true,
 "milestone":null,"merge_when_pipeline_succeeds":false,"merge_status":"can_be_merged","detailed_merge_status":"draft_status",
 "sha":"dddddddddddddddddddddddddddddddddddddddd","merge_commit_sha":null,"squash_commit_sha":null,"discussion_locked":null,
 "should_remove_source_branch":null,"force_remove_source_branch":true,"reference":"!5","references":{"short":"!5","relative":"!5","full":"group/sub/app!5"},
 "web_url":"https://gitlab.example/group/sub/app/-/merge_requests/5","time_stats":{"time_estimate":0},"squash":false,"task_completion_status":{"count":0,"completed_count":0},"has_conflicts":false,"blocking_discussions_resolved":true}]`
	gitlabPage2 = `[{"id":85,"iid":6,"project_id":3,"title":"Fork MR","state":"opened","target_branch":"main","source_branch":"patch-1",
 "author":{"id":2,"username":"erin"},"source_project_id":4,"target_project_id":3,"labels":[],"sha":"eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee"}]`
)

func TestOpenPullRequests(t *testing.T) {
	alice := model.PullRequest{Number: 7, Action: model.PROpened, Title: "Add the search page",
		HeadSHA: "6dcb09b5b57875f334f61aebed695e2e4193db5e", HeadRef: "search", BaseRef: "main",
		HeadRepoURLs: []string{"https://github.com/alice/app.git", "git@github.com:alice/app.git", "https://github.com/alice/app"},
		Ref:          "refs/pull/7/head", Author: "alice", Labels: []string{"preview"}}
	bob := model.PullRequest{Number: 9, Action: model.PROpened, Title: "Deleted fork",
		HeadSHA: "1111111111111111111111111111111111111111", HeadRef: "fix", BaseRef: "main", Ref: "refs/pull/9/head", Author: "bob"}
	carol := model.PullRequest{Number: 3, Action: model.PROpened, Title: "Fix the footer",
		HeadSHA: "cccccccccccccccccccccccccccccccccccccccc", HeadRef: "footer", BaseRef: "main",
		HeadRepoURLs: []string{"https://gitea.example/octo/app.git", "git@gitea.example:octo/app.git", "https://gitea.example/octo/app"},
		Ref:          "refs/pull/3/head", Author: "carol", Labels: []string{"bug", "preview"}}
	dave := model.PullRequest{Number: 5, Action: model.PROpened, Title: "Draft: new header",
		HeadSHA: "dddddddddddddddddddddddddddddddddddddddd", HeadRef: "header", BaseRef: "main",
		Ref: "refs/merge-requests/5/head", Author: "dave", Labels: []string{"preview", "ui"}}
	erin := model.PullRequest{Number: 6, Action: model.PROpened, Title: "Fork MR",
		HeadSHA: "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee", HeadRef: "patch-1", BaseRef: "main",
		Ref: "refs/merge-requests/6/head", Author: "erin", Labels: []string{}}

	// manyGitea is a full Gitea page (50) of minimal pull requests.
	var many []string
	var manyWant []model.PullRequest
	for n := 100; n < 100+giteaPageSize; n++ {
		many = append(many, fmt.Sprintf(`{"number":%d,"title":"t","user":{"login":"u"},"head":{"ref":"b","sha":"s"},"base":{"ref":"main"}}`, n))
		manyWant = append(manyWant, model.PullRequest{Number: n, Action: model.PROpened, Title: "t", HeadSHA: "s",
			HeadRef: "b", BaseRef: "main", Ref: model.GitHubPullRef(n), Author: "u"})
	}
	manyGitea := "[" + strings.Join(many, ",") + "]"

	type page struct {
		uri    string            // the request expected
		header map[string]string // answered; "{URL}" is the server's URL
		body   string
	}
	tests := []struct {
		name  string
		api   string
		repo  Repo
		pages []page
		want  []model.PullRequest
	}{
		{
			name: "github, two pages by Link",
			repo: Repo{Kind: GitHub, Path: "octo/app"},
			pages: []page{
				{uri: "/repos/octo/app/pulls?state=open&per_page=100", body: githubPage1, header: map[string]string{
					"Link": `<{URL}/repositories/1/pulls?state=open&per_page=100&page=2>; rel="next", <{URL}/repositories/1/pulls?state=open&per_page=100&page=2>; rel="last"`}},
				{uri: "/repositories/1/pulls?state=open&per_page=100&page=2", body: githubPage2, header: map[string]string{
					"Link": `<{URL}/repositories/1/pulls?state=open&per_page=100&page=1>; rel="prev", <{URL}/repositories/1/pulls?state=open&per_page=100&page=1>; rel="first"`}},
			},
			want: []model.PullRequest{alice, bob},
		},
		{
			name:  "github, none open",
			repo:  Repo{Kind: GitHub, Path: "octo/app"},
			pages: []page{{uri: "/repos/octo/app/pulls?state=open&per_page=100", body: `[]`}},
			want:  []model.PullRequest{},
		},
		{
			name: "gitea, Link header",
			api:  "/api/v1",
			repo: Repo{Kind: Gitea, Path: "octo/app"},
			pages: []page{
				{uri: "/api/v1/repos/octo/app/pulls?state=open&limit=50&page=1", body: giteaPage, header: map[string]string{
					"Link":          `<{URL}/api/v1/repos/octo/app/pulls?limit=50&page=2&state=open>; rel="next",<{URL}/api/v1/repos/octo/app/pulls?limit=50&page=2&state=open>; rel="last"`,
					"X-Total-Count": "2"}},
				{uri: "/api/v1/repos/octo/app/pulls?limit=50&page=2&state=open", body: githubPage2},
			},
			want: []model.PullRequest{carol, bob},
		},
		{
			name: "gitea without Link: next page while full",
			api:  "/api/v1",
			repo: Repo{Kind: Gitea, Path: "octo/app"},
			pages: []page{
				{uri: "/api/v1/repos/octo/app/pulls?state=open&limit=50&page=1", body: manyGitea},
				{uri: "/api/v1/repos/octo/app/pulls?limit=50&page=2&state=open", body: giteaPage},
			},
			want: append(append([]model.PullRequest(nil), manyWant...), carol),
		},
		{
			name: "gitlab, X-Next-Page",
			api:  "/api/v4",
			repo: Repo{Kind: GitLab, Path: "group/sub/app"},
			pages: []page{
				{uri: "/api/v4/projects/group%2Fsub%2Fapp/merge_requests?state=opened&per_page=100", body: gitlabPage1,
					header: map[string]string{"X-Next-Page": "2", "X-Page": "1", "X-Per-Page": "100", "X-Total-Pages": "2"}},
				{uri: "/api/v4/projects/group%2Fsub%2Fapp/merge_requests?page=2&per_page=100&state=opened", body: gitlabPage2,
					header: map[string]string{"X-Next-Page": "", "X-Page": "2"}},
			},
			want: []model.PullRequest{dave, erin},
		},
		{
			name:  "gitlab, project id",
			repo:  Repo{Kind: GitLab, Path: "group/sub/app", ProjectID: "3"},
			pages: []page{{uri: "/projects/3/merge_requests?state=opened&per_page=100", body: gitlabPage2}},
			want:  []model.PullRequest{erin},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var f *fakeForge
			f = newFakeForge(t, func(w http.ResponseWriter, r *http.Request) {
				n := len(f.requests()) - 1
				if n >= len(tt.pages) {
					t.Errorf("request %d (%s) beyond the %d pages", n+1, r.RequestURI, len(tt.pages))
					w.WriteHeader(http.StatusNotFound)
					return
				}
				p := tt.pages[n]
				if r.Method != http.MethodGet || r.RequestURI != p.uri {
					t.Errorf("request %d: %s %s, want GET %s", n+1, r.Method, r.RequestURI, p.uri)
				}
				for k, v := range p.header {
					w.Header().Set(k, strings.ReplaceAll(v, "{URL}", f.URL))
				}
				fmt.Fprint(w, p.body)
			})
			c := &Client{API: f.URL + tt.api, Token: testToken}
			got, err := c.OpenPullRequests(context.Background(), tt.repo)
			if err != nil {
				t.Fatalf("OpenPullRequests: %v", err)
			}
			if len(got) != len(tt.want) || (len(got) > 0 && !reflect.DeepEqual(got, tt.want)) {
				t.Errorf("OpenPullRequests =\n%+v\nwant\n%+v", got, tt.want)
			}
			if n := len(f.requests()); n != len(tt.pages) {
				t.Errorf("made %d requests, want %d", n, len(tt.pages))
			}
		})
	}
}

func TestOpenPullRequestsErrors(t *testing.T) {
	tests := []struct {
		name   string
		repo   Repo
		answer func(url string) http.HandlerFunc
		want   string
	}{
		{"next page on another host", Repo{Kind: GitHub, Path: "o/r"}, func(string) http.HandlerFunc {
			return func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Link", `<https://elsewhere.example/pulls?page=2>; rel="next"`)
				fmt.Fprint(w, `[]`)
			}
		}, "another host"},
		{"next page is the same page", Repo{Kind: GitHub, Path: "o/r"}, func(u string) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Link", "<"+u+r.RequestURI+`>; rel="next"`)
				fmt.Fprint(w, `[]`)
			}
		}, "same page"},
		{"endless gitlab pages", Repo{Kind: GitLab, ProjectID: "1"}, func(string) http.HandlerFunc {
			n := 0
			return func(w http.ResponseWriter, _ *http.Request) {
				n++
				w.Header().Set("X-Next-Page", fmt.Sprint(n+1))
				fmt.Fprint(w, `[]`)
			}
		}, "more than 50 pages"},
		{"not JSON", Repo{Kind: Gitea, Path: "o/r"}, func(string) http.HandlerFunc {
			return answer(200, `<html>login</html>`)
		}, "decoding"},
		{"401", Repo{Kind: GitLab, ProjectID: "1"}, func(string) http.HandlerFunc {
			return answer(401, `{"message":"401 Unauthorized"}`)
		}, "401 Unauthorized"},
		{"repo path not owner/repo", Repo{Kind: Gitea, Path: "justone"}, nil, "not owner/repo"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var f *fakeForge
			var h http.HandlerFunc
			f = newFakeForge(t, func(w http.ResponseWriter, r *http.Request) { h(w, r) })
			if tt.answer != nil {
				h = tt.answer(f.URL)
			}
			_, err := (&Client{API: f.URL, Token: testToken}).OpenPullRequests(context.Background(), tt.repo)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("OpenPullRequests error %v, want one saying %q", err, tt.want)
			}
			if !strings.Contains(err.Error(), "listing the open pull requests") {
				t.Errorf("error %q does not say what was being done", err)
			}
		})
	}
}

func TestLinkNext(t *testing.T) {
	tests := []struct {
		name   string
		values []string
		want   string
	}{
		{"none", nil, ""},
		{"next and last", []string{`<https://a/x?page=2>; rel="next", <https://a/x?page=5>; rel="last"`}, "https://a/x?page=2"},
		{"prev first", []string{`<https://a/x?page=1>; rel="prev", <https://a/x?page=3>; rel="next"`}, "https://a/x?page=3"},
		{"unquoted, spaced", []string{`<https://a/x?page=4> ; rel=next`}, "https://a/x?page=4"},
		{"two header lines", []string{`<https://a/x?page=1>; rel="first"`, `<https://a/x?page=2>; rel="next"`}, "https://a/x?page=2"},
		{"only last", []string{`<https://a/x?page=5>; rel="last"`}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := linkNext(tt.values); got != tt.want {
				t.Errorf("linkNext = %q, want %q", got, tt.want)
			}
		})
	}
}
