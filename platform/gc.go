package platform

import (
	"log/slog"
	"os"
	"runtime/debug"
)

// DefaultRouterGCPercent is the router role's Go collector target
// (GOGC) unless GOGC is set. A router's live heap is small (a few MB
// plus its route table) while every new connection leaves tens of KB of
// garbage, most of it crypto/tls's handshake state: at the runtime's
// 100 a connection-per-request HTTPS load collects about 30 times a
// second and spends some 6 % of the router's CPU there. At 400 it
// collects a fifth as often, for a heap of up to five times the live
// one (GOMEMLIMIT caps it where memory is tight). docs/benchmarks.md,
// run K, has the measurement.
const DefaultRouterGCPercent = 400

// setGCPercent sets the collector's target to percent, unless the GOGC
// environment variable chose one (it wins) or percent is 0 (the
// runtime's own); it reports the target in force.
func setGCPercent(percent int, log *slog.Logger) int {
	if os.Getenv("GOGC") != "" || percent == 0 {
		current := debug.SetGCPercent(-1)
		debug.SetGCPercent(current)
		return current
	}
	debug.SetGCPercent(percent)
	log.Debug("collector target set", "gc_percent", percent)
	return percent
}
