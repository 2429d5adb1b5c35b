package catalog

// ReadyCheckID is the id of an instance's readiness check (ReadyOp), which
// its cell sets as its readiness probes say: an instance that is not ready
// stays registered and running, out of the routers.
func ReadyCheckID(guid string) string { return CheckID(guid) + ":ready" }
