package bus

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/driftless/driftless/model"
)

var (
	sent  = time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)
	since = time.Date(2025, 3, 4, 5, 0, 0, 0, time.UTC)
)

// ref is an instance reference with every field set.
var ref = model.InstanceRef{GUID: "3f2a", Space: "dev", App: "hello", Index: 2, ReleaseID: "r-9c1", Commit: "a1b2c3", Process: "worker"}

// status is an instance status with every field set.
var status = model.InstanceStatus{
	InstanceRef: ref, Cell: "cell-1", State: model.StateCrashed, HostPort: 40123, MemoryMB: 64, DiskMB: 256,
	Since: since, ExitStatus: 137, Reason: "out of memory", LastOutput: []string{"boom"}, WasHealthy: true,
	NotReady: true, Usage: &model.InstanceUsage{At: since, CPUSeconds: 1.5, CPUPercent: 12.5, MemoryBytes: 25 << 20, DiskBytes: 1 << 20},
}

// messages holds one value of every type sent on the bus, every field
// set (TestMessagesComplete checks), so that a round trip shows any
// field the JSON encoding loses.
var messages = []struct {
	name string
	msg  any
}{
	{"CellHeartbeat", &CellHeartbeat{CellID: "cell-1", BootID: "b-77", Generation: 12, Address: "10.0.0.5", Zone: "z1", StagingSlots: 2,
		Capacity: model.Resources{MemoryMB: 4096, DiskMB: 20480, Instances: 50}, Instances: []model.InstanceStatus{status}, SentAt: sent}},
	{"InstanceChanged", &InstanceChanged{CellID: "cell-1", BootID: "b-77", Generation: 13, Instance: status}},
	{"StartInstance", &StartInstance{Instance: ref, Run: model.RunSpec{
		Droplet: "127.0.0.1:7070/droplets/dev/hello@sha256:ab", Command: "./hello",
		Env: map[string]string{"GREETING": "hi"}, MemoryMB: 64, DiskMB: 256, LogRateLimit: 1024, Routes: []string{"hello.apps.localhost/api"},
		HealthCheck: model.HealthCheck{Type: model.HealthHTTP, Endpoint: "/health", TimeoutSec: 30, InvocationTimeoutSec: 2, IntervalSec: 5,
			Readiness: model.ReadinessCheck{Type: model.HealthHTTP, Endpoint: "/ready", InvocationTimeoutSec: 3, IntervalSec: 4}},
		Balance:            model.BalanceLeastConnections,
		Services:           []model.AppService{{Name: "db", BindingName: "primary", Parameters: map[string]any{"ro": true}}},
		BindingGenerations: map[string]int{"db": 2},
		Bindings: []model.Binding{{Label: "postgresql", Name: "primary", BindingName: "primary", BindingGUID: "b-1", InstanceName: "db",
			InstanceGUID: "i-1", Plan: "small", Provider: "postgres", Tags: []string{"sql"}, Credentials: map[string]any{"uri": "postgres://u:p@h/d"},
			SyslogDrainURL: "syslog://logs:514", VolumeMounts: []any{"none"}}},
		HTTP2Routes: []string{"hello.apps.localhost/api"},
		Process:     "worker",
		Sidecars:    []model.Sidecar{{Name: "config", ProcessTypes: []string{"web"}, Command: "./config", MemoryMB: 32}},
		Ingress:     []model.IngressRule{{From: "frontend", Protocol: "tcp", Ports: model.PortRange{Start: 8000, End: 8100}}}}}},
	{"StopInstance", &StopInstance{GUID: "3f2a", Reason: "scaled down"}},
	{"Reply", &Reply{OK: true, Error: "none", BootID: "b-77", Generation: 14}},
	{"StageRequest", &StageRequest{ReleaseID: "r-9c1", Space: "dev", App: "hello", Source: "sha256:cd", BlobStore: "http://127.0.0.1:7070",
		Buildpacks: []string{"binary_buildpack"}, Stack: "tiny", Command: "./hello", Env: map[string]string{"A": "b"}, TimeoutSec: 900}},
	{"StageResult", &StageResult{Droplet: "sha256:ef", Buildpack: "binary", StartCommand: "./hello", Error: "none", LogTail: []string{"built"}, Procfile: map[string]string{"worker": "./work"}}},
	{"model.LogLine", &model.LogLine{Time: sent, Space: "dev", App: "hello", Source: model.LogApp, Index: 2, InstanceGUID: "3f2a", Stream: "stdout", Text: "hi", Process: "worker", Seq: 41}},
	{"model.Event", &model.Event{Time: sent, Kind: model.EventCrashed, Space: "dev", App: "hello", Instance: "3f2a", Index: 2, Process: "worker", Cell: "cell-1", Release: "r-9c1", Message: "exit 137", Seq: 7}},
	{"WakeRequest", &WakeRequest{Space: "dev-pr-7", App: "hello", Router: "router-1"}},
	{"RouterActivity", &RouterActivity{Router: "router-1", Apps: []AppRequests{{Space: "dev-pr-7", App: "hello", Requests: 12}}, SentAt: sent}},
}

