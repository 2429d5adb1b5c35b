package model

import "time"

// AppKey identifies an app: its space and name.
type AppKey struct{ Space, Name string }

// String is "space/name".
func (k AppKey) String() string { return k.Space + "/" + k.Name }

// App is the desired state of one app, kept in Consul KV. Git is the
// source of truth; the record remembers what was applied and which
// release runs.
type App struct {
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
	// Processes holds the desired instance count of each process type
	// other than web (Instances is web's); scaling one is not a new
	// release and restarts nothing else.
	Processes map[string]int `json:"processes,omitempty"`
}

// Key is the app's key.
func (a App) Key() AppKey { return AppKey{Space: a.Space, Name: a.Name} }

// ReleaseState is where a release is in staging.
type ReleaseState string

// Release states.
const (
	ReleaseStaging ReleaseState = "staging"
	ReleaseStaged  ReleaseState = "staged"
	ReleaseFailed  ReleaseState = "failed"
)

// Release is one buildable, runnable version of an app, kept in Consul KV.
// Its id is derived from the manifest entry (without the instance count and
// metadata) and the git tree hash of the app's source, so a commit that
// does not touch an app keeps its release.
type Release struct {
	ID     string `json:"id"`
	Space  string `json:"space"`
	App    string `json:"app"`
	Commit string `json:"commit"`
	// SourcePath is the app's folder in the repository, SourceTree its git
	// tree hash at Commit; or the .jar, .war or .zip file the source is
	// unpacked from, SourceTree its git blob hash.
	SourcePath string   `json:"source_path"`
	SourceTree string   `json:"source_tree"`
	Buildpacks []string `json:"buildpacks,omitempty"`
	Stack      string   `json:"stack,omitempty"`
	// Run is how instances run (its Droplet is left empty: see
	// DropletDigest).
	Run   RunSpec      `json:"run"`
	State ReleaseState `json:"state"`
	// DropletDigest is the digest of the droplet's image manifest, set
	// once staged.
	DropletDigest string    `json:"droplet_digest,omitempty"`
	Buildpack     string    `json:"buildpack,omitempty"`
	Error         string    `json:"error,omitempty"`
	StagingLog    []string  `json:"staging_log,omitempty"`
	CreatedAt     time.Time `json:"created_at"`
	StagedAt      time.Time `json:"staged_at,omitzero"`
	// Processes are the release's process types other than web, whose
	// instances run the same droplet (see RunFor).
	Processes []Process `json:"processes,omitempty"`
	// ProcfileCommands are the lines of the staged source's Procfile by
	// process type, set once staged: the command of a type the manifest
	// gives none.
	ProcfileCommands map[string]string `json:"procfile_commands,omitempty"`
	// Docker is the image the release runs instead of a droplet staged
	// from source (manifest `docker:`); nil for a buildpack release. Its
	// staging copies the image into the blob store: DropletDigest is then
	// the image's manifest digest, pinned at that staging.
	Docker *DockerImage `json:"docker,omitempty"`
}

// Key is the key of the release's app.
func (r *Release) Key() AppKey { return AppKey{Space: r.Space, Name: r.App} }

// Staged reports whether the release has a droplet and can run.
func (r *Release) Staged() bool { return r != nil && r.State == ReleaseStaged && r.DropletDigest != "" }

// Resources is an amount of cell capacity.
type Resources struct {
	MemoryMB  int64 `json:"memory_mb"`
	DiskMB    int64 `json:"disk_mb"`
	Instances int   `json:"instances"`
}

// RunSpec is everything a cell needs to run instances of one release.
type RunSpec struct {
	// Droplet is the image reference of the droplet, pinned by digest,
	// e.g. "127.0.0.1:7070/droplets/dev/hello@sha256:…". It is empty in a
	// stored release (whose droplet is Release.DropletDigest) and set in
	// the start command, where the blob store's address is known. Whether
	// a cell pulls it over plain HTTP is the cell's configuration
	// (agents.Config.PlainHTTPRegistries), never the command's.
	Droplet string `json:"droplet"`
	// Command is run with /bin/sh -c; empty means the droplet's own command.
	Command string `json:"command,omitempty"`
	// Env holds the app's environment. It may hold secrets: never log it.
	Env      map[string]string `json:"env,omitempty"`
	MemoryMB int64             `json:"memory_mb"`
	DiskMB   int64             `json:"disk_mb"`
	// LogRateLimit is how many bytes of log lines per second each
	// instance may ship (manifest log-rate-limit-per-second); past it the
	// cell drops lines and says how many. 0: no limit.
	LogRateLimit int64       `json:"log_rate_limit,omitempty"`
	Routes       []string    `json:"routes,omitempty"`
	HealthCheck  HealthCheck `json:"health_check"`
	// Balance is how routers balance the app's instances.
	Balance Balance `json:"balance,omitempty"`
	// Services are the service instances the app binds (its manifest's
	// services:); a change is a new release.
	Services []AppService `json:"services,omitempty"`
	// BindingGenerations pins, per bound service, the generation of its
	// binding the instances get (a rotation makes a release pinning the
	// new one, so that the app rolls onto it); a service not listed gets
	// its binding's latest generation.
	BindingGenerations map[string]int `json:"binding_generations,omitempty"`
	// Bindings are those services' bindings with their credentials, set
	// only in an instance's start command (never in a stored release):
	// the cell gives them to the instance as VCAP_SERVICES and files under
	// SERVICE_BINDING_ROOT, and never writes them to its records or logs.
	Bindings []Binding `json:"bindings,omitempty"`
	// Process is the process type the instances run, "" for web (see
	// Release.RunFor).
	Process string `json:"process,omitempty"`
	// HTTP2Routes are those of Routes declared with protocol http2: routers
	// speak HTTP/2 over cleartext (h2c) to the instances on them.
	HTTP2Routes []string `json:"http2_routes,omitempty"`
	// Sidecars are extra processes run in the container of each instance
	// of the process types they name (manifest `sidecars:`; sidecar.go).
	Sidecars []Sidecar `json:"sidecars,omitempty"`
	// Ingress are the network policies (network-policies.yml) that let
	// other apps of the space reach the instances directly; a change is a
	// new release. A cell allows them between the instances it runs.
	Ingress []IngressRule `json:"ingress,omitempty"`
}

// Defaults of what a manifest may leave out, and of the platform.
const (
	DefaultInstances = 1
	DefaultMemoryMB  = 256
	DefaultDiskMB    = 1024
	// DefaultStartTimeout is how long an instance may take to become
	// healthy after it starts, seconds (Cloud Foundry's "timeout").
	DefaultStartTimeout = 60
	// DefaultStagingTimeout bounds one staging.
	DefaultStagingTimeout = 15 * time.Minute
	// VcapUID is the user and group app instances and compile steps run
	// as, as in Cloud Foundry: vcap, 2000.
	VcapUID = 2000
)
