package api

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/driftless/driftless/model"
)

const testSecret = "s3cret-Hook"

// Payloads shaped as the forges document them (trimmed to what is read
// and a little around it).
const (
	githubPush = `{"ref":"refs/heads/main","before":"28e1879d029cb852e4844d9c718537df08844e03",
"after":"bffeb74224043ba2feb48d137756c8a9331c449a","created":false,"deleted":false,
"repository":{"id":1296269,"name":"apps","full_name":"octo/apps","private":false,
"html_url":"https://github.com/octo/apps","clone_url":"https://github.com/octo/apps.git",
"ssh_url":"git@github.com:octo/apps.git","git_url":"git://github.com/octo/apps.git","default_branch":"main"},
"pusher":{"name":"octocat","email":"octocat@github.com"},"sender":{"login":"octocat"},"commits":[]}`
	githubPing = `{"zen":"Keep it logically awesome.","hook_id":12345678,"hook":{"type":"Repository","events":["push","pull_request"]},
"repository":{"html_url":"https://github.com/octo/apps","clone_url":"https://github.com/octo/apps.git","ssh_url":"git@github.com:octo/apps.git"}}`
	githubPR = `{"action":"labeled","number":42,
"pull_request":{"number":42,"state":"open","title":"Try a bigger greeting","merged":false,
"user":{"login":"alice"},"labels":[{"id":1,"name":"preview"},{"id":2,"name":"bug"}],
"head":{"label":"alice:greeting","ref":"greeting","sha":"6dcb09b5b57875f334f61aebed695e2e4193db5e",
"repo":{"clone_url":"https://github.com/alice/apps.git","ssh_url":"git@github.com:alice/apps.git","html_url":"https://github.com/alice/apps"}},
"base":{"label":"octo:main","ref":"main","sha":"28e1879d029cb852e4844d9c718537df08844e03"}},
"repository":{"html_url":"https://github.com/octo/apps","clone_url":"https://github.com/octo/apps.git","ssh_url":"git@github.com:octo/apps.git"},
"sender":{"login":"alice"}}`
	giteaPush = `{"ref":"refs/heads/develop","before":"28e1879d029cb852e4844d9c718537df08844e03",
"after":"bffeb74224043ba2feb48d137756c8a9331c449a","compare_url":"http://localhost:3000/gitea/webhooks/compare/28e1879...bffeb74",
"commits":[{"id":"bffeb74224043ba2feb48d137756c8a9331c449a","message":"Webhooks Yay!"}],
"repository":{"id":140,"owner":{"id":1,"login":"gitea"},"name":"webhooks","full_name":"gitea/webhooks",
"html_url":"http://localhost:3000/gitea/webhooks","ssh_url":"ssh://gitea@localhost:2222/gitea/webhooks.git",
"clone_url":"http://localhost:3000/gitea/webhooks.git"},
"pusher":{"login":"gitea"},"sender":{"login":"gitea"}}`
	giteaPR = `{"action":"synchronized","number":7,
"pull_request":{"id":1,"number":7,"user":{"login":"bob"},"title":"New route","labels":[],"state":"open","merged":false,
"head":{"label":"feature","ref":"feature","sha":"1111111111111111111111111111111111111111",
"repo":{"clone_url":"http://localhost:3000/gitea/webhooks.git","ssh_url":"ssh://gitea@localhost:2222/gitea/webhooks.git","html_url":"http://localhost:3000/gitea/webhooks"}},
"base":{"label":"main","ref":"main","sha":"2222222222222222222222222222222222222222"}},
"repository":{"html_url":"http://localhost:3000/gitea/webhooks","ssh_url":"ssh://gitea@localhost:2222/gitea/webhooks.git","clone_url":"http://localhost:3000/gitea/webhooks.git"},
"sender":{"login":"bob"}}`
	gitlabPush = `{"object_kind":"push","event_name":"push","before":"95790bf891e76fee5e1747ab589903a6a1f80f22",
"after":"da1560886d4f094c3e6c9ef40349f7d38b5d27d7","ref":"refs/heads/master","user_username":"jsmith",
"project":{"id":15,"name":"Diaspora","web_url":"http://example.com/mike/diaspora",
"git_ssh_url":"git@example.com:mike/diaspora.git","git_http_url":"http://example.com/mike/diaspora.git",
"path_with_namespace":"mike/diaspora","default_branch":"master"},
"repository":{"name":"Diaspora","url":"git@example.com:mike/diaspora.git","homepage":"http://example.com/mike/diaspora",
"git_http_url":"http://example.com/mike/diaspora.git","git_ssh_url":"git@example.com:mike/diaspora.git"},
"commits":[],"total_commits_count":0}`
	gitlabMR = `{"object_kind":"merge_request","event_type":"merge_request",
"user":{"id":1,"name":"Administrator","username":"root"},
"project":{"id":1,"name":"Gitlab Test","web_url":"http://example.com/gitlabhq/gitlab-test",
"git_ssh_url":"git@example.com:gitlabhq/gitlab-test.git","git_http_url":"http://example.com/gitlabhq/gitlab-test.git"},
"object_attributes":{"id":99,"iid":1,"target_branch":"master","source_branch":"ms-viewport","title":"MS-Viewport",
"state":"opened","action":"update","oldrev":"aaaa1111aaaa1111aaaa1111aaaa1111aaaa1111",
"source":{"web_url":"http://example.com/awesome_space/awesome_project","git_http_url":"http://example.com/awesome_space/awesome_project.git",
"git_ssh_url":"git@example.com:awesome_space/awesome_project.git"},
"last_commit":{"id":"da1560886d4f094c3e6c9ef40349f7d38b5d27d7","message":"fixed readme"}},
"labels":[{"id":206,"title":"API"}],"changes":{}}`
)

