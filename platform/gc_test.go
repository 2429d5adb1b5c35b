package platform

import (
	"log/slog"
	"runtime/debug"
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
