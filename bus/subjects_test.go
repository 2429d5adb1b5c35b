package bus

import (
	"strings"
	"testing"

	"github.com/driftless/driftless/model"
)

func TestToken(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"", "_"},
		{"hello", "hello"},
		{"cell-1_a", "cell-1_a"},
		{"a.b", "a_b"},
		{"a*b", "a_b"},
		{"a>b", "a_b"},
		{"a b\tc\rd\ne", "a_b_c_d_e"},
		{"..", "__"},
		{"ünï", "ünï"},
	}
	for _, tt := range tests {
		if got := Token(tt.in); got != tt.want {
			t.Errorf("Token(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestCellCommand(t *testing.T) {
	tests := []struct {
		cell, verb, want string
	}{
		{"cell-1", VerbStart, "driftless.v1.cells.cell-1.start"},
		{"cell-1", VerbStop, "driftless.v1.cells.cell-1.stop"},
		{"host.example.com", VerbStart, "driftless.v1.cells.host_example_com.start"},
		{"*", VerbStop, "driftless.v1.cells._.stop"},
		{">", VerbStart, "driftless.v1.cells._.start"},
		{"", VerbStart, "driftless.v1.cells._.start"},
	}
	for _, tt := range tests {
		got := CellCommand(tt.cell, tt.verb)
		if got != tt.want {
			t.Errorf("CellCommand(%q, %q) = %q, want %q", tt.cell, tt.verb, got, tt.want)
		}
		// One token per cell, whatever its id: a cell can never receive
		// another's commands, nor a wildcard all of them.
		if n := len(strings.Split(got, ".")); n != 5 {
			t.Errorf("CellCommand(%q, %q) = %q has %d tokens, want 5", tt.cell, tt.verb, got, n)
		}
	}
}

func TestLogSubjects(t *testing.T) {
	one := 1
	tests := []struct {
		name string
		line model.LogLine
		want string
	}{
		{"app line", model.LogLine{Space: "dev", App: "hello", Source: model.LogApp, Index: 2}, "driftless.v1.logs.dev.hello.APP.2"},
		{"sidecar line", model.LogLine{Space: "dev", App: "hello", Source: "APP/SIDECAR/proxy", Index: 0}, "driftless.v1.logs.dev.hello.APP.0"},
		{"staging line", model.LogLine{Space: "prod", App: "api_2", Source: model.LogStaging, Index: 3}, "driftless.v1.logs.prod.api_2.STG._"},
		{"api line", model.LogLine{Space: "prod", App: "api", Source: model.LogAPI}, "driftless.v1.logs.prod.api.API._"},
		{"router line", model.LogLine{Space: "dev", App: "hello", Source: model.LogRouter, Index: 1}, "driftless.v1.logs.dev.hello.RTR.1"},
		{"odd names", model.LogLine{Space: "a.b", App: "c d", Source: model.LogHealth}, "driftless.v1.logs.a_b.c_d.HEALTH.0"},
		{"no space", model.LogLine{App: "x>", Source: model.LogCell}, "driftless.v1.logs._.x_.CELL.0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := LogSubject(tt.line)
			if got != tt.want {
				t.Errorf("LogSubject(%+v) = %q, want %q", tt.line, got, tt.want)
			}
			if n := len(strings.Split(got, ".")); n != 7 {
				t.Errorf("LogSubject = %q has %d tokens, want 7", got, n)
			}
			stream := strings.TrimSuffix(LogStreamSubjects(tt.line.Space), ">")
			if !strings.HasPrefix(got, stream) {
				t.Errorf("LogSubject = %q is not in its space's stream %s>", got, stream)
			}
		})
	}
	filters := []struct {
		source model.LogSource
		index  *int
		want   string
	}{
		{"", nil, "driftless.v1.logs.dev.hello.*.*"},
		{model.LogRouter, nil, "driftless.v1.logs.dev.hello.RTR.*"},
		{"", &one, "driftless.v1.logs.dev.hello.*.1"},
		{model.LogApp, &one, "driftless.v1.logs.dev.hello.APP.1"},
	}
	for _, f := range filters {
		if got := LogFilter("dev", "hello", f.source, f.index); got != f.want {
			t.Errorf("LogFilter(dev, hello, %q, %v) = %q, want %q", f.source, f.index, got, f.want)
		}
	}
	streams := []struct{ space, want string }{
		{"dev", "DRIFTLESS_LOGS_dev"},
		{"pr-12", "DRIFTLESS_LOGS_pr-12"},
		{"a.b/c d", "DRIFTLESS_LOGS_a_b_c_d"},
		{"", "DRIFTLESS_LOGS__"},
	}
	for _, s := range streams {
		if got := LogStream(s.space); got != s.want {
			t.Errorf("LogStream(%q) = %q, want %q", s.space, got, s.want)
		}
	}
}

func TestFixedSubjects(t *testing.T) {
	tests := []struct {
		name, got, want string
	}{
		{"heartbeat", HeartbeatSubject("cell-1"), "driftless.v1.cells.cell-1.heartbeat"},
		{"heartbeat of an odd cell", HeartbeatSubject("a.b*"), "driftless.v1.cells.a_b_.heartbeat"},
		{"heartbeat wildcard", HeartbeatWildcard, "driftless.v1.cells.*.heartbeat"},
		{"instance changed", InstancesSubject("cell-1"), "driftless.v1.cells.cell-1.instances"},
		{"instances wildcard", InstancesWildcard, "driftless.v1.cells.*.instances"},
		{"wake", SubjectWake, "driftless.v1.apps.wake"},
		{"activity", SubjectActivity, "driftless.v1.routers.activity"},
		{"stage", SubjectStage, "driftless.v1.staging.requests"},
		{"events of an app", EventSubject("dev", "hello"), "driftless.v1.events.dev.hello"},
		{"events of the platform", EventSubject("", ""), "driftless.v1.events._._"},
		{"events wildcard", EventsWildcard, "driftless.v1.events.>"},
		{"events of a space", EventFilter("dev", ""), "driftless.v1.events.dev.*"},
		{"event stream", EventStream, "DRIFTLESS_EVENTS"},
		{"logs wildcard", LogsWildcard, "driftless.v1.logs.>"},
		{"stagers queue", QueueStagers, "driftless-stagers"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s subject is %q, want %q (subjects are the wire contract: a change needs a new Version)", tt.name, tt.got, tt.want)
		}
	}
}

func TestSubjectCell(t *testing.T) {
	tests := []struct {
		subject, want string
	}{
		{HeartbeatSubject("cell-1"), "cell-1"},
		{InstancesSubject("c.2"), "c_2"},
		{CellCommand("cell-3", VerbStart), "cell-3"},
		{SubjectStage, ""},
		{LogFilter("dev", "hello", "", nil), ""},
		{"driftless.v1.cells.a.b.heartbeat", ""},
		{"driftless.v1.cells.a", ""},
		{"driftless.v2.cells.a.heartbeat", ""},
	}
	for _, tt := range tests {
		if got := SubjectCell(tt.subject); got != tt.want {
			t.Errorf("SubjectCell(%q) = %q, want %q", tt.subject, got, tt.want)
		}
	}
}
