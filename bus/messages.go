package bus

import (
	"time"

	"github.com/driftless/driftless/model"
)

// CellHeartbeat is published by each agent on its HeartbeatSubject.
type CellHeartbeat struct {
	CellID string `json:"cell_id"`
	// BootID changes every time the agent process starts.
	BootID string `json:"boot_id"`
	// Generation counts state changes on the cell within one boot; a
	// receiver drops a heartbeat older than one it has already seen.
	Generation uint64 `json:"generation"`
	// Address is where the cell's mapped host ports are reachable.
	Address   string                 `json:"address"`
	Zone      string                 `json:"zone,omitempty"`
	Capacity  model.Resources        `json:"capacity"`
	Instances []model.InstanceStatus `json:"instances"`
	SentAt    time.Time              `json:"sent_at"`
	// StagingSlots is how many stagings the cell runs at once; the
	// controller sends no more staging requests at a time than its cells
	// have slots.
	StagingSlots int `json:"staging_slots,omitempty"`
}

// InstanceChanged is published on the cell's InstancesSubject the moment an
// instance changes state.
type InstanceChanged struct {
	CellID     string               `json:"cell_id"`
	BootID     string               `json:"boot_id"`
	Generation uint64               `json:"generation"`
	Instance   model.InstanceStatus `json:"instance"`
}

// StartInstance asks a cell (VerbStart) to run one instance.
type StartInstance struct {
	Instance model.InstanceRef `json:"instance"`
	Run      model.RunSpec     `json:"run"`
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
	// Procfile holds the source's Procfile lines by process type: the
	// commands of process types the manifest gives none.
	Procfile map[string]string `json:"procfile,omitempty"`
}

// WakeRequest asks the controller (SubjectWake) to wake a sleeping app; a
// router sends it when a request reaches one of the app's routes. The Reply
// says the app is awake in the desired state: its instances start at the
// next convergence and the router holds the request until one serves.
type WakeRequest struct {
	Space string `json:"space"`
	App   string `json:"app"`
	// Router names the router asking, for the event.
	Router string `json:"router,omitempty"`
}

// RouterActivity is published by each router (SubjectActivity) every few
// seconds in which its apps got requests: the apps that got at least one
// since the last message, and how many.
type RouterActivity struct {
	Router string        `json:"router"`
	Apps   []AppRequests `json:"apps"`
	SentAt time.Time     `json:"sent_at"`
}

// AppRequests is how many requests one app got in a RouterActivity's period.
type AppRequests struct {
	Space    string `json:"space"`
	App      string `json:"app"`
	Requests int64  `json:"requests"`
}
