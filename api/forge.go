package api

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/driftless/driftless/model"
)

// Forge is the kind of git host a webhook delivery came from.
type Forge string

// The forges whose webhooks POST /v1/webhook understands.
const (
	GitHub  Forge = "github"
	Gitea   Forge = "gitea"
	Forgejo Forge = "forgejo"
	GitLab  Forge = "gitlab"
)

// EventKind is what a delivery means here, whatever the forge calls it.
type EventKind string

// The kinds of delivery.
const (
	// EventPing is a forge checking that the hook works (GitHub's "ping").
	EventPing EventKind = "ping"
	// EventPush is new commits on a branch or tag: the matching sources
	// fetch.
	EventPush EventKind = "push"
	// EventPullRequest is a pull request (GitLab: merge request) opened,
	// updated, closed, reopened or relabelled.
	EventPullRequest EventKind = "pull_request"
	// EventIgnored is any other event: issues, comments, releases, ….
	EventIgnored EventKind = "ignored"
)

// PRAction is what happened to a pull request (model.PRAction).
type PRAction = model.PRAction

// The pull request actions (model's).
const (
	PROpened   = model.PROpened
	PRUpdated  = model.PRUpdated
	PRClosed   = model.PRClosed
	PRReopened = model.PRReopened
	PRLabeled  = model.PRLabeled
	PROther    = model.PROther
)

// Delivery is one verified webhook delivery, as ParseDelivery reads it.
type Delivery struct {
	Forge Forge
	Kind  EventKind
	// Event is the forge's own name of the event ("push", "Merge Request
	// Hook", …).
	Event string
	// ID is the forge's delivery id ("" when it sent none): a delivery
	// sent again carries the same one (GitLab: its Idempotency-Key, else
	// its X-Gitlab-Event-UUID).
	ID string
	// RepoURLs are the URLs the payload gives its repository by (clone,
	// ssh and web URLs), as sent.
	RepoURLs []string
	// Ref and After are a push's ref ("refs/heads/main") and new head.
	Ref   string
	After string
	// Repo is how the forge's API names the repository (its kind, path
	// and GitLab project id; URL left empty), for statuses and polling.
	Repo model.RepoRef
	// PullRequest is set for EventPullRequest.
	PullRequest *PullRequest
}

// PullRequest is a pull request (or GitLab merge request) event
// (model.PullRequest, which the controller deploys previews of).
type PullRequest = model.PullRequest

// ErrUnauthorized is wrapped by ParseDelivery's errors for a delivery
// whose signature or token is missing or wrong: it must be refused with
// 401 and nothing done.
var ErrUnauthorized = errors.New("webhook not authenticated")