func TestMessagesComplete(t *testing.T) {
	for _, m := range messages {
		if path := unset(reflect.ValueOf(m.msg).Elem(), m.name); path != "" {
			t.Errorf("%s is not set in the test value: set every field, so that the round trip covers it", path)
		}
	}
}

// unset returns the path of the first zero field under v ("" when every
// field, element and value is set).
func unset(v reflect.Value, path string) string {
	if v.IsZero() {
		return path
	}
	switch v.Kind() {
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			return ""
		}
		for i := range v.NumField() {
			if p := unset(v.Field(i), path+"."+v.Type().Field(i).Name); p != "" {
				return p
			}
		}
	case reflect.Slice:
		for i := range v.Len() {
			if p := unset(v.Index(i), path+"[]"); p != "" {
				return p
			}
		}
	case reflect.Map:
		for it := v.MapRange(); it.Next(); {
			if p := unset(it.Value(), path+"[key]"); p != "" {
				return p
			}
		}
	}
	return ""
}

func TestMessagesRoundTrip(t *testing.T) {
	for _, m := range messages {
		t.Run(m.name, func(t *testing.T) {
			data, err := json.Marshal(m.msg)
			if err != nil {
				t.Fatalf("encoding: %v", err)
			}
			back := reflect.New(reflect.TypeOf(m.msg).Elem())
			dec := json.NewDecoder(bytes.NewReader(data))
			dec.DisallowUnknownFields()
			if err := dec.Decode(back.Interface()); err != nil {
				t.Fatalf("decoding %s: %v", data, err)
			}
			if !reflect.DeepEqual(back.Interface(), m.msg) {
				t.Errorf("round trip changed the message:\n got %+v\nwant %+v\njson %s", back.Elem().Interface(), reflect.ValueOf(m.msg).Elem().Interface(), data)
			}
		})
	}
}

