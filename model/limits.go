package model

// Limits on what a manifest may ask for, so that everything the platform
// keeps and sends fits the engines underneath: Consul refuses KV values
// over 512 KiB and NATS messages over 1 MiB by default. A release (stored
// in Consul, sent in a start command) carries an app's environment and
// command; these bounds keep it well inside both, and are refused at the
// manifest with file:line instead of failing later.
const (
	// MaxEnvBytes bounds the total size of an app's environment (names
	// and values), as Cloud Foundry's ~130 KB limit does.
	MaxEnvBytes = 130 * 1024
	// MaxCommandBytes bounds a start command.
	MaxCommandBytes = 16 * 1024
	// MaxRoutes bounds how many routes one app declares.
	MaxRoutes = 1000
	// MaxStoredValueBytes is what Consul accepts as one KV value.
	MaxStoredValueBytes = 512 * 1024
)

// EnvBytes is the size of an environment as MaxEnvBytes counts it.
func EnvBytes(env map[string]string) int {
	n := 0
	for k, v := range env {
		n += len(k) + len(v) + 2 // "k=v\0"
	}
	return n
}
