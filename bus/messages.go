package bus

import "time"

// InstanceState is where an instance is in its life on a cell.
type InstanceState string

// Instance states. An instance is STARTING from the moment a cell accepts it
// until its health check passes, then RUNNING. An exit the cell did not ask
// for makes it CRASHED; a stop asked by the controller makes it STOPPING and,
// once its container is gone, STOPPED (reported once, then forgotten).
const (
	StateStarting InstanceState = "STARTING"
	StateRunning  InstanceState = "RUNNING"
	StateCrashed  InstanceState = "CRASHED"
	StateStopping InstanceState = "STOPPING"
	StateStopped  InstanceState = "STOPPED"
)

// Resources is an amount of cell capacity.
type Resources struct {
	MemoryMB  int64 `json:"memory_mb"`
	DiskMB    int64 `json:"disk_mb"`
	Instances int   `json:"instances"`
}

// HealthCheck says how a cell decides that an instance is healthy.
type HealthCheck struct {
	// Type is "port" (TCP connect), "http" (GET Endpoint answers 2xx) or
	// "process" (the process is alive).
	Type string `json:"type"`
	// Endpoint is the HTTP path for Type "http".
	Endpoint string `json:"endpoint,omitempty"`
	// TimeoutSec bounds how long an instance may take to become healthy
	// after it starts.
	TimeoutSec int `json:"timeout_sec"`
	// InvocationTimeoutSec bounds one probe.
	InvocationTimeoutSec int `json:"invocation_timeout_sec,omitempty"`
}

// RunSpec is everything a cell needs to run instances of one release.
type RunSpec struct {
	// Droplet is the image reference of the droplet, pinned by digest, e.g.
	// "127.0.0.1:7070/droplets/dev/hello@sha256:…". Cells pull it over plain
	// HTTP from the controller's blob store.
	Droplet string `json:"droplet"`
	// DropletPlainHTTP says the blob store holding Droplet speaks plain
	// HTTP (the controller's own blob store, reached at an http:// URL).
	DropletPlainHTTP bool `json:"droplet_plain_http,omitempty"`
	// Command is run with /bin/sh -c; empty means the droplet's own command.
	Command string `json:"command,omitempty"`
	// Env holds the app's environment. It may hold secrets: never log it.
	Env         map[string]string `json:"env,omitempty"`
	MemoryMB    int64             `json:"memory_mb"`
	DiskMB      int64             `json:"disk_mb"`
	Routes      []string          `json:"routes,omitempty"`
	HealthCheck HealthCheck       `json:"health_check"`
	// Balance is how routers balance the app's instances: "" (round-
	// robin) or "least-connections" (a route option in the manifest).
	Balance string `json:"balance,omitempty"`
}

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
}

// InstanceStatus is a cell's report of one instance.
type InstanceStatus struct {
	InstanceRef
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
}

// CellHeartbeat is published by each agent on SubjectHeartbeat.
type CellHeartbeat struct {
	CellID string `json:"cell_id"`
	// BootID changes every time the agent process starts.
	BootID string `json:"boot_id"`
	// Generation counts state changes on the cell within one boot; a
	// receiver drops a heartbeat older than one it has already seen.
	Generation uint64 `json:"generation"`
	// Address is where the cell's mapped host ports are reachable.
	Address   string           `json:"address"`
	Zone      string           `json:"zone,omitempty"`
	Capacity  Resources        `json:"capacity"`
	Instances []InstanceStatus `json:"instances"`
	SentAt    time.Time        `json:"sent_at"`
}

// InstanceChanged is published on SubjectInstanceChanged the moment an
// instance changes state.
type InstanceChanged struct {
	CellID     string         `json:"cell_id"`
	BootID     string         `json:"boot_id"`
	Generation uint64         `json:"generation"`
	Instance   InstanceStatus `json:"instance"`
}

// StartInstance asks a cell (VerbStart) to run one instance.
type StartInstance struct {
	Instance InstanceRef `json:"instance"`
	Run      RunSpec     `json:"run"`
}

// StopInstance asks a cell (VerbStop) to stop and remove one instance.
type StopInstance struct {
	GUID   string `json:"guid"`
	Reason string `json:"reason,omitempty"`
}

// Reply answers a cell command. Generation is the cell's generation after it
// applied the command: heartbeats older than it do not yet show the change.
type Reply struct {
	OK         bool   `json:"ok"`
	Error      string `json:"error,omitempty"`
	BootID     string `json:"boot_id,omitempty"`
	Generation uint64 `json:"generation,omitempty"`
}

// StageRequest asks one agent of QueueStagers to turn app source into a
// droplet and push it to the blob store.
type StageRequest struct {
	ReleaseID string `json:"release_id"`
	Space     string `json:"space"`
	App       string `json:"app"`
	// Source is the digest of a tar of the app's source in the blob store.
	Source string `json:"source"`
	// BlobStore is the base URL of the blob store, e.g. "http://127.0.0.1:7070".
	BlobStore  string            `json:"blob_store"`
	Buildpacks []string          `json:"buildpacks,omitempty"`
	Stack      string            `json:"stack,omitempty"`
	Command    string            `json:"command,omitempty"`
	Env        map[string]string `json:"env,omitempty"`
	TimeoutSec int               `json:"timeout_sec"`
}

// StageResult answers a StageRequest.
type StageResult struct {
	// Droplet is the digest of the droplet's OCI image manifest.
	Droplet string `json:"droplet,omitempty"`
	// Buildpack is the buildpack that built it.
	Buildpack string `json:"buildpack,omitempty"`
	// StartCommand is the droplet's default command.
	StartCommand string `json:"start_command,omitempty"`
	Error        string `json:"error,omitempty"`
	// LogTail holds the last lines of the staging log.
	LogTail []string `json:"log_tail,omitempty"`
}

// Log sources, as Cloud Foundry names them.
const (
	SourceApp     = "APP"
	SourceStaging = "STG"
	SourceCell    = "CELL"
)

// LogLine is one line an app instance or its staging printed.
type LogLine struct {
	Time   time.Time `json:"time"`
	Space  string    `json:"space"`
	App    string    `json:"app"`
	Source string    `json:"source"`
	// Index is the instance index for SourceApp lines.
	Index        int    `json:"index"`
	InstanceGUID string `json:"instance_guid,omitempty"`
	Stream       string `json:"stream,omitempty"`
	Text         string `json:"text"`
}

// Event is one decision of the controller, with its reason.
type Event struct {
	Time     time.Time `json:"time"`
	Kind     string    `json:"kind"`
	Space    string    `json:"space,omitempty"`
	App      string    `json:"app,omitempty"`
	Instance string    `json:"instance,omitempty"`
	Index    int       `json:"index,omitempty"`
	Cell     string    `json:"cell,omitempty"`
	Release  string    `json:"release,omitempty"`
	Message  string    `json:"message"`
}