// signHex is Gitea's and Forgejo's signature of body.
func signHex(secret, body string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(body))
	return hex.EncodeToString(m.Sum(nil))
}

// headers builds a header set from name, value pairs.
func headers(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Set(kv[i], kv[i+1])
	}
	return h
}

// The headers each forge sends with an event, signed as it signs.
func githubHeaders(event, id, body, secret string) http.Header {
	return headers("X-GitHub-Event", event, "X-GitHub-Delivery", id, "X-Hub-Signature-256", sign(secret, body),
		"User-Agent", "GitHub-Hookshot/044aadd", "Content-Type", "application/json")
}

// giteaHeaders are Gitea's: its own and GitHub's and Gogs' for
// compatibility (X-Hub-Signature-256 too, since Gitea 1.17).
func giteaHeaders(event, id, body, secret string) http.Header {
	return headers("X-Gitea-Event", event, "X-Gitea-Delivery", id, "X-Gitea-Signature", signHex(secret, body),
		"X-GitHub-Event", event, "X-GitHub-Delivery", id, "X-Gogs-Event", event, "X-Gogs-Delivery", id,
		"X-Hub-Signature-256", sign(secret, body), "Content-Type", "application/json")
}

func forgejoHeaders(event, id, body, secret string) http.Header {
	h := giteaHeaders(event, id, body, secret)
	h.Set("X-Forgejo-Event", event)
	h.Set("X-Forgejo-Delivery", id)
	h.Set("X-Forgejo-Signature", signHex(secret, body))
	return h
}

func gitlabHeaders(event, id, token string) http.Header {
	return headers("X-Gitlab-Event", event, "X-Gitlab-Event-UUID", id, "X-Gitlab-Token", token,
		"X-Gitlab-Instance", "https://gitlab.example.com", "Content-Type", "application/json")
}

// ghRepoRef is how GitHub's sample payloads name their repository.
var ghRepoRef = model.RepoRef{Forge: "github", Path: "octo/apps"}

