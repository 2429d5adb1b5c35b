package model

import (
	"fmt"
	"strings"
)

// PRAction is what happened to a pull request, in one vocabulary for all
// forges.
type PRAction string

// The pull request actions.
const (
	PROpened   PRAction = "opened"
	PRUpdated  PRAction = "updated" // new commits on its head branch
	PRClosed   PRAction = "closed"  // closed or merged (see PullRequest.Merged)
	PRReopened PRAction = "reopened"
	PRLabeled  PRAction = "labeled" // its labels changed
	PROther    PRAction = "other"   // edited, assigned, reviewed, …
)

// PullRequest is a pull request (or GitLab merge request) event, as a
// forge's webhook tells it (api.ParseDelivery) and the controller deploys
// its preview.
type PullRequest struct {
	Number int
	// Action is the forge's action mapped onto PRAction; RawAction is the
	// forge's own word for it.
	Action    PRAction
	RawAction string
	Merged    bool
	Title     string
	// HeadSHA and HeadRef are the commit and branch proposed; BaseRef the
	// branch they would be merged into.
	HeadSHA string
	HeadRef string
	BaseRef string
	// HeadRepoURLs are the URLs of the repository HeadRef is in, when the
	// payload names it: a fork's differ from the delivery's repository.
	HeadRepoURLs []string
	// Ref is the ref of the base repository that holds the pull request's
	// head, forks included: "refs/pull/<N>/head" (GitHub, Gitea, Forgejo)
	// or "refs/merge-requests/<IID>/head" (GitLab).
	Ref string
	// Author is the pull request's author (GitLab: the user who caused the
	// event, the only one its payload names).
	Author string
	Labels []string
}

// Open reports whether the action asks for the preview to be deployed
// (opened, reopened, new commits); Closed whether it asks for it to be
// torn down (closed or merged).
func (a PRAction) Open() bool {
	return a == PROpened || a == PRReopened || a == PRUpdated
}

// Closed reports whether the pull request was closed or merged.
func (a PRAction) Closed() bool { return a == PRClosed }

// PreviewSuffix is what a preview of pull request n appends to its
// source's space and to the first DNS label of each route: "-pr-<n>".
func PreviewSuffix(n int) string { return fmt.Sprintf("-pr-%d", n) }

// PreviewSpace is the space of the preview of pull request n of a source
// deploying to space: "<space>-pr-<n>", so that quotas apply per preview.
func PreviewSpace(space string, n int) string { return space + PreviewSuffix(n) }

// PreviewSourceName names the preview of pull request n of source:
// "<source>#pr-<n>".
func PreviewSourceName(source string, n int) string { return fmt.Sprintf("%s#pr-%d", source, n) }

// IsPreviewSource reports whether a source name is a preview's.
func IsPreviewSource(name string) bool { return strings.Contains(name, "#pr-") }

// GitHubPullRef is the ref GitHub, Gitea and Forgejo keep the head of
// pull request n at in the base repository.
func GitHubPullRef(n int) string { return fmt.Sprintf("refs/pull/%d/head", n) }

// GitLabMergeRequestRef is the ref GitLab keeps the head of merge request
// iid at in the target project.
func GitLabMergeRequestRef(iid int) string { return fmt.Sprintf("refs/merge-requests/%d/head", iid) }
