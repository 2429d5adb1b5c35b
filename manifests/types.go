// Package manifests reads Cloud Foundry app manifests (manifest.yml) into
// typed desired state. Every attribute of the Cloud Foundry manifest is
// recognised: those driftless runs are parsed and checked, legacy ones
// are converted with a warning, and those it does not run yet give a
// warning that says so. Errors name file:line:col, and all errors of a
// file are reported at once. docs/manifests.md lists every attribute.
package manifests

// Defaults of app attributes a manifest leaves out.
const (
	DefaultInstances   = 1
	DefaultMemoryMB    = 256
	DefaultDiskMB      = 1024
	DefaultTimeout     = 60
	DefaultHealthCheck = "port"
)

// Health check types.
const (
	HealthPort    = "port"
	HealthHTTP    = "http"
	HealthProcess = "process"
)

// Manifest is one parsed manifest file.
type Manifest struct {
	// File is the manifest's path, relative to the tree it was loaded from.
	File        string
	Apps        []App
	Diagnostics Diagnostics
}

// App is one entry of a manifest's applications list.
type App struct {
	Name       string
	Instances  int
	MemoryMB   int
	DiskMB     int
	Buildpacks []string
	Stack      string
	Command    string
	// Path is the app's source folder relative to the manifest's folder,
	// cleaned, never outside the tree ("." by default).
	Path string
	Env  map[string]string
	// Routes as written; legacy host/domain attributes are converted.
	Routes      []Route
	NoRoute     bool
	RandomRoute bool
	// Services are the names of the service instances to bind.
	Services    []string
	HealthCheck HealthCheck
	// Timeout is how long an instance may take to become healthy, seconds.
	Timeout     int
	Labels      map[string]string
	Annotations map[string]string
	// Pos is where the app's entry starts; Fields where each attribute's
	// key is written.
	Pos    Position
	Fields map[string]Position
}

// Route is one route of an app.
type Route struct {
	// Route is "host.domain[/path]" as written (empty for a legacy host
	// without domain).
	Route string
	// Host is the first label, Domain the rest; Path starts with "/" or
	// is empty. A legacy host without a domain has only Host.
	Host, Domain, Path string
	// Protocol is "http1" (default), "http2" or "tcp".
	Protocol string
	// LoadBalancing is the route option loadbalancing: "round-robin"
	// (default) or "least-connection", as Cloud Foundry spells them.
	LoadBalancing string
	Pos           Position
}

// HealthCheck says how a cell decides an instance is healthy.
type HealthCheck struct {
	// Type is port, http or process.
	Type string
	// HTTPEndpoint is the path probed by an http check ("/" by default).
	HTTPEndpoint string
	// InvocationTimeout bounds one probe, seconds (0: the platform's).
	InvocationTimeout int
}
