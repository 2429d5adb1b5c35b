package model

import (
	"regexp"
	"slices"
	"strconv"
)

// ProcessWeb is the process type that serves an app's routes. An app's
// own attributes (command, instances, memory, disk, health check) are its
// web process's, as in Cloud Foundry; an instance whose Process is empty
// is a web instance.
const ProcessWeb = "web"

// ProcessTypeRE is what a process type's name must look like: it is part
// of instance names and Consul metadata.
var ProcessTypeRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// Process is one process type of a release other than web: its instances
// run the release's droplet with their own command, limits and health
// check, and get no routes. What it leaves empty is the web process's
// (the release's Run), but the health check, whose type is then process
// (alive is healthy), as Cloud Foundry does for types other than web.
type Process struct {
	Type string `json:"type"`
	// Command is run with /bin/sh -c; empty means the Procfile's line for
	// the type (Release.ProcfileCommands), else the web command.
	Command     string      `json:"command,omitempty"`
	MemoryMB    int64       `json:"memory_mb"`
	DiskMB      int64       `json:"disk_mb"`
	HealthCheck HealthCheck `json:"health_check"`
	// LogRateLimit is the type's RunSpec.LogRateLimit (bytes per second,
	// 0: no limit); the manifest fills in the app's when the type gives
	// none.
	LogRateLimit int64 `json:"log_rate_limit,omitempty"`
}

// ProcessKey identifies the instances of one process type of an app; the
// planner keeps Instances of each.
type ProcessKey struct {
	AppKey
	// Process is the process type, ProcessWeb for web (never empty).
	Process string
}

// String is "space/name" for web, "space/name:type" for the others.
func (k ProcessKey) String() string {
	if k.Process == ProcessWeb {
		return k.AppKey.String()
	}
	return k.AppKey.String() + ":" + k.Process
}

// IndexKey is one instance index of one process type of an app ("" is
// web), e.g. for crash histories, which belong to an index.
type IndexKey struct {
	Process string
	Index   int
}

// String is "0" for web's index 0, "worker/0" for the worker's.
func (k IndexKey) String() string {
	if ProcessOf(k.Process) == ProcessWeb {
		return strconv.Itoa(k.Index)
	}
	return k.Process + "/" + strconv.Itoa(k.Index)
}

// ProcessOf reads an instance's or run spec's process type: "" is web.
func ProcessOf(t string) string {
	if t == "" {
		return ProcessWeb
	}
	return t
}

// ProcessRef is the Process field of an instance or run spec of process
// type t: "" for web, so that web instances look as they did before
// process types.
func ProcessRef(t string) string {
	if ProcessOf(t) == ProcessWeb {
		return ""
	}
	return t
}

// ProcessKey is the key of the instance's process type.
func (r InstanceRef) ProcessKey() ProcessKey {
	return ProcessKey{AppKey: r.Key(), Process: ProcessOf(r.Process)}
}

// ProcessTypes lists the release's process types, web first.
func (r *Release) ProcessTypes() []string {
	out := []string{ProcessWeb}
	for _, p := range r.Processes {
		out = append(out, p.Type)
	}
	return out
}

// RunFor returns the run spec of the release's process type t: Run for
// web; for another type Run with the type's command (or its Procfile
// line), limits and health check, without routes. ok is false when the
// release has no such type.
func (r *Release) RunFor(t string) (RunSpec, bool) {
	t = ProcessOf(t)
	if t == ProcessWeb {
		return r.Run, true
	}
	i := slices.IndexFunc(r.Processes, func(p Process) bool { return p.Type == t })
	if i < 0 {
		return RunSpec{}, false
	}
	p := r.Processes[i]
	run := r.Run
	run.Process = t
	run.Routes, run.Balance = nil, BalanceDefault
	switch {
	case p.Command != "":
		run.Command = p.Command
	case r.ProcfileCommands[t] != "":
		run.Command = r.ProcfileCommands[t]
	}
	run.MemoryMB, run.DiskMB, run.HealthCheck = p.MemoryMB, p.DiskMB, p.HealthCheck
	run.LogRateLimit = p.LogRateLimit
	return run, true
}

// InstancesOf is how many instances of process type t the app asks for.
func (a App) InstancesOf(t string) int {
	if ProcessOf(t) == ProcessWeb {
		return a.Instances
	}
	return a.Processes[t]
}