// Golden encodings: the JSON field names are the wire contract between
// agents and controllers of different builds. A change here needs a new
// bus.Version.
const (
	goldenStartInstance = `{"instance":{"guid":"3f2a","space":"dev","app":"hello","index":2,"release_id":"r-9c1","commit":"a1b2c3","process":"worker"},` +
		`"run":{"droplet":"127.0.0.1:7070/droplets/dev/hello@sha256:ab","command":"./hello",` +
		`"env":{"GREETING":"hi"},"memory_mb":64,"disk_mb":256,"log_rate_limit":1024,"routes":["hello.apps.localhost/api"],` +
		`"health_check":{"type":"http","endpoint":"/health","timeout_sec":30,"invocation_timeout_sec":2,"interval_sec":5,` +
		`"readiness":{"type":"http","endpoint":"/ready","invocation_timeout_sec":3,"interval_sec":4}},"balance":"least-connections",` +
		`"services":[{"name":"db","binding_name":"primary","parameters":{"ro":true}}],"binding_generations":{"db":2},` +
		`"bindings":[{"label":"postgresql","name":"primary","binding_name":"primary","binding_guid":"b-1","instance_name":"db",` +
		`"instance_guid":"i-1","plan":"small","provider":"postgres","tags":["sql"],"credentials":{"uri":"postgres://u:p@h/d"},` +
		`"syslog_drain_url":"syslog://logs:514","volume_mounts":["none"]}],"process":"worker","http2_routes":["hello.apps.localhost/api"],` +
		`"sidecars":[{"name":"config","process_types":["web"],"command":"./config","memory_mb":32}],` +
		`"ingress":[{"from":"frontend","protocol":"tcp","ports":{"start":8000,"end":8100}}]}}`
	goldenCellHeartbeat = `{"cell_id":"cell-1","boot_id":"b-77","generation":12,"address":"10.0.0.5","zone":"z1",` +
		`"capacity":{"memory_mb":4096,"disk_mb":20480,"instances":50},` +
		`"instances":[{"guid":"3f2a","space":"dev","app":"hello","index":2,"release_id":"r-9c1","commit":"a1b2c3","process":"worker",` +
		`"cell":"cell-1","state":"CRASHED","host_port":40123,"memory_mb":64,"disk_mb":256,"since":"2025-03-04T05:00:00Z",` +
		`"exit_status":137,"reason":"out of memory","last_output":["boom"],"was_healthy":true,"not_ready":true,"usage":{"at":"2025-03-04T05:00:00Z","cpu_seconds":1.5,"cpu_percent":12.5,"memory_bytes":26214400,"disk_bytes":1048576}}],` +
		`"sent_at":"2025-03-04T05:06:07Z","staging_slots":2}`
	// A start of a release that leaves out what may be left out.
	goldenMinimalStart = `{"instance":{"guid":"g","space":"s","app":"a","index":0,"release_id":"r"},` +
		`"run":{"droplet":"d","memory_mb":0,"disk_mb":0,"health_check":{"type":"","timeout_sec":0}}}`
)

func TestGoldenJSON(t *testing.T) {
	tests := []struct {
		name   string
		msg    any
		golden string
	}{
		{"StartInstance", messages[2].msg, goldenStartInstance},
		{"CellHeartbeat", messages[0].msg, goldenCellHeartbeat},
		{"minimal StartInstance", &StartInstance{Instance: model.InstanceRef{GUID: "g", Space: "s", App: "a", ReleaseID: "r"}, Run: model.RunSpec{Droplet: "d"}}, goldenMinimalStart},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, err := json.Marshal(tt.msg)
			if err != nil {
				t.Fatalf("encoding: %v", err)
			}
			if string(data) != tt.golden {
				t.Errorf("encoding changed (the wire contract):\n got %s\nwant %s", data, tt.golden)
			}
			// And what an older or newer peer sends in this form decodes
			// to the same message.
			back := reflect.New(reflect.TypeOf(tt.msg).Elem())
			if err := json.Unmarshal([]byte(tt.golden), back.Interface()); err != nil {
				t.Fatalf("decoding the golden form: %v", err)
			}
			if !reflect.DeepEqual(back.Interface(), tt.msg) {
				t.Errorf("golden form decodes to %+v, want %+v", back.Elem().Interface(), tt.msg)
			}
		})
	}
}

// TestLargestStartFitsNATS checks that the largest start command a
// manifest can ask for (model's limits) fits in one NATS message of the
// server's default maximum (1 MB), the bound of an external NATS.
func TestLargestStartFitsNATS(t *testing.T) {
	const natsDefaultMaxPayload = 1 << 20
	routes := make([]string, model.MaxRoutes)
	for i := range routes {
		routes[i] = strings.Repeat("h", 63) + ".apps.example.com/" + strings.Repeat("p", 100)
	}
	msg := StartInstance{Instance: ref, Run: model.RunSpec{
		Droplet: "127.0.0.1:7070/droplets/dev/hello@sha256:" + strings.Repeat("a", 64),
		Command: strings.Repeat("c", model.MaxCommandBytes),
		Env:     map[string]string{"BIG": strings.Repeat("v", model.MaxEnvBytes-len("BIG")-2)},
		Routes:  routes,
	}}
	if n := model.EnvBytes(msg.Run.Env); n != model.MaxEnvBytes {
		t.Fatalf("test env is %d bytes, want %d", n, model.MaxEnvBytes)
	}
	data, err := json.Marshal(msg)
	if err != nil {
		t.Fatal(err)
	}
	if len(data) > natsDefaultMaxPayload {
		t.Errorf("the largest start command is %d bytes, over NATS's default %d", len(data), natsDefaultMaxPayload)
	}
}
