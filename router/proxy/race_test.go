//go:build race

package proxy

// raceEnabled is set when the race detector is on: its sync.Pool drops
// a random quarter of what it is given, so tests that count the buffers
// a pool made cannot tell a held buffer from a dropped one.
const raceEnabled = true