// ParseDelivery recognises the forge a webhook delivery came from by its
// headers, checks its signature with secret, and reads what it means.
// Gitea and Forgejo also send GitHub's headers, so their own are looked at
// first:
//
//   - Forgejo (X-Forgejo-Event or X-Forgejo-Signature): X-Forgejo-Signature
//     is the hex HMAC-SHA256 of the body;
//   - Gitea (X-Gitea-Event or X-Gitea-Signature): X-Gitea-Signature, the
//     same;
//   - GitLab (X-Gitlab-Event or X-Gitlab-Token): X-Gitlab-Token is the
//     secret itself, compared in constant time;
//   - GitHub (X-GitHub-Event or X-Hub-Signature-256): X-Hub-Signature-256
//     is "sha256=" and the hex HMAC-SHA256 of the body.
//
// An error wrapping ErrUnauthorized means the delivery is not
// authenticated; any other error, that an authenticated body could not be
// read. Neither the secret nor a header's value is ever part of an error.
// Events other than push, pull requests and ping are returned as
// EventIgnored without reading the body.
func ParseDelivery(header http.Header, body []byte, secret string) (Delivery, error) {
	if secret == "" {
		return Delivery{}, fmt.Errorf("%w: no webhook secret is configured", ErrUnauthorized)
	}
	var d Delivery
	switch {
	case header.Get("X-Forgejo-Event") != "" || header.Get("X-Forgejo-Signature") != "":
		d.Forge = Forgejo
		if err := checkHexSignature(secret, body, "X-Forgejo-Signature", header.Get("X-Forgejo-Signature")); err != nil {
			return Delivery{}, err
		}
		d.Event = firstHeader(header, "X-Forgejo-Event", "X-Gitea-Event")
		d.ID = firstHeader(header, "X-Forgejo-Delivery", "X-Gitea-Delivery")
	case header.Get("X-Gitea-Event") != "" || header.Get("X-Gitea-Signature") != "":
		d.Forge = Gitea
		if err := checkHexSignature(secret, body, "X-Gitea-Signature", header.Get("X-Gitea-Signature")); err != nil {
			return Delivery{}, err
		}
		d.Event = header.Get("X-Gitea-Event")
		d.ID = header.Get("X-Gitea-Delivery")
	case header.Get("X-Gitlab-Event") != "" || header.Get("X-Gitlab-Token") != "":
		d.Forge = GitLab
		if !validToken(secret, header.Get("X-Gitlab-Token")) {
			return Delivery{}, fmt.Errorf("%w: GitLab delivery with a missing or wrong X-Gitlab-Token", ErrUnauthorized)
		}
		d.Event = header.Get("X-Gitlab-Event")
		d.ID = firstHeader(header, "Idempotency-Key", "X-Gitlab-Event-UUID")
	case header.Get("X-GitHub-Event") != "" || header.Get("X-Hub-Signature-256") != "":
		d.Forge = GitHub
		if !ValidSignature(secret, body, header.Get("X-Hub-Signature-256")) {
			return Delivery{}, fmt.Errorf("%w: GitHub delivery with a missing or wrong X-Hub-Signature-256", ErrUnauthorized)
		}
		d.Event = header.Get("X-GitHub-Event")
		d.ID = header.Get("X-GitHub-Delivery")
	default:
		return Delivery{}, fmt.Errorf("%w: no signature: want X-Hub-Signature-256 (GitHub), X-Gitea-Signature, X-Forgejo-Signature or X-Gitlab-Token",
			ErrUnauthorized)
	}
	if err := d.read(body); err != nil {
		return Delivery{}, fmt.Errorf("reading the %s %q delivery: %w", d.Forge, d.Event, err)
	}
	return d, nil
}

// read fills in the kind of d and what its body says.
func (d *Delivery) read(body []byte) error {
	var err error
	switch d.Forge {
	case GitLab:
		err = d.readGitLab(body)
	default:
		err = d.readGitHubLike(body)
	}
	slices.Sort(d.RepoURLs)
	d.RepoURLs = slices.Compact(d.RepoURLs)
	return err
}

// ghRepo is a repository as GitHub, Gitea and Forgejo describe it.
type ghRepo struct {
	FullName string `json:"full_name"`
	CloneURL string `json:"clone_url"`
	SSHURL   string `json:"ssh_url"`
	HTMLURL  string `json:"html_url"`
}

func (r *ghRepo) urls() []string {
	if r == nil {
		return nil
	}
	return nonEmpty(r.CloneURL, r.SSHURL, r.HTMLURL)
}

// ghPayload is the part of GitHub's, Gitea's and Forgejo's push and
// pull_request payloads read here.
type ghPayload struct {
	Ref         string  `json:"ref"`
	After       string  `json:"after"`
	Action      string  `json:"action"`
	Number      int     `json:"number"`
	Repository  *ghRepo `json:"repository"`
	PullRequest *struct {
		Number int    `json:"number"`
		Title  string `json:"title"`
		Merged bool   `json:"merged"`
		User   struct {
			Login string `json:"login"`
		} `json:"user"`
		Labels []struct {
			Name string `json:"name"`
		} `json:"labels"`
		Head struct {
			SHA  string  `json:"sha"`
			Ref  string  `json:"ref"`
			Repo *ghRepo `json:"repo"`
		} `json:"head"`
		Base struct {
			Ref string `json:"ref"`
		} `json:"base"`
	} `json:"pull_request"`
}

