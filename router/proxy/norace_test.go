//go:build !race

package proxy

// raceEnabled is set when the race detector is on (race_test.go).
const raceEnabled = false
