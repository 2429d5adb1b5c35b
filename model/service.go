package model

import "time"

// ServicesFile is the file beside manifests that declares a space's
// service instances.
const ServicesFile = "services.yml"

// ServiceDecl is one service instance as git declares it (services.yml):
// a broker's offering and plan, or a user-provided service whose
// credentials are committed encrypted.
type ServiceDecl struct {
	Name string `json:"name"`
	// Broker names the broker (--broker NAME=URL) when more than one
	// offers Service; Service and Plan are the offering's and plan's
	// names; PreviewPlan, when set, is the plan of a pull request's
	// preview.
	Broker      string         `json:"broker,omitempty"`
	Service     string         `json:"service,omitempty"`
	Plan        string         `json:"plan,omitempty"`
	PreviewPlan string         `json:"preview_plan,omitempty"`
	Parameters  map[string]any `json:"parameters,omitempty"`
	Tags        []string       `json:"tags,omitempty"`
	// RotateEvery makes the platform rotate the bindings' credentials
	// that often (0: never); bumping Rotation rotates them at once.
	RotateEvery time.Duration `json:"rotate_every,omitempty"`
	Rotation    int           `json:"rotation,omitempty"`
	// UserProvided services have no broker: their Credentials (an age
	// ciphertext, armored, as committed) and SyslogDrainURL are given.
	UserProvided   bool   `json:"user_provided,omitempty"`
	Credentials    string `json:"credentials,omitempty"`
	SyslogDrainURL string `json:"syslog_drain_url,omitempty"`
	// Pos is where the entry is declared.
	Pos Position `json:"pos"`
}

// AppService is one entry of an app's `services:`: the instance to bind,
// the binding's name in VCAP_SERVICES and SERVICE_BINDING_ROOT (default:
// the instance's name) and the binding's parameters for the broker.
type AppService struct {
	Name        string         `json:"name"`
	BindingName string         `json:"binding_name,omitempty"`
	Parameters  map[string]any `json:"parameters,omitempty"`
}
