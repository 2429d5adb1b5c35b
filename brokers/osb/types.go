package osb

import (
	"fmt"
	"log/slog"
	"time"
)

// APIVersion is the Open Service Broker API version this package speaks, sent
// in the X-Broker-API-Version header of every request.
const APIVersion = "2.17"

// Header names defined by the specification.
const (
	// HeaderAPIVersion carries [APIVersion] on every request.
	HeaderAPIVersion = "X-Broker-API-Version"
	// HeaderOriginatingIdentity carries "<platform> <base64 of a JSON object>"
	// naming the user a request acts for.
	HeaderOriginatingIdentity = "X-Broker-API-Originating-Identity"
	// HeaderRequestIdentity carries a unique id for each request.
	HeaderRequestIdentity = "X-Broker-API-Request-Identity"
)

// Error codes a broker puts in [ErrorResponse.Error].
const (
	// CodeAsyncRequired: the plan can only be served asynchronously and the
	// request did not send accepts_incomplete=true (422).
	CodeAsyncRequired = "AsyncRequired"
	// CodeConcurrencyError: another operation is in progress on the instance
	// or binding (422).
	CodeConcurrencyError = "ConcurrencyError"
	// CodeRequiresApp: the binding needs an app_guid (422).
	CodeRequiresApp = "RequiresApp"
	// CodeMaintenanceInfoConflict: the maintenance_info.version sent does not
	// match the catalog's (422).
	CodeMaintenanceInfoConflict = "MaintenanceInfoConflict"
)

// Catalog is the body of GET /v2/catalog: the service offerings of a broker.
type Catalog struct {
	// Services are the broker's service offerings.
	Services []Service `json:"services"`
}

// Plan returns the service offering and plan with the given plan id.
func (c Catalog) Plan(planID string) (Service, Plan, bool) {
	for _, s := range c.Services {
		for _, p := range s.Plans {
			if p.ID == planID {
				return s, p, true
			}
		}
	}
	return Service{}, Plan{}, false
}

// Service is a service offering in a [Catalog].
type Service struct {
	// ID identifies the offering; unique among all brokers of a platform.
	ID string `json:"id"`
	// Name is the CLI-friendly name of the offering.
	Name string `json:"name"`
	// Description is a short description shown to users.
	Description string `json:"description"`
	// Tags are keywords an app can look the service up by.
	Tags []string `json:"tags,omitempty"`
	// Requires lists permissions the service needs from the platform:
	// "syslog_drain", "route_forwarding" or "volume_mount".
	Requires []string `json:"requires,omitempty"`
	// Bindable says whether instances of the offering can be bound.
	Bindable bool `json:"bindable"`
	// InstancesRetrievable says whether GET on an instance is supported.
	InstancesRetrievable bool `json:"instances_retrievable,omitempty"`
	// BindingsRetrievable says whether GET on a binding is supported.
	BindingsRetrievable bool `json:"bindings_retrievable,omitempty"`
	// AllowContextUpdates says whether the platform may send an update whose
	// only change is the context.
	AllowContextUpdates bool `json:"allow_context_updates,omitempty"`
	// Metadata is opaque, broker-defined display data.
	Metadata map[string]any `json:"metadata,omitempty"`
	// DashboardClient is the Cloud Foundry extension for an OAuth2 client of
	// the service's dashboard.
	DashboardClient *DashboardClient `json:"dashboard_client,omitempty"`
	// PlanUpdateable says whether an instance may change plan.
	PlanUpdateable bool `json:"plan_updateable,omitempty"`
	// Plans are the offering's plans; at least one.
	Plans []Plan `json:"plans"`
}

// DashboardClient is the OAuth2 client of a service's dashboard (a Cloud
// Foundry catalog extension). Its secret is redacted when printed.
type DashboardClient struct {
	// ID is the OAuth2 client id.
	ID string `json:"id"`
	// Secret is the OAuth2 client secret.
	Secret string `json:"secret"`
	// RedirectURI is the dashboard's redirect URI.
	RedirectURI string `json:"redirect_uri,omitempty"`
}

// String prints the client without its secret.
func (d DashboardClient) String() string {
	return fmt.Sprintf("{id:%s secret:%s redirect_uri:%s}", d.ID, redacted, d.RedirectURI)
}

// GoString prints the client without its secret.
func (d DashboardClient) GoString() string { return "osb.DashboardClient" + d.String() }

// LogValue logs the client without its secret.
func (d DashboardClient) LogValue() slog.Value {
	return slog.GroupValue(slog.String("id", d.ID), slog.String("redirect_uri", d.RedirectURI))
}

