package platform

import (
	"context"
	"log/slog"
	"runtime/debug"
	"strings"
	"testing"
)

// TestSetGCPercent: the role's target applies unless GOGC is set or
// the target is 0, and the target in force is what the runtime has.
func TestSetGCPercent(t *testing.T) {
	before := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(before) })
	for _, tc := range []struct {
		name    string
		gogc    string
		percent int
		want    int
	}{
		{"role's default", "", DefaultRouterGCPercent, DefaultRouterGCPercent},
		{"another target", "", 250, 250},
		{"0 keeps the runtime's", "", 0, 100},
		{"GOGC wins", "150", DefaultRouterGCPercent, 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			debug.SetGCPercent(100)
			t.Setenv("GOGC", tc.gogc)
			if got := setGCPercent(tc.percent, slog.Default()); got != tc.want {
				t.Fatalf("setGCPercent = %d, want %d", got, tc.want)
			}
			if got := debug.SetGCPercent(100); got != tc.want {
				t.Fatalf("the runtime's target is %d, want %d", got, tc.want)
			}
		})
	}
}

// TestRunRouterRefusesNegativeGCPercent: a negative target (which would
// turn the collector off) is refused before the role starts.
func TestRunRouterRefusesNegativeGCPercent(t *testing.T) {
	before := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(before) })
	cfg := DefaultRouterConfig()
	cfg.GCPercent = -1
	err := RunRouter(context.Background(), cfg)
	if err == nil || !strings.Contains(err.Error(), "--gc-percent") {
		t.Fatalf("RunRouter = %v, want the --gc-percent refusal", err)
	}
	if got := debug.SetGCPercent(100); got != 100 {
		t.Fatalf("the collector's target became %d", got)
	}
}