func TestParseDelivery(t *testing.T) {
	githubURLs := []string{"git@github.com:octo/apps.git", "https://github.com/octo/apps", "https://github.com/octo/apps.git"}
	giteaURLs := []string{"http://localhost:3000/gitea/webhooks", "http://localhost:3000/gitea/webhooks.git", "ssh://gitea@localhost:2222/gitea/webhooks.git"}
	tests := []struct {
		name   string
		header http.Header
		body   string
		want   Delivery
		unauth string // a part of the ErrUnauthorized error wanted
		err    string // a part of another error wanted
	}{
		{name: "github push", header: githubHeaders("push", "d-1", githubPush, testSecret), body: githubPush,
			want: Delivery{Forge: GitHub, Repo: ghRepoRef, Kind: EventPush, Event: "push", ID: "d-1", RepoURLs: githubURLs,
				Ref: "refs/heads/main", After: "bffeb74224043ba2feb48d137756c8a9331c449a"}},
		{name: "github ping", header: githubHeaders("ping", "d-2", githubPing, testSecret), body: githubPing,
			want: Delivery{Forge: GitHub, Kind: EventPing, Event: "ping", ID: "d-2", RepoURLs: githubURLs}},
		{name: "github pull request", header: githubHeaders("pull_request", "d-3", githubPR, testSecret), body: githubPR,
			want: Delivery{Forge: GitHub, Kind: EventPullRequest, Event: "pull_request", ID: "d-3", RepoURLs: githubURLs,
				PullRequest: &PullRequest{Number: 42, Action: PRLabeled, RawAction: "labeled", Title: "Try a bigger greeting",
					HeadSHA: "6dcb09b5b57875f334f61aebed695e2e4193db5e", HeadRef: "greeting", BaseRef: "main",
					HeadRepoURLs: []string{"https://github.com/alice/apps.git", "git@github.com:alice/apps.git", "https://github.com/alice/apps"},
					Author:       "alice", Labels: []string{"preview", "bug"}, Ref: "refs/pull/42/head"}}},
		{name: "github issue comment is ignored unread", header: githubHeaders("issue_comment", "d-4", "not json", testSecret), body: "not json",
			want: Delivery{Forge: GitHub, Kind: EventIgnored, Event: "issue_comment", ID: "d-4"}},
		{name: "github wrong secret", header: githubHeaders("push", "d-5", githubPush, "other"), body: githubPush,
			unauth: "wrong X-Hub-Signature-256"},
		{name: "github signature of another body", header: githubHeaders("push", "d-5", githubPing, testSecret), body: githubPush,
			unauth: "X-Hub-Signature-256"},
		{name: "github missing signature", header: headers("X-GitHub-Event", "push"), body: githubPush,
			unauth: "missing or wrong X-Hub-Signature-256"},
		{name: "github sha1 only", header: headers("X-GitHub-Event", "push", "X-Hub-Signature", "sha1=00"), body: githubPush,
			unauth: "X-Hub-Signature-256"},
		{name: "no forge headers", header: headers("Content-Type", "application/json"), body: githubPush,
			unauth: "no signature"},
		{name: "github push unreadable", header: githubHeaders("push", "d-6", "{", testSecret), body: "{",
			err: "decoding the JSON body"},
		{name: "gitea push", header: giteaHeaders("push", "g-1", giteaPush, testSecret), body: giteaPush,
			want: Delivery{Forge: Gitea, Repo: model.RepoRef{Forge: "gitea", Path: "gitea/webhooks"}, Kind: EventPush, Event: "push", ID: "g-1", RepoURLs: giteaURLs,
				Ref: "refs/heads/develop", After: "bffeb74224043ba2feb48d137756c8a9331c449a"}},
		{name: "gitea pull request synchronized", header: giteaHeaders("pull_request", "g-2", giteaPR, testSecret), body: giteaPR,
			want: Delivery{Forge: Gitea, Kind: EventPullRequest, Event: "pull_request", ID: "g-2", RepoURLs: giteaURLs,
				PullRequest: &PullRequest{Number: 7, Action: PRUpdated, RawAction: "synchronized", Title: "New route",
					HeadSHA: "1111111111111111111111111111111111111111", HeadRef: "feature", BaseRef: "main",
					HeadRepoURLs: []string{"http://localhost:3000/gitea/webhooks.git", "ssh://gitea@localhost:2222/gitea/webhooks.git", "http://localhost:3000/gitea/webhooks"},
					Author:       "bob", Ref: "refs/pull/7/head"}}},
		{name: "gitea wrong secret", header: giteaHeaders("push", "g-3", giteaPush, "other"), body: giteaPush,
			unauth: "X-Gitea-Signature does not match"},
		{name: "gitea detected before github: its own signature decides, not a valid github one",
			header: func() http.Header {
				h := giteaHeaders("push", "g-4", giteaPush, testSecret)
				h.Set("X-Gitea-Signature", signHex("other", giteaPush))
				return h
			}(), body: giteaPush, unauth: "X-Gitea-Signature does not match"},
		{name: "gitea detected before github: a bad github signature does not matter",
			header: func() http.Header {
				h := giteaHeaders("push", "g-5", giteaPush, testSecret)
				h.Set("X-Hub-Signature-256", sign("other", giteaPush))
				return h
			}(), body: giteaPush,
			want: Delivery{Forge: Gitea, Repo: model.RepoRef{Forge: "gitea", Path: "gitea/webhooks"}, Kind: EventPush, Event: "push", ID: "g-5", RepoURLs: giteaURLs,
				Ref: "refs/heads/develop", After: "bffeb74224043ba2feb48d137756c8a9331c449a"}},
		{name: "gitea missing its signature", header: func() http.Header {
			h := giteaHeaders("push", "g-6", giteaPush, testSecret)
			h.Del("X-Gitea-Signature")
			return h
		}(), body: giteaPush, unauth: "missing X-Gitea-Signature"},
		{name: "gitea signature not hex", header: func() http.Header {
			h := giteaHeaders("push", "g-7", giteaPush, testSecret)
			h.Set("X-Gitea-Signature", "zz")
			return h
		}(), body: giteaPush, unauth: "X-Gitea-Signature does not match"},
		{name: "forgejo push", header: forgejoHeaders("push", "f-1", giteaPush, testSecret), body: giteaPush,
			want: Delivery{Forge: Forgejo, Repo: model.RepoRef{Forge: "forgejo", Path: "gitea/webhooks"}, Kind: EventPush, Event: "push", ID: "f-1", RepoURLs: giteaURLs,
				Ref: "refs/heads/develop", After: "bffeb74224043ba2feb48d137756c8a9331c449a"}},
		{name: "forgejo detected before gitea", header: func() http.Header {
			h := forgejoHeaders("push", "f-2", giteaPush, testSecret)
			h.Set("X-Forgejo-Signature", signHex("other", giteaPush))
			return h
		}(), body: giteaPush, unauth: "X-Forgejo-Signature does not match"},
		{name: "forgejo release ignored", header: forgejoHeaders("release", "f-3", `{}`, testSecret), body: `{}`,
			want: Delivery{Forge: Forgejo, Kind: EventIgnored, Event: "release", ID: "f-3"}},
		{name: "gitlab push", header: gitlabHeaders("Push Hook", "l-1", testSecret), body: gitlabPush,
			want: Delivery{Forge: GitLab, Repo: model.RepoRef{Forge: "gitlab", Path: "mike/diaspora", ProjectID: "15"}, Kind: EventPush, Event: "Push Hook", ID: "l-1",
				RepoURLs: []string{"git@example.com:mike/diaspora.git", "http://example.com/mike/diaspora", "http://example.com/mike/diaspora.git"},
				Ref:      "refs/heads/master", After: "da1560886d4f094c3e6c9ef40349f7d38b5d27d7"}},
		{name: "gitlab idempotency key wins over the event uuid", header: func() http.Header {
			h := gitlabHeaders("Push Hook", "l-2", testSecret)
			h.Set("Idempotency-Key", "idem-1")
			return h
		}(), body: gitlabPush,
			want: Delivery{Forge: GitLab, Repo: model.RepoRef{Forge: "gitlab", Path: "mike/diaspora", ProjectID: "15"}, Kind: EventPush, Event: "Push Hook", ID: "idem-1",
				RepoURLs: []string{"git@example.com:mike/diaspora.git", "http://example.com/mike/diaspora", "http://example.com/mike/diaspora.git"},
				Ref:      "refs/heads/master", After: "da1560886d4f094c3e6c9ef40349f7d38b5d27d7"}},
		{name: "gitlab merge request", header: gitlabHeaders("Merge Request Hook", "l-3", testSecret), body: gitlabMR,
			want: Delivery{Forge: GitLab, Repo: model.RepoRef{Forge: "gitlab", ProjectID: "1"}, Kind: EventPullRequest, Event: "Merge Request Hook", ID: "l-3",
				RepoURLs: []string{"git@example.com:gitlabhq/gitlab-test.git", "http://example.com/gitlabhq/gitlab-test", "http://example.com/gitlabhq/gitlab-test.git"},
				PullRequest: &PullRequest{Number: 1, Action: PRUpdated, RawAction: "update", Title: "MS-Viewport",
					HeadSHA: "da1560886d4f094c3e6c9ef40349f7d38b5d27d7", HeadRef: "ms-viewport", BaseRef: "master",
					HeadRepoURLs: []string{"http://example.com/awesome_space/awesome_project.git", "git@example.com:awesome_space/awesome_project.git",
						"http://example.com/awesome_space/awesome_project"},
					Author: "root", Labels: []string{"API"}, Ref: "refs/merge-requests/1/head"}}},
		{name: "gitlab wrong token", header: gitlabHeaders("Push Hook", "l-4", testSecret+"x"), body: gitlabPush,
			unauth: "wrong X-Gitlab-Token"},
		{name: "gitlab token prefix", header: gitlabHeaders("Push Hook", "l-5", testSecret[:4]), body: gitlabPush,
			unauth: "X-Gitlab-Token"},
		{name: "gitlab missing token", header: headers("X-Gitlab-Event", "Push Hook"), body: gitlabPush,
			unauth: "missing or wrong X-Gitlab-Token"},
		{name: "gitlab tag push ignored", header: gitlabHeaders("Tag Push Hook", "l-6", testSecret), body: gitlabPush,
			want: Delivery{Forge: GitLab, Kind: EventIgnored, Event: "Tag Push Hook", ID: "l-6"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseDelivery(tt.header, []byte(tt.body), testSecret)
			switch {
			case tt.unauth != "":
				if !errors.Is(err, ErrUnauthorized) || !strings.Contains(err.Error(), tt.unauth) {
					t.Fatalf("err = %v, want ErrUnauthorized with %q", err, tt.unauth)
				}
			case tt.err != "":
				if err == nil || errors.Is(err, ErrUnauthorized) || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
			case err != nil:
				t.Fatal(err)
			case !reflect.DeepEqual(got, tt.want):
				t.Fatalf("got  %+v\nwant %+v", got, tt.want)
			}
			if err != nil && strings.Contains(err.Error(), testSecret[:6]) {
				t.Fatalf("the error %q shows the secret", err)
			}
		})
	}
}

