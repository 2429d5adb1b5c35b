package model

import "slices"

// Sidecar is an extra process that runs in the same container as each
// instance of the process types it joins (Cloud Foundry's manifest
// `sidecars:`): same user, environment and limits, its memory counted
// inside the instance's. When it exits, the instance crashes.
type Sidecar struct {
	Name string `json:"name"`
	// ProcessTypes are the process types whose instances run it (at
	// least one: "web", "worker"…).
	ProcessTypes []string `json:"process_types"`
	// Command is run with /bin/sh -c.
	Command string `json:"command"`
	// MemoryMB is the sidecar's share of the instance's memory limit
	// (0: not said); it does not raise the limit.
	MemoryMB int64 `json:"memory_mb,omitempty"`
}

// SidecarsOf returns the sidecars an instance of processType runs; an
// empty processType is ProcessWeb.
func (r RunSpec) SidecarsOf(processType string) []Sidecar {
	processType = ProcessOf(processType)
	var out []Sidecar
	for _, s := range r.Sidecars {
		if slices.Contains(s.ProcessTypes, processType) {
			out = append(out, s)
		}
	}
	return out
}