// readGitHubLike reads GitHub's, Gitea's and Forgejo's events.
func (d *Delivery) readGitHubLike(body []byte) error {
	switch d.Event {
	case "ping":
		d.Kind = EventPing
	case "push":
		d.Kind = EventPush
	case "pull_request", "pull_request_sync":
		// Gitea and Forgejo name new commits on a pull request's branch
		// pull_request_sync in some versions, pull_request in others.
		d.Kind = EventPullRequest
	default:
		d.Kind = EventIgnored
		return nil
	}
	var p ghPayload
	if err := json.Unmarshal(body, &p); err != nil {
		return fmt.Errorf("decoding the JSON body: %w", err)
	}
	d.RepoURLs = p.Repository.urls()
	if p.Repository != nil && p.Repository.FullName != "" {
		d.Repo = model.RepoRef{Forge: string(d.Forge), Path: p.Repository.FullName}
	}
	switch d.Kind {
	case EventPush:
		d.Ref, d.After = p.Ref, p.After
		if d.Ref == "" {
			return errors.New("a push without a ref")
		}
	case EventPullRequest:
		pr := p.PullRequest
		if pr == nil {
			return errors.New("a pull request event without its pull_request")
		}
		out := &PullRequest{Number: p.Number, RawAction: p.Action, Action: ghAction(p.Action), Merged: pr.Merged,
			Title: pr.Title, HeadSHA: pr.Head.SHA, HeadRef: pr.Head.Ref, BaseRef: pr.Base.Ref,
			HeadRepoURLs: pr.Head.Repo.urls(), Author: pr.User.Login}
		if out.Number == 0 {
			out.Number = pr.Number
		}
		out.Ref = model.GitHubPullRef(out.Number)
		for _, l := range pr.Labels {
			out.Labels = append(out.Labels, l.Name)
		}
		d.PullRequest = out
	}
	if len(d.RepoURLs) == 0 && d.Kind != EventPing {
		return errors.New("the payload names no repository URL")
	}
	return nil
}

// ghAction maps GitHub's and Gitea's pull request actions.
func ghAction(a string) PRAction {
	switch a {
	case "opened":
		return PROpened
	case "synchronize", "synchronized":
		return PRUpdated
	case "closed":
		return PRClosed
	case "reopened":
		return PRReopened
	case "labeled", "unlabeled", "label_updated", "label_cleared":
		return PRLabeled
	}
	return PROther
}

// glProject is a project as GitLab describes it (and its older
// "repository" object, which has the same clone URLs).
type glProject struct {
	ID                int    `json:"id"`
	PathWithNamespace string `json:"path_with_namespace"`
	GitHTTPURL        string `json:"git_http_url"`
	GitSSHURL         string `json:"git_ssh_url"`
	WebURL            string `json:"web_url"`
	Homepage          string `json:"homepage"`
}

func (p *glProject) urls() []string {
	if p == nil {
		return nil
	}
	return nonEmpty(p.GitHTTPURL, p.GitSSHURL, p.WebURL, p.Homepage)
}

// glPayload is the part of GitLab's Push Hook and Merge Request Hook
// payloads read here.
type glPayload struct {
	Ref        string     `json:"ref"`
	After      string     `json:"after"`
	Project    *glProject `json:"project"`
	Repository *glProject `json:"repository"`
	User       struct {
		Username string `json:"username"`
	} `json:"user"`
	Labels []struct {
		Title string `json:"title"`
	} `json:"labels"`
	Changes struct {
		Labels json.RawMessage `json:"labels"`
	} `json:"changes"`
	ObjectAttributes *struct {
		IID          int        `json:"iid"`
		Title        string     `json:"title"`
		Action       string     `json:"action"`
		State        string     `json:"state"`
		OldRev       string     `json:"oldrev"`
		SourceBranch string     `json:"source_branch"`
		TargetBranch string     `json:"target_branch"`
		Source       *glProject `json:"source"`
		LastCommit   struct {
			ID string `json:"id"`
		} `json:"last_commit"`
	} `json:"object_attributes"`
}

