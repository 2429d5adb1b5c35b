package osb_test

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/driftless/driftless/brokers/osb"
)

func ptr[T any](v T) *T { return &v }

// TestWireJSON checks each wire type's JSON field names against the 2.17
// specification's, both ways.
func TestWireJSON(t *testing.T) {
	for _, tc := range []struct {
		name  string
		value any
		json  string
	}{
		{"catalog", osb.Catalog{Services: []osb.Service{{
			ID: "s", Name: "pg", Description: "d", Tags: []string{"sql"}, Requires: []string{"volume_mount"}, Bindable: true,
			InstancesRetrievable: true, BindingsRetrievable: true, AllowContextUpdates: true, Metadata: map[string]any{"k": "v"},
			DashboardClient: &osb.DashboardClient{ID: "c", Secret: "x", RedirectURI: "https://r"}, PlanUpdateable: true,
			Plans: []osb.Plan{{ID: "p", Name: "small", Description: "d", Metadata: map[string]any{"k": "v"}, Free: ptr(false),
				Bindable: ptr(true), PlanUpdateable: ptr(false), MaximumPollingDuration: 600,
				MaintenanceInfo: &osb.MaintenanceInfo{Version: "1.0.0", Description: "m"},
				Schemas: &osb.Schemas{
					ServiceInstance: &osb.InstanceSchemas{Create: &osb.InputParameters{Parameters: map[string]any{"type": "object"}},
						Update: &osb.InputParameters{Parameters: map[string]any{"type": "object"}}},
					ServiceBinding: &osb.BindingSchemas{Create: &osb.InputParameters{Parameters: map[string]any{"type": "object"}}},
				}}},
		}}}, `{"services":[{"id":"s","name":"pg","description":"d","tags":["sql"],"requires":["volume_mount"],"bindable":true,
			"instances_retrievable":true,"bindings_retrievable":true,"allow_context_updates":true,"metadata":{"k":"v"},
			"dashboard_client":{"id":"c","secret":"x","redirect_uri":"https://r"},"plan_updateable":true,
			"plans":[{"id":"p","name":"small","description":"d","metadata":{"k":"v"},"free":false,"bindable":true,"plan_updateable":false,
			"maximum_polling_duration":600,"maintenance_info":{"version":"1.0.0","description":"m"},
			"schemas":{"service_instance":{"create":{"parameters":{"type":"object"}},"update":{"parameters":{"type":"object"}}},
			"service_binding":{"create":{"parameters":{"type":"object"}}}}}]}]}`},
		{"provision request", osb.ProvisionRequest{ServiceID: "s", PlanID: "p", Context: map[string]any{"platform": "driftless"},
			OrganizationGUID: "o", SpaceGUID: "sp", Parameters: map[string]any{"a": 1.0}, MaintenanceInfo: &osb.MaintenanceInfo{Version: "1"}},
			`{"service_id":"s","plan_id":"p","context":{"platform":"driftless"},"organization_guid":"o","space_guid":"sp",
			"parameters":{"a":1},"maintenance_info":{"version":"1"}}`},
		{"provision response", osb.ProvisionResponse{DashboardURL: "https://d", Operation: "op",
			Metadata: &osb.InstanceMetadata{Labels: map[string]any{"l": "1"}, Attributes: map[string]any{"a": "2"}}},
			`{"dashboard_url":"https://d","operation":"op","metadata":{"labels":{"l":"1"},"attributes":{"a":"2"}}}`},
		{"update request", osb.UpdateRequest{ServiceID: "s", PlanID: "p2", Parameters: map[string]any{"a": true},
			PreviousValues: &osb.PreviousValues{ServiceID: "s", PlanID: "p", OrganizationID: "o", SpaceID: "sp",
				MaintenanceInfo: &osb.MaintenanceInfo{Version: "0.9"}},
			Context: map[string]any{"platform": "driftless"}, MaintenanceInfo: &osb.MaintenanceInfo{Version: "1"}},
			`{"service_id":"s","plan_id":"p2","parameters":{"a":true},"previous_values":{"service_id":"s","plan_id":"p",
			"organization_id":"o","space_id":"sp","maintenance_info":{"version":"0.9"}},"context":{"platform":"driftless"},
			"maintenance_info":{"version":"1"}}`},
		{"bind request", osb.BindRequest{Context: map[string]any{"platform": "driftless"}, ServiceID: "s", PlanID: "p", AppGUID: "a",
			BindResource: &osb.BindResource{AppGUID: "a", Route: "r.example.com"}, Parameters: map[string]any{"ro": true},
			PredecessorBindingID: "b0"},
			`{"context":{"platform":"driftless"},"service_id":"s","plan_id":"p","app_guid":"a",
			"bind_resource":{"app_guid":"a","route":"r.example.com"},"parameters":{"ro":true},"predecessor_binding_id":"b0"}`},
		{"binding", osb.Binding{Credentials: osb.Credentials{"uri": "postgres://"}, SyslogDrainURL: "syslog://d",
			RouteServiceURL: "https://rs", Metadata: &osb.BindingMetadata{ExpiresAt: "2027-01-01T00:00:00.000Z", RenewBefore: "2026-12-01T00:00:00.000Z"},
			VolumeMounts: []osb.VolumeMount{{Driver: "nfs", ContainerDir: "/data", Mode: "rw", DeviceType: "shared",
				Device: osb.VolumeDevice{VolumeID: "v", MountConfig: map[string]any{"k": "v"}}}},
			Endpoints: []osb.Endpoint{{Host: "h", Ports: []string{"5432", "8000-8010"}, Protocol: "tcp"}}},
			`{"credentials":{"uri":"postgres://"},"syslog_drain_url":"syslog://d","route_service_url":"https://rs",
			"metadata":{"expires_at":"2027-01-01T00:00:00.000Z","renew_before":"2026-12-01T00:00:00.000Z"},
			"volume_mounts":[{"driver":"nfs","container_dir":"/data","mode":"rw","device_type":"shared",
			"device":{"volume_id":"v","mount_config":{"k":"v"}}}],
			"endpoints":[{"host":"h","ports":["5432","8000-8010"],"protocol":"tcp"}]}`},
		{"instance", osb.Instance{ServiceID: "s", PlanID: "p", DashboardURL: "https://d", Parameters: map[string]any{"a": "b"},
			MaintenanceInfo: &osb.MaintenanceInfo{Version: "1"}},
			`{"service_id":"s","plan_id":"p","dashboard_url":"https://d","parameters":{"a":"b"},"maintenance_info":{"version":"1"}}`},
		{"last operation", osb.LastOperation{State: osb.StateInProgress, Description: "50%", InstanceUsable: ptr(true), UpdateRepeatable: ptr(false)},
			`{"state":"in progress","description":"50%","instance_usable":true,"update_repeatable":false}`},
		{"error response", osb.ErrorResponse{Error: osb.CodeConcurrencyError, Description: "busy", InstanceUsable: ptr(true), UpdateRepeatable: ptr(true)},
			`{"error":"ConcurrencyError","description":"busy","instance_usable":true,"update_repeatable":true}`},
		{"async response", osb.AsyncResponse{Operation: "task_10"}, `{"operation":"task_10"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := json.Marshal(tc.value)
			if err != nil {
				t.Fatal(err)
			}
			var gotMap, wantMap any
			if err := json.Unmarshal(got, &gotMap); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal([]byte(tc.json), &wantMap); err != nil {
				t.Fatalf("test JSON: %v", err)
			}
			if !reflect.DeepEqual(gotMap, wantMap) {
				t.Errorf("encodes as\n%s\nwant\n%s", got, tc.json)
			}
			back := reflect.New(reflect.TypeOf(tc.value))
			if err := json.Unmarshal([]byte(tc.json), back.Interface()); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(back.Elem().Interface(), tc.value) {
				t.Errorf("decodes as %#v, want %#v", back.Elem().Interface(), tc.value)
			}
		})
	}
}
