package model

import "time"

// SourceStatus is what the controller keeps of one git source: the last
// commit seen and applied, the problems of the last commit seen, and how
// the last fetch went.
type SourceStatus struct {
	Name          string    `json:"name"`
	URL           string    `json:"url"`
	Branch        string    `json:"branch,omitempty"`
	Space         string    `json:"space"`
	LastSeen      string    `json:"last_seen,omitempty"`
	LastSeenAt    time.Time `json:"last_seen_at,omitzero"`
	LastApplied   string    `json:"last_applied,omitempty"`
	LastAppliedAt time.Time `json:"last_applied_at,omitzero"`
	LastFetch     time.Time `json:"last_fetch,omitzero"`
	FetchError    string    `json:"fetch_error,omitempty"`
	Errors        []Problem `json:"errors"`
	Warnings      []Problem `json:"warnings"`
	// Preview is set for a pull request's preview: the pull request it
	// deploys (stored, so that a restarted controller knows its previews).
	Preview *PreviewOf `json:"preview,omitempty"`
}

// PreviewOf is the pull request a preview source deploys.
type PreviewOf struct {
	// Source is the configured source whose pull request this is.
	Source string   `json:"source"`
	Number int      `json:"number"`
	Branch string   `json:"branch,omitempty"`
	Author string   `json:"author,omitempty"`
	Labels []string `json:"labels,omitempty"`
	// Ref is the ref of the source's repository holding its head.
	Ref string `json:"ref"`
	// HeadSHA is the head the forge last named ("" when unknown).
	HeadSHA string `json:"head_sha,omitempty"`
	// LastActivity is the last event or commit of the pull request: the
	// preview is removed when it is older than the preview TTL.
	LastActivity time.Time `json:"last_activity"`
}

// PolicyStatus is the policy set in force and its source.
type PolicyStatus struct {
	// Source is the policy source's name, or "built-in".
	Source        string    `json:"source"`
	URL           string    `json:"url,omitempty"`
	Files         []string  `json:"files"`
	LastSeen      string    `json:"last_seen,omitempty"`
	LastSeenAt    time.Time `json:"last_seen_at,omitzero"`
	LastApplied   string    `json:"last_applied,omitempty"`
	LastAppliedAt time.Time `json:"last_applied_at,omitzero"`
	// Errors are those of the last policy commit seen, refused as a whole.
	Errors []Problem `json:"errors"`
}

// CellStatus is what the controller knows of one cell.
type CellStatus struct {
	ID       string    `json:"id"`
	Address  string    `json:"address"`
	Zone     string    `json:"zone,omitempty"`
	Capacity Resources `json:"capacity"`
	// Instances counts the instances the cell reports; MemoryUsedMB the
	// memory limits of those starting or running.
	Instances     int       `json:"instances"`
	MemoryUsedMB  int64     `json:"memory_used_mb"`
	LastHeartbeat time.Time `json:"last_heartbeat"`
	// Lost is set when the cell's heartbeats stopped for longer than the
	// controller waits: its instances are placed elsewhere.
	Lost bool `json:"lost"`
}

// ShortCommit abbreviates a commit hash for messages: its first 10 digits.
func ShortCommit(commit string) string {
	if len(commit) > 10 {
		return commit[:10]
	}
	return commit
}
