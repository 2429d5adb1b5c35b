// Package manifests reads Cloud Foundry app manifests (manifest.yml) into
// typed desired state. Every attribute of the Cloud Foundry manifest is
// recognised: those driftless runs are parsed and checked, legacy ones
// are converted with a warning, and those it does not run yet give a
// warning that says so. What Cloud Foundry accepts is accepted: top-level
// keys its CLI ignores, app features and empty legacy route attributes
// are warnings, while unknown app attributes stay errors. Errors name
// file:line:col, and all errors of a file are reported at once.
// docs/manifests.md lists every attribute.
package manifests

import "github.com/driftless/driftless/model"

// Defaults of app attributes a manifest leaves out are model's
// (model.DefaultInstances, DefaultMemoryMB, DefaultDiskMB,
// DefaultStartTimeout, DefaultHealthCheck).

// Manifest is one parsed manifest file.
type Manifest struct {
	// File is the manifest's path, relative to the tree it was loaded from.
	File        string
	Apps        []App
	Diagnostics Diagnostics
}

// App is one entry of a manifest's applications list.
type App struct {
	Name      string
	Instances int
	MemoryMB  int
	DiskMB    int
	// LogRateLimit is the bytes of log lines per second each instance
	// may ship (log-rate-limit-per-second); 0 is no limit (-1 or not
	// given).
	LogRateLimit int64
	Buildpacks   []string
	Stack        string
	Command      string
	// Path is the app's source relative to the manifest's folder, cleaned,
	// never outside the tree ("." by default): a folder, or a .jar, .war or
	// .zip file whose contents are the source (IsArchive).
	Path string
	Env  map[string]string
	// Routes as written; legacy host/domain attributes are converted.
	Routes      []Route
	NoRoute     bool
	RandomRoute bool
	// Services are the service instances to bind (services.yml declares
	// them).
	Services []model.AppService
	// HealthCheck holds health-check-type, health-check-http-endpoint,
	// health-check-invocation-timeout and timeout (TimeoutSec).
	HealthCheck model.HealthCheck
	Labels      map[string]string
	Annotations map[string]string
	// Processes are the app's process types other than web (its own
	// attributes are web's).
	Processes []ProcessDecl
	// Pos is where the app's entry starts; Fields where each attribute's
	// key is written.
	Pos    model.Position
	Fields map[string]model.Position
	// Docker is the image the app runs instead of staging its source
	// (docker: {image, username}); nil for buildpack apps.
	Docker *model.DockerImage
	// Sidecars are processes run beside each instance of the process
	// types they name (sidecars:).
	Sidecars []model.Sidecar
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
	// LoadBalancing is the route option loadbalancing, Cloud Foundry's
	// round-robin or least-connection read as a model.Balance.
	LoadBalancing model.Balance
	Pos           model.Position
}