func TestGitLabMergeRequestActions(t *testing.T) {
	tests := []struct {
		action, oldrev, changes string
		want                    PRAction
		merged                  bool
	}{
		{"open", "", "{}", PROpened, false},
		{"reopen", "", "{}", PRReopened, false},
		{"close", "", "{}", PRClosed, false},
		{"merge", "", "{}", PRClosed, true},
		{"update", "abc", "{}", PRUpdated, false},
		{"update", "", `{"labels":{"previous":[],"current":[{"title":"preview"}]}}`, PRLabeled, false},
		{"update", "", `{"title":{"previous":"a","current":"b"}}`, PROther, false},
		{"approved", "", "{}", PROther, false},
	}
	for _, tt := range tests {
		body := `{"object_kind":"merge_request","user":{"username":"root"},
"project":{"git_http_url":"http://example.com/g/p.git"},
"object_attributes":{"iid":3,"action":"` + tt.action + `","oldrev":"` + tt.oldrev + `","source_branch":"b","target_branch":"main","last_commit":{"id":"c"}},
"changes":` + tt.changes + `}`
		d, err := ParseDelivery(gitlabHeaders("Merge Request Hook", "x", testSecret), []byte(body), testSecret)
		if err != nil {
			t.Fatalf("%s: %v", tt.action, err)
		}
		if d.PullRequest.Action != tt.want || d.PullRequest.Merged != tt.merged {
			t.Errorf("%s (oldrev %q, changes %s) = %s merged %v, want %s merged %v", tt.action, tt.oldrev, tt.changes,
				d.PullRequest.Action, d.PullRequest.Merged, tt.want, tt.merged)
		}
	}
}

func TestParseDeliveryWithoutSecret(t *testing.T) {
	_, err := ParseDelivery(githubHeaders("push", "d", githubPush, ""), []byte(githubPush), "")
	if !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("err = %v, want ErrUnauthorized: an empty secret authenticates nothing", err)
	}
}

func TestRecentIDs(t *testing.T) {
	r := newRecentIDs(3)
	steps := []struct {
		id  string
		new bool
	}{
		{"a", true}, {"a", false}, {"b", true}, {"c", true}, {"b", false},
		{"d", true}, // forgets a
		{"a", true}, // forgets b
		{"c", false}, {"b", true},
	}
	for i, s := range steps {
		if got := r.add(s.id); got != s.new {
			t.Fatalf("step %d: add(%q) = %v, want %v", i, s.id, got, s.new)
		}
	}
}