// Plan is a plan of a [Service].
type Plan struct {
	// ID identifies the plan; unique among all brokers of a platform.
	ID string `json:"id"`
	// Name is the CLI-friendly name of the plan.
	Name string `json:"name"`
	// Description is a short description shown to users.
	Description string `json:"description"`
	// Metadata is opaque, broker-defined display data.
	Metadata map[string]any `json:"metadata,omitempty"`
	// Free says whether the plan costs nothing; absent means true.
	Free *bool `json:"free,omitempty"`
	// Bindable overrides the offering's Bindable when present.
	Bindable *bool `json:"bindable,omitempty"`
	// BindingRotatable says whether a binding of the plan can be rotated:
	// a bind naming it as predecessor_binding_id (2.17); absent means false.
	BindingRotatable *bool `json:"binding_rotatable,omitempty"`
	// PlanUpdateable overrides the offering's PlanUpdateable when present.
	PlanUpdateable *bool `json:"plan_updateable,omitempty"`
	// Schemas are JSON schemas of the parameters the plan accepts.
	Schemas *Schemas `json:"schemas,omitempty"`
	// MaximumPollingDuration is how long, in seconds, the platform should
	// poll an asynchronous operation before giving up; 0 means no limit.
	MaximumPollingDuration int `json:"maximum_polling_duration,omitempty"`
	// MaintenanceInfo is the plan's current maintenance version.
	MaintenanceInfo *MaintenanceInfo `json:"maintenance_info,omitempty"`
}

// PollingLimit is MaximumPollingDuration as a duration; 0 means no limit.
func (p Plan) PollingLimit() time.Duration {
	return time.Duration(p.MaximumPollingDuration) * time.Second
}

// IsBindable says whether instances of the plan, an offering of s, can be bound.
func (p Plan) IsBindable(s Service) bool {
	if p.Bindable != nil {
		return *p.Bindable
	}
	return s.Bindable
}

// Schemas are the JSON schemas of a plan's parameters.
type Schemas struct {
	// ServiceInstance holds the schemas of provision and update parameters.
	ServiceInstance *InstanceSchemas `json:"service_instance,omitempty"`
	// ServiceBinding holds the schema of bind parameters.
	ServiceBinding *BindingSchemas `json:"service_binding,omitempty"`
}

// InstanceSchemas are the schemas of an instance's parameters.
type InstanceSchemas struct {
	// Create is the schema of provision parameters.
	Create *InputParameters `json:"create,omitempty"`
	// Update is the schema of update parameters.
	Update *InputParameters `json:"update,omitempty"`
}

// BindingSchemas are the schemas of a binding's parameters.
type BindingSchemas struct {
	// Create is the schema of bind parameters.
	Create *InputParameters `json:"create,omitempty"`
}

// InputParameters holds one JSON schema.
type InputParameters struct {
	// Parameters is a JSON schema (draft 04 or later) as a JSON object.
	Parameters map[string]any `json:"parameters,omitempty"`
}

// MaintenanceInfo is a plan's maintenance version: an instance provisioned or
// updated with an older version can be upgraded by an update carrying the new one.
type MaintenanceInfo struct {
	// Version is a semantic version.
	Version string `json:"version"`
	// Description says what the version changes.
	Description string `json:"description,omitempty"`
}

// ProvisionRequest is the body of PUT /v2/service_instances/:instance_id.
type ProvisionRequest struct {
	// ServiceID is the offering's id.
	ServiceID string `json:"service_id"`
	// PlanID is the plan's id.
	PlanID string `json:"plan_id"`
	// Context is platform-specific data about where the instance is created.
	Context map[string]any `json:"context,omitempty"`
	// OrganizationGUID is deprecated in favour of Context but still required.
	OrganizationGUID string `json:"organization_guid"`
	// SpaceGUID is deprecated in favour of Context but still required.
	SpaceGUID string `json:"space_guid"`
	// Parameters are the user's configuration of the instance.
	Parameters map[string]any `json:"parameters,omitempty"`
	// MaintenanceInfo is the version the platform expects to be provisioned.
	MaintenanceInfo *MaintenanceInfo `json:"maintenance_info,omitempty"`
}

// ProvisionResponse is the body of a 200, 201 or 202 answer to a provision.
type ProvisionResponse struct {
	// DashboardURL is where a user manages the instance.
	DashboardURL string `json:"dashboard_url,omitempty"`
	// Operation identifies an asynchronous provision, sent back when polling.
	Operation string `json:"operation,omitempty"`
	// Metadata are labels and attributes of the instance.
	Metadata *InstanceMetadata `json:"metadata,omitempty"`
}

