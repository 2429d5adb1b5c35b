package reconciler

import (
	"time"

	"github.com/driftless/driftless/bus"
)

// AppRecord is the desired state of one app, kept in Consul KV at
// catalog.AppKey. Git is the source of truth; the record remembers what
// was applied and which release runs.
type AppRecord struct {
	Space  string `json:"space"`
	Name   string `json:"name"`
	Source string `json:"source"`
	// Commit is the last applied commit that declared the app.
	Commit string `json:"commit"`
	// File and Line locate the app's entry in its manifest.
	File string `json:"file"`
	Line int    `json:"line"`
	// Instances is the desired instance count.
	Instances int `json:"instances"`
	// ReleaseID is the release git asks for.
	ReleaseID string `json:"release_id"`
	// CurrentID is the release instances run: ReleaseID once it is staged,
	// until then the previous one (empty before the first is staged).
	CurrentID string `json:"current_id,omitempty"`
	// PreviousID is the release CurrentID replaced, kept for rollbacks.
	PreviousID string            `json:"previous_id,omitempty"`
	Routes     []string          `json:"routes,omitempty"`
	Labels     map[string]string `json:"labels,omitempty"`
	UpdatedAt  time.Time         `json:"updated_at"`
}

// Release states.
const (
	ReleaseStaging = "staging"
	ReleaseStaged  = "staged"
	ReleaseFailed  = "failed"
)

// Release is one buildable, runnable version of an app, kept at
// catalog.ReleaseKey. Its id is derived from the manifest entry (without
// the instance count and metadata) and the git tree hash of the app's
// source, so a commit that does not touch an app keeps its release.
type Release struct {
	ID     string `json:"id"`
	Space  string `json:"space"`
	App    string `json:"app"`
	Commit string `json:"commit"`
	// SourcePath is the app's folder in the repository, SourceTree its git
	// tree hash at Commit.
	SourcePath string   `json:"source_path"`
	SourceTree string   `json:"source_tree"`
	Buildpacks []string `json:"buildpacks,omitempty"`
	Stack      string   `json:"stack,omitempty"`
	// Run is how instances run; Run.Droplet is set once staged.
	Run   bus.RunSpec `json:"run"`
	State string      `json:"state"`
	// DropletDigest is the digest of the droplet's image manifest.
	DropletDigest string    `json:"droplet_digest,omitempty"`
	Buildpack     string    `json:"buildpack,omitempty"`
	Error         string    `json:"error,omitempty"`
	StagingLog    []string  `json:"staging_log,omitempty"`
	CreatedAt     time.Time `json:"created_at"`
	StagedAt      time.Time `json:"staged_at,omitzero"`
}

// Staged reports whether the release has a droplet and can run.
func (r *Release) Staged() bool { return r != nil && r.State == ReleaseStaged && r.DropletDigest != "" }
