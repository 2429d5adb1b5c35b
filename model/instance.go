package model

import "time"

// InstanceState is where an instance is in its life on a cell.
type InstanceState string

// Instance states. An instance is STARTING from the moment a cell accepts it
// until its health check passes, then RUNNING. An exit the cell did not ask
// for makes it CRASHED; a stop asked by the controller makes it STOPPING and,
// once its container is gone, STOPPED (reported once, then forgotten).
// LOST is never reported by a cell: views show it for an instance whose cell
// stopped reporting.
const (
	StateStarting InstanceState = "STARTING"
	StateRunning  InstanceState = "RUNNING"
	StateCrashed  InstanceState = "CRASHED"
	StateStopping InstanceState = "STOPPING"
	StateStopped  InstanceState = "STOPPED"
	StateLost     InstanceState = "LOST"
)

// Active reports whether an instance in state s runs or is about to:
// STARTING or RUNNING.
func (s InstanceState) Active() bool { return s == StateStarting || s == StateRunning }

// InstanceRef names one instance of an app: which app, which index, which
// release. GUID is unique over all time.
type InstanceRef struct {
	GUID      string `json:"guid"`
	Space     string `json:"space"`
	App       string `json:"app"`
	Index     int    `json:"index"`
	ReleaseID string `json:"release_id"`
	// Commit is the git commit the release was built from, for display.
	Commit string `json:"commit,omitempty"`
	// Process is the instance's process type, "" for web; Index counts
	// within it.
	Process string `json:"process,omitempty"`
}

// Key is the app the instance belongs to.
func (r InstanceRef) Key() AppKey { return AppKey{Space: r.Space, Name: r.App} }

// InstanceStatus is what is known of one instance: its cell's report, and
// the cell it runs on.
type InstanceStatus struct {
	InstanceRef
	// Cell runs the instance. A cell's own report leaves it empty (the
	// message names the cell); the controller's view sets it.
	Cell  string        `json:"cell,omitempty"`
	State InstanceState `json:"state"`
	// HostPort is the port on the cell's advertised address that maps to
	// the instance's port 8080.
	HostPort int `json:"host_port,omitempty"`
	// MemoryMB is the instance's memory limit, counted against the cell.
	MemoryMB int64 `json:"memory_mb,omitempty"`
	DiskMB   int64 `json:"disk_mb,omitempty"`
	// Since is when the instance entered State.
	Since time.Time `json:"since"`
	// ExitStatus and Reason describe why a CRASHED instance ended.
	ExitStatus int    `json:"exit_status,omitempty"`
	Reason     string `json:"reason,omitempty"`
	// LastOutput holds the last lines a crashed instance printed.
	LastOutput []string `json:"last_output,omitempty"`
	// WasHealthy is set once the instance passed its health check: a
	// CRASHED instance without it never became healthy.
	WasHealthy bool `json:"was_healthy,omitempty"`
	// NotReady is set while a RUNNING instance fails its readiness check:
	// it is alive (not restarted) but out of the routers.
	NotReady bool `json:"not_ready,omitempty"`
	// Usage is what the instance uses, as its cell last read it; nil
	// until then.
	Usage *InstanceUsage `json:"usage,omitempty"`
}

// InstanceUsage is what an instance uses, read by its cell from its
// container's cgroup and writable layer, and carried in heartbeats.
type InstanceUsage struct {
	// At is when it was read.
	At time.Time `json:"at"`
	// CPUSeconds is the CPU time the instance's processes used since its
	// container started; CPUPercent the share of one core they used
	// between the cell's last two reads (above 100 with several cores
	// busy).
	CPUSeconds float64 `json:"cpu_seconds"`
	CPUPercent float64 `json:"cpu_percent"`
	// MemoryBytes is the memory it uses: its cgroup's usage less the page
	// cache the kernel may reclaim at once (inactive files).
	MemoryBytes int64 `json:"memory_bytes"`
	// DiskBytes is what it wrote to its container's writable layer (read
	// less often than the rest: it walks the files).
	DiskBytes int64 `json:"disk_bytes"`
}

// Endpoint is a running instance where routers reach it, as registered in
// Consul: the instance, its cell, the cell's address and the mapped host
// port, the routes it serves and how they are balanced.
type Endpoint struct {
	InstanceRef
	Cell    string
	Address string
	Port    int
	Routes  []string
	Balance Balance
	// HTTP2Routes are those of Routes reached over h2c (RunSpec.HTTP2Routes).
	HTTP2Routes []string
	// NotReady registers the instance as failing its readiness check (out
	// of the routers until the cell reports it ready).
	NotReady bool
}

// CrashRecord is the crash history of one instance index: how many times
// in a row it crashed, the last crash, and when it may start again. Crash
// counts belong to the index, since every restart is a new instance.
type CrashRecord struct {
	// Count is how many times in a row the index crashed.
	Count      int       `json:"count"`
	LastAt     time.Time `json:"last_at"`
	ExitStatus int       `json:"exit_status"`
	Reason     string    `json:"reason"`
	LastOutput []string  `json:"last_output,omitempty"`
	// RestartAt is when the index may be started again (zero: at once).
	RestartAt time.Time `json:"restart_at,omitzero"`
}
