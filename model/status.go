package model

// CommitState is the state of a commit status reported to a forge.
type CommitState string

// The commit states (GitHub's names; forge maps them onto each forge's).
const (
	CommitPending CommitState = "pending"
	CommitSuccess CommitState = "success"
	CommitFailure CommitState = "failure"
	CommitError   CommitState = "error"
)

// Commit status contexts driftless reports under.
const (
	// StatusContextPreview is the status of a pull request's preview.
	StatusContextPreview = "driftless/preview"
	// StatusContextDeploy is the status of a deploy of a tracked branch.
	StatusContextDeploy = "driftless/deploy"
)

// CommitStatus is what the controller reports on one commit to the forge
// hosting its repository.
type CommitStatus struct {
	State       CommitState `json:"state"`
	Context     string      `json:"context"`
	TargetURL   string      `json:"target_url,omitempty"`
	Description string      `json:"description"`
}

// RepoRef is a source's repository as its forge's API names it: the kind
// of forge and the repository's path ("owner/name"; GitLab: the full path)
// and project id, learnt from the webhooks that named it. Fields left empty
// are derived from URL by whoever talks to the forge.
type RepoRef struct {
	URL       string `json:"url"`
	Forge     string `json:"forge,omitempty"`
	Path      string `json:"path,omitempty"`
	ProjectID string `json:"project_id,omitempty"`
}
