package model

import "time"

// SourceStatus is what the controller keeps of one git source: the last
// commit seen and applied, and the problems of the last commit seen.
type SourceStatus struct {
	Name          string    `json:"name"`
	URL           string    `json:"url"`
	Space         string    `json:"space"`
	LastSeen      string    `json:"last_seen,omitempty"`
	LastSeenAt    time.Time `json:"last_seen_at,omitzero"`
	LastApplied   string    `json:"last_applied,omitempty"`
	LastAppliedAt time.Time `json:"last_applied_at,omitzero"`
	Errors        []Problem `json:"errors"`
	Warnings      []Problem `json:"warnings"`
}
