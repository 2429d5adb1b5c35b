package bus

import (
	"strings"
	"testing"
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

func TestLogs(t *testing.T) {
	tests := []struct {
		space, app, want string
	}{
		{"dev", "hello", "driftless.v1.logs.dev.hello"},
		{"prod", "api_2", "driftless.v1.logs.prod.api_2"},
		{"a.b", "c d", "driftless.v1.logs.a_b.c_d"},
		{"", "x>", "driftless.v1.logs._.x_"},
	}
	for _, tt := range tests {
		got := Logs(tt.space, tt.app)
		if got != tt.want {
			t.Errorf("Logs(%q, %q) = %q, want %q", tt.space, tt.app, got, tt.want)
		}
		if !strings.HasPrefix(got, strings.TrimSuffix(LogsWildcard, ">")) {
			t.Errorf("Logs(%q, %q) = %q is not under %s", tt.space, tt.app, got, LogsWildcard)
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
		{"events", SubjectEvents, "driftless.v1.events"},
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
		{Logs("dev", "hello"), ""},
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
