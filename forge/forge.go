// Package forge talks to the forges driftless deploys from (GitHub, Gitea,
// Forgejo and GitLab) over their REST APIs: it posts commit statuses on the
// commits the platform deploys and lists a repository's open pull requests
// (GitLab: merge requests), the safety net for webhook deliveries that were
// lost.
//
// The controller decides what to report and when (a preview starting,
// serving or refused; the tracked branch deployed); this package only
// speaks HTTP: Client makes one call, Reporter queues statuses in the
// background so that a deploy never waits for a forge, and retries them.
//
// A Client's token is a secret: it is sent only in the request headers of
// its own API's host, never written into an error, a log line or a
// String().
package forge

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/driftless/driftless/model"
)

// Kind is the kind of forge, which decides the API's paths, payloads and
// authentication.
type Kind string

// The kinds of forge. Forgejo speaks Gitea's API: ParseKind reads
// "forgejo" as Gitea.
const (
	GitHub Kind = "github"
	Gitea  Kind = "gitea"
	GitLab Kind = "gitlab"
)

// Kinds are the kinds of forge, in the order errors list them.
var Kinds = []Kind{GitHub, Gitea, GitLab}

// ErrInvalid is wrapped by the errors of a call that cannot succeed as
// asked (an unknown kind or state, a malformed repository path, an empty
// commit): it is never worth retrying.
var ErrInvalid = errors.New("invalid forge request")

// ParseKind reads a forge's kind, case-insensitively: "github", "gitea",
// "gitlab", or "forgejo" (Gitea's API).
func ParseKind(s string) (Kind, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "github":
		return GitHub, nil
	case "gitea", "forgejo":
		return Gitea, nil
	case "gitlab":
		return GitLab, nil
	}
	return "", fmt.Errorf("%w: unknown forge kind %q: want github, gitea, forgejo (Gitea's API) or gitlab", ErrInvalid, s)
}

// Repo is a repository on a forge.
type Repo struct {
	Kind Kind
	// Path is "owner/repo" (GitLab: the project's full path, subgroups
	// included: "group/sub/project").
	Path string
	// ProjectID is GitLab's numeric project id, optional: when empty the
	// URL-encoded Path is used, which GitLab accepts in its place. Other
	// forges ignore it.
	ProjectID string
}

// String returns "kind:path", for logs.
func (r Repo) String() string { return string(r.Kind) + ":" + r.Path }

// ownerRepo returns the escaped "{owner}/{repo}" of a GitHub or Gitea
// repository.
func (r Repo) ownerRepo() (string, error) {
	owner, name, ok := strings.Cut(strings.Trim(r.Path, "/"), "/")
	if !ok || owner == "" || name == "" || strings.Contains(name, "/") {
		return "", fmt.Errorf("%w: %s repository path %q is not owner/repo", ErrInvalid, r.Kind, r.Path)
	}
	return url.PathEscape(owner) + "/" + url.PathEscape(name), nil
}

// projectID returns the escaped {id} of a GitLab project.
func (r Repo) projectID() (string, error) {
	if r.ProjectID != "" {
		return url.PathEscape(r.ProjectID), nil
	}
	p := strings.Trim(r.Path, "/")
	if p == "" {
		return "", fmt.Errorf("%w: a GitLab project needs a ProjectID or a Path", ErrInvalid)
	}
	return url.PathEscape(p), nil // "group/project" → "group%2Fproject"
}

// RepoPath derives a repository's path on its forge from one of its URLs:
// "https://host/o/r.git", "ssh://git@host:22/o/r.git" and "git@host:o/r.git"
// give "o/r", and a GitLab project in subgroups
// ("https://gitlab.example/g/sub/r") gives "g/sub/r". A forge served under
// a path prefix would have that prefix in the result too.
//
// A local repository ("file:///any/dir/o/r.git" or "/any/dir/o/r.git")
// gives its last two segments, "o/r": tests that drive local git
// repositories name the forge repository they stand for that way. It
// returns "" when the URL has no path to take.
func RepoPath(repoURL string) string {
	n := model.NormalizeRepoURL(repoURL) // scheme://host/path, ".git" and "/" trimmed
	scheme, rest, ok := strings.Cut(n, "://")
	if !ok {
		return ""
	}
	if scheme == "file" {
		segs := strings.Split(strings.Trim(rest, "/"), "/")
		if len(segs) < 2 || segs[len(segs)-2] == "" {
			return ""
		}
		p := strings.Join(segs[len(segs)-2:], "/")
		if u, err := url.PathUnescape(p); err == nil {
			return u
		}
		return p
	}
	_, path, ok := strings.Cut(rest, "/")
	if !ok {
		return ""
	}
	path = strings.Trim(path, "/")
	if u, err := url.PathUnescape(path); err == nil {
		path = u
	}
	return path
}

// State is a commit status's state, in GitHub's and Gitea's words.
type State string

// The commit status states. GitLab has no "error": both failure and error
// are posted to it as "failed".
const (
	Pending State = "pending"
	Success State = "success"
	Failure State = "failure"
	Error   State = "error"
)

// Status is a commit status, as the forge shows it beside a commit and on
// its pull requests.
type Status struct {
	State State
	// Context names the check ("driftless/preview"); a new status of the
	// same context replaces the old one on the forge (GitLab: its "name").
	Context string
	// TargetURL is where the status links to (the preview, the deploy's
	// events), optional.
	TargetURL string
	// Description is a one-line summary, cut to MaxDescription characters.
	Description string
}

// MaxDescription is the longest description posted, in characters
// (GitHub's limit): a longer one is cut to MaxDescription-1 characters and
// "…".
const MaxDescription = 140

// validate checks the state and the context.
func (s Status) validate() error {
	switch s.State {
	case Pending, Success, Failure, Error:
	default:
		return fmt.Errorf("%w: commit status state %q: want pending, success, failure or error", ErrInvalid, s.State)
	}
	if s.Context == "" {
		return fmt.Errorf("%w: a commit status needs a context", ErrInvalid)
	}
	return nil
}

// gitlabState maps a state onto GitLab's (pending, running, success,
// failed, canceled).
func gitlabState(s State) string {
	switch s {
	case Failure, Error:
		return "failed"
	}
	return string(s)
}

// truncate cuts s to at most max characters, on a character boundary,
// ending a cut one with "…". Invalid UTF-8 is replaced first.
func truncate(s string, max int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	n := 0
	for i := range s {
		if n == max-1 {
			if utf8.RuneCountInString(s[i:]) > 1 {
				return s[:i] + "…"
			}
			return s
		}
		n++
	}
	return s
}
