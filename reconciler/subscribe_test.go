package reconciler

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/driftless/driftless/bus"
)

// TestFromCell keeps a heartbeat or instance change whose body names the
// cell of its subject and drops, with a warning, one that speaks for
// another cell.
func TestFromCell(t *testing.T) {
	tests := []struct {
		name, subject, cellID string
		want                  bool
	}{
		{"own heartbeat", bus.HeartbeatSubject("cell-a"), "cell-a", true},
		{"own instance change", bus.InstancesSubject("cell-a"), "cell-a", true},
		{"odd id, its token", bus.HeartbeatSubject("a.b"), "a.b", true},
		{"heartbeat for another cell", bus.HeartbeatSubject("cell-a"), "cell-b", false},
		{"instance change for another cell", bus.InstancesSubject("cell-a"), "cell-b", false},
		{"no cell in the body", bus.HeartbeatSubject("cell-a"), "", false},
		{"not a cell subject", bus.SubjectStage, "cell-a", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			c := &Controller{log: slog.New(slog.NewTextHandler(&logs, nil))}
			if got := c.fromCell(&nats.Msg{Subject: tt.subject}, tt.cellID); got != tt.want {
				t.Errorf("fromCell(%s, %q) = %v, want %v", tt.subject, tt.cellID, got, tt.want)
			}
			if warned := strings.Contains(logs.String(), "level=WARN"); warned == tt.want {
				t.Errorf("warned %v for a message kept %v: %s", warned, tt.want, logs.String())
			}
		})
	}
}
