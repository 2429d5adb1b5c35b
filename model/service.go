package model

import (
	"encoding/json"
	"time"
)

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

// ServiceKey names a service instance: its space and name.
type ServiceKey struct {
	Space string `json:"space"`
	Name  string `json:"name"`
}

func (k ServiceKey) String() string { return k.Space + "/" + k.Name }

// ServiceState is where a service instance is with its broker.
type ServiceState string

// The service instance states.
const (
	// ServicePending: declared (or changed) in git, the broker not asked
	// yet.
	ServicePending ServiceState = "pending"
	// ServiceCreating, ServiceUpdating, ServiceDeleting: the broker is
	// working on it (Operation names its asynchronous operation).
	ServiceCreating ServiceState = "creating"
	ServiceUpdating ServiceState = "updating"
	ServiceDeleting ServiceState = "deleting"
	// ServiceReady: the broker holds what git declares.
	ServiceReady ServiceState = "ready"
	// ServiceFailed: the broker refused or failed the last operation
	// (Message says why); tried again on the next commit that changes it.
	ServiceFailed ServiceState = "failed"
)

// ServiceInstance is a service instance as the controller stores it: the
// declaration of the last commit that applied it, and where its broker
// is with it.
type ServiceInstance struct {
	Space  string      `json:"space"`
	Source string      `json:"source"`
	Commit string      `json:"commit"`
	Decl   ServiceDecl `json:"decl"`
	// GUID is the instance id given to the broker, made once and kept.
	GUID string `json:"guid"`
	// Broker, ServiceID and PlanID are where the instance was provisioned:
	// the broker's name and the offering's and plan's ids in its catalog
	// (for Applied's plan once provisioned).
	Broker    string `json:"broker,omitempty"`
	ServiceID string `json:"service_id,omitempty"`
	PlanID    string `json:"plan_id,omitempty"`
	// Deleted is set when git no longer declares the instance: it is
	// deprovisioned, then forgotten.
	Deleted bool `json:"deleted,omitempty"`
	// Applied is the declaration the broker last accepted (nil before
	// the first provision succeeded).
	Applied *ServiceDecl `json:"applied,omitempty"`
	State   ServiceState `json:"state"`
	// Operation is the broker's pending asynchronous operation; Message
	// the last operation's description or error.
	Operation string    `json:"operation,omitempty"`
	Message   string    `json:"message,omitempty"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Key is the instance's key.
func (s ServiceInstance) Key() ServiceKey { return ServiceKey{Space: s.Space, Name: s.Decl.Name} }

// Converged reports whether the broker holds what git declares.
func (s ServiceInstance) Converged() bool {
	return !s.Deleted && s.State == ServiceReady && s.Applied != nil && SameService(*s.Applied, s.Decl)
}

// SameService reports whether two declarations ask the broker for the
// same thing (plan, parameters, service, broker, credentials); tags, the
// preview plan and the position do not count.
func SameService(a, b ServiceDecl) bool {
	ka, kb := a, b
	ka.Tags, kb.Tags, ka.PreviewPlan, kb.PreviewPlan, ka.Pos, kb.Pos = nil, nil, "", "", Position{}, Position{}
	ka.RotateEvery, kb.RotateEvery, ka.Rotation, kb.Rotation = 0, 0, 0, 0
	ja, _ := json.Marshal(ka)
	jb, _ := json.Marshal(kb)
	return string(ja) == string(jb)
}

// Binding is one service binding as an app instance gets it: its entry in
// VCAP_SERVICES (Cloud Foundry's shape) and its folder under
// SERVICE_BINDING_ROOT (servicebinding.io's). The controller puts the
// bindings, credentials decrypted, into the start command of each
// instance (RunSpec.Bindings); they are never stored in a release, logged
// or shown.
type Binding struct {
	// Label is the offering's name ("user-provided" for a user-provided
	// service): VCAP_SERVICES groups bindings by it, and it is the
	// binding's servicebinding.io type.
	Label string `json:"label"`
	// Name is the binding's name (its binding_name, else the instance's
	// name): its folder under SERVICE_BINDING_ROOT.
	Name         string   `json:"name"`
	BindingName  string   `json:"binding_name,omitempty"`
	BindingGUID  string   `json:"binding_guid"`
	InstanceName string   `json:"instance_name"`
	InstanceGUID string   `json:"instance_guid"`
	Plan         string   `json:"plan"`
	Provider     string   `json:"provider,omitempty"`
	Tags         []string `json:"tags"`
	// Credentials are the broker's (or the user-provided service's): one
	// file per key under the binding's folder.
	Credentials    map[string]any `json:"credentials"`
	SyslogDrainURL string         `json:"syslog_drain_url,omitempty"`
	VolumeMounts   []any          `json:"volume_mounts"`
}

// String never shows the credentials.
func (b Binding) String() string {
	return "binding " + b.Name + " of " + b.InstanceName + " (" + b.Label + ")"
}

// GoString never shows the credentials.
func (b Binding) GoString() string { return b.String() }

// BindingKey names a binding: the app's space and name and the service
// instance it binds.
type BindingKey struct {
	Space   string `json:"space"`
	App     string `json:"app"`
	Service string `json:"service"`
}

func (k BindingKey) String() string { return k.Space + "/" + k.App + "→" + k.Service }

// ServiceBinding is a binding of an app to a service instance as the
// controller stores it. Its credentials are sealed with the controllers'
// key (secrets.Keys): they are opened only into an instance's start
// command.
type ServiceBinding struct {
	Space   string `json:"space"`
	App     string `json:"app"`
	Service string `json:"service"`
	// GUID is the binding id given to the broker; InstanceGUID the
	// service instance's.
	GUID         string         `json:"guid"`
	InstanceGUID string         `json:"instance_guid"`
	BindingName  string         `json:"binding_name,omitempty"`
	Parameters   map[string]any `json:"parameters,omitempty"`
	// Rotation is the service's rotation the binding was made for;
	// Generation counts the binding's rotations (0 for the first).
	Rotation   int          `json:"rotation,omitempty"`
	Generation int          `json:"generation,omitempty"`
	State      ServiceState `json:"state"`
	// Operation is the broker's pending asynchronous operation; Message
	// the last operation's description or error.
	Operation string `json:"operation,omitempty"`
	Message   string `json:"message,omitempty"`
	// Sealed holds the credentials, syslog drain URL and volume mounts the
	// broker gave (a BindingSecret), sealed.
	Sealed    string    `json:"sealed,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// Predecessor is the binding this one rotated, kept (bound at the
	// broker) until the app's instances all run with this one.
	Predecessor *BindingPredecessor `json:"predecessor,omitempty"`
}

// BindingPredecessor is a rotated binding still in use.
type BindingPredecessor struct {
	GUID       string `json:"guid"`
	Generation int    `json:"generation"`
	Sealed     string `json:"sealed"`
}

// Key is the binding's key.
func (b ServiceBinding) Key() BindingKey {
	return BindingKey{Space: b.Space, App: b.App, Service: b.Service}
}

// BindingSecret is what a ServiceBinding seals: what the broker (or a
// user-provided service's declaration) gives the app.
type BindingSecret struct {
	Credentials    map[string]any `json:"credentials"`
	SyslogDrainURL string         `json:"syslog_drain_url,omitempty"`
	VolumeMounts   []any          `json:"volume_mounts,omitempty"`
}