// InstanceMetadata are labels and attributes a broker returns for an instance.
type InstanceMetadata struct {
	// Labels are broker-specified key-value pairs.
	Labels map[string]any `json:"labels,omitempty"`
	// Attributes are broker-specified information about the instance.
	Attributes map[string]any `json:"attributes,omitempty"`
}

// UpdateRequest is the body of PATCH /v2/service_instances/:instance_id.
type UpdateRequest struct {
	// ServiceID is the offering's id.
	ServiceID string `json:"service_id"`
	// PlanID is the new plan's id, when changing plan.
	PlanID string `json:"plan_id,omitempty"`
	// Parameters are the configuration changes.
	Parameters map[string]any `json:"parameters,omitempty"`
	// PreviousValues is what the instance had before this update.
	PreviousValues *PreviousValues `json:"previous_values,omitempty"`
	// Context is platform-specific data about the instance.
	Context map[string]any `json:"context,omitempty"`
	// MaintenanceInfo is the version to upgrade the instance to.
	MaintenanceInfo *MaintenanceInfo `json:"maintenance_info,omitempty"`
}

// PreviousValues describes an instance before an update.
type PreviousValues struct {
	// ServiceID is deprecated; the offering's id.
	ServiceID string `json:"service_id,omitempty"`
	// PlanID is the plan the instance had.
	PlanID string `json:"plan_id,omitempty"`
	// OrganizationID is deprecated in favour of the context.
	OrganizationID string `json:"organization_id,omitempty"`
	// SpaceID is deprecated in favour of the context.
	SpaceID string `json:"space_id,omitempty"`
	// MaintenanceInfo is the maintenance version the instance had.
	MaintenanceInfo *MaintenanceInfo `json:"maintenance_info,omitempty"`
}

// UpdateResponse is the body of a 200 or 202 answer to an update.
type UpdateResponse struct {
	// DashboardURL is an updated dashboard URL, if it changed.
	DashboardURL string `json:"dashboard_url,omitempty"`
	// Operation identifies an asynchronous update, sent back when polling.
	Operation string `json:"operation,omitempty"`
	// Metadata are labels and attributes of the instance.
	Metadata *InstanceMetadata `json:"metadata,omitempty"`
}

// AsyncResponse is the body of a 202 answer to deprovision, bind or unbind
// (and of a 200 or 201, whose body is "{}").
type AsyncResponse struct {
	// Operation identifies the asynchronous operation, sent back when polling.
	Operation string `json:"operation,omitempty"`
}

// Instance is the body of GET /v2/service_instances/:instance_id.
type Instance struct {
	// ServiceID is the offering's id.
	ServiceID string `json:"service_id,omitempty"`
	// PlanID is the plan's id.
	PlanID string `json:"plan_id,omitempty"`
	// DashboardURL is where a user manages the instance.
	DashboardURL string `json:"dashboard_url,omitempty"`
	// Parameters are the instance's configuration.
	Parameters map[string]any `json:"parameters,omitempty"`
	// MaintenanceInfo is the instance's maintenance version.
	MaintenanceInfo *MaintenanceInfo `json:"maintenance_info,omitempty"`
	// Metadata are labels and attributes of the instance.
	Metadata *InstanceMetadata `json:"metadata,omitempty"`
}

// BindRequest is the body of
// PUT /v2/service_instances/:instance_id/service_bindings/:binding_id.
type BindRequest struct {
	// Context is platform-specific data about where the binding is created.
	Context map[string]any `json:"context,omitempty"`
	// ServiceID is the offering's id.
	ServiceID string `json:"service_id"`
	// PlanID is the plan's id.
	PlanID string `json:"plan_id"`
	// AppGUID is deprecated in favour of BindResource.AppGUID.
	AppGUID string `json:"app_guid,omitempty"`
	// BindResource names what the binding is for: an app or a route.
	BindResource *BindResource `json:"bind_resource,omitempty"`
	// Parameters are the user's configuration of the binding.
	Parameters map[string]any `json:"parameters,omitempty"`
	// PredecessorBindingID names the binding this one rotates.
	PredecessorBindingID string `json:"predecessor_binding_id,omitempty"`
}

// BindResource names the resource a binding is for.
type BindResource struct {
	// AppGUID is the app's id, for credentials bindings.
	AppGUID string `json:"app_guid,omitempty"`
	// Route is the URL of the route, for route service bindings.
	Route string `json:"route,omitempty"`
}