// readGitLab reads GitLab's events.
func (d *Delivery) readGitLab(body []byte) error {
	switch d.Event {
	case "Push Hook":
		d.Kind = EventPush
	case "Merge Request Hook":
		d.Kind = EventPullRequest
	default: // GitLab has no ping: its test button sends a real event.
		d.Kind = EventIgnored
		return nil
	}
	var p glPayload
	if err := json.Unmarshal(body, &p); err != nil {
		return fmt.Errorf("decoding the JSON body: %w", err)
	}
	d.RepoURLs = append(p.Project.urls(), p.Repository.urls()...)
	if p.Project != nil {
		d.Repo = model.RepoRef{Forge: string(GitLab), Path: p.Project.PathWithNamespace}
		if p.Project.ID > 0 {
			d.Repo.ProjectID = fmt.Sprint(p.Project.ID)
		}
	}
	if len(d.RepoURLs) == 0 {
		return errors.New("the payload names no repository URL")
	}
	if d.Kind == EventPush {
		d.Ref, d.After = p.Ref, p.After
		if d.Ref == "" {
			return errors.New("a push without a ref")
		}
		return nil
	}
	oa := p.ObjectAttributes
	if oa == nil {
		return errors.New("a merge request event without its object_attributes")
	}
	pr := &PullRequest{Number: oa.IID, RawAction: oa.Action, Merged: oa.Action == "merge" || oa.State == "merged",
		Title: oa.Title, HeadSHA: oa.LastCommit.ID, HeadRef: oa.SourceBranch, BaseRef: oa.TargetBranch,
		HeadRepoURLs: oa.Source.urls(), Author: p.User.Username, Ref: model.GitLabMergeRequestRef(oa.IID)}
	switch oa.Action {
	case "open":
		pr.Action = PROpened
	case "reopen":
		pr.Action = PRReopened
	case "close", "merge":
		pr.Action = PRClosed
	case "update":
		switch {
		case oa.OldRev != "":
			pr.Action = PRUpdated
		case len(p.Changes.Labels) > 0:
			pr.Action = PRLabeled
		default:
			pr.Action = PROther
		}
	default:
		pr.Action = PROther
	}
	for _, l := range p.Labels {
		pr.Labels = append(pr.Labels, l.Title)
	}
	d.PullRequest = pr
	return nil
}

// checkHexSignature checks a bare hex HMAC-SHA256 of body (Gitea's and
// Forgejo's form) in header name.
func checkHexSignature(secret string, body []byte, name, value string) error {
	if value == "" {
		return fmt.Errorf("%w: missing %s", ErrUnauthorized, name)
	}
	got, err := hex.DecodeString(value)
	if err != nil || !hmac.Equal(got, bodyMAC(secret, body)) {
		return fmt.Errorf("%w: %s does not match the body", ErrUnauthorized, name)
	}
	return nil
}

// ValidSignature checks a "sha256=<hex>" HMAC of body made with secret
// (GitHub's X-Hub-Signature-256), in constant time.
func ValidSignature(secret string, body []byte, header string) bool {
	sig, ok := strings.CutPrefix(header, "sha256=")
	if !ok {
		return false
	}
	got, err := hex.DecodeString(sig)
	if err != nil {
		return false
	}
	return hmac.Equal(got, bodyMAC(secret, body))
}

// bodyMAC is the HMAC-SHA256 of body keyed with secret.
func bodyMAC(secret string, body []byte) []byte {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return mac.Sum(nil)
}

// validToken compares GitLab's token with secret in constant time, its
// length included (both are hashed first).
func validToken(secret, token string) bool {
	if token == "" {
		return false
	}
	a, b := sha256.Sum256([]byte(secret)), sha256.Sum256([]byte(token))
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

// firstHeader is the first of the named headers that is set.
func firstHeader(h http.Header, names ...string) string {
	for _, n := range names {
		if v := h.Get(n); v != "" {
			return v
		}
	}
	return ""
}

func nonEmpty(ss ...string) []string {
	var out []string
	for _, s := range ss {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}