// Binding is the body of a 200 or 201 answer to a bind and of GET on a
// binding. Its credentials are redacted when printed.
type Binding struct {
	// Metadata says when the binding's credentials expire.
	Metadata *BindingMetadata `json:"metadata,omitempty"`
	// Credentials are what an app needs to use the instance.
	Credentials Credentials `json:"credentials,omitempty"`
	// SyslogDrainURL is where the app's logs are to be streamed.
	SyslogDrainURL string `json:"syslog_drain_url,omitempty"`
	// RouteServiceURL is where requests to the bound route are proxied.
	RouteServiceURL string `json:"route_service_url,omitempty"`
	// VolumeMounts are volumes to mount into the app's containers.
	VolumeMounts []VolumeMount `json:"volume_mounts,omitempty"`
	// Endpoints are the network endpoints the app will reach.
	Endpoints []Endpoint `json:"endpoints,omitempty"`
	// Parameters are the binding's configuration (GET only).
	Parameters map[string]any `json:"parameters,omitempty"`
}

// BindingMetadata says when a binding's credentials expire.
type BindingMetadata struct {
	// ExpiresAt is an ISO 8601 time after which the credentials stop working.
	ExpiresAt string `json:"expires_at,omitempty"`
	// RenewBefore is an ISO 8601 time before which the binding should be rotated.
	RenewBefore string `json:"renew_before,omitempty"`
}

// Credentials are a binding's secrets, free-form JSON. They print, format
// and log as a redacted placeholder; only JSON encoding shows them.
type Credentials map[string]any

const redacted = "[redacted]"

// String hides the credentials.
func (Credentials) String() string { return redacted }

// GoString hides the credentials.
func (Credentials) GoString() string { return redacted }

// Format hides the credentials whatever the verb.
func (Credentials) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(redacted)) }

// LogValue hides the credentials.
func (Credentials) LogValue() slog.Value { return slog.StringValue(redacted) }

// VolumeMount is a volume a binding asks to be mounted.
type VolumeMount struct {
	// Driver is the volume driver plugin's name.
	Driver string `json:"driver"`
	// ContainerDir is where to mount the volume in the app's container.
	ContainerDir string `json:"container_dir"`
	// Mode is "r" or "rw".
	Mode string `json:"mode"`
	// DeviceType is "shared".
	DeviceType string `json:"device_type"`
	// Device describes the volume.
	Device VolumeDevice `json:"device"`
}

// VolumeDevice describes a shared volume.
type VolumeDevice struct {
	// VolumeID identifies the volume to the driver.
	VolumeID string `json:"volume_id"`
	// MountConfig is driver-specific configuration.
	MountConfig map[string]any `json:"mount_config,omitempty"`
}

// Endpoint is a network endpoint an app reaches through a binding.
type Endpoint struct {
	// Host is a host name or IP address.
	Host string `json:"host"`
	// Ports are ports or port ranges ("5432", "8000-8010").
	Ports []string `json:"ports"`
	// Protocol is "tcp" (the default), "udp" or "all".
	Protocol string `json:"protocol,omitempty"`
}

// State is the state of an asynchronous operation.
type State string

// The states an operation reports in [LastOperation].
const (
	StateInProgress State = "in progress"
	StateSucceeded  State = "succeeded"
	StateFailed     State = "failed"
)

// LastOperation is the body of GET .../last_operation.
type LastOperation struct {
	// State is the operation's state.
	State State `json:"state"`
	// Description is shown to the user.
	Description string `json:"description,omitempty"`
	// InstanceUsable says, for a failed update or deprovision, whether the
	// instance can still be used.
	InstanceUsable *bool `json:"instance_usable,omitempty"`
	// UpdateRepeatable says, for a failed update, whether repeating it may
	// succeed.
	UpdateRepeatable *bool `json:"update_repeatable,omitempty"`
}

// ErrorResponse is the body of a broker's 4xx or 5xx answer.
type ErrorResponse struct {
	// Error is a code such as [CodeAsyncRequired]; may be empty.
	Error string `json:"error,omitempty"`
	// Description says what went wrong, for the user.
	Description string `json:"description,omitempty"`
	// InstanceUsable says, for a failed update or deprovision, whether the
	// instance can still be used.
	InstanceUsable *bool `json:"instance_usable,omitempty"`
	// UpdateRepeatable says, for a failed update, whether repeating it may
	// succeed.
	UpdateRepeatable *bool `json:"update_repeatable,omitempty"`
}
