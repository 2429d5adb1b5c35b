package plan

import "time"

// CrashPolicy says how soon a crashed instance is started again, the way
// Cloud Foundry's Diego does: the first few crashes in a row are restarted
// at once, then each restart waits twice as long as the one before, up to
// a cap. An instance that stays RUNNING for ResetAfter clears the count.
type CrashPolicy struct {
	// QuickRestarts is how many crashes in a row are restarted at once.
	QuickRestarts int
	// Backoff is the wait after crash QuickRestarts+1; it doubles with
	// every further crash.
	Backoff time.Duration
	// MaxBackoff caps the wait.
	MaxBackoff time.Duration
	// ResetAfter is how long an instance must stay RUNNING for its index's
	// crash count to start over.
	ResetAfter time.Duration
}

// DefaultCrashPolicy is Cloud Foundry's: 3 quick restarts, then 30 s
// doubling up to 16 minutes; 5 minutes of running resets the count.
var DefaultCrashPolicy = CrashPolicy{QuickRestarts: 3, Backoff: 30 * time.Second,
	MaxBackoff: 16 * time.Minute, ResetAfter: 5 * time.Minute}

// WithDefaults fills the zero fields of p from DefaultCrashPolicy.
func (p CrashPolicy) WithDefaults() CrashPolicy {
	d := DefaultCrashPolicy
	if p.QuickRestarts == 0 {
		p.QuickRestarts = d.QuickRestarts
	}
	if p.Backoff == 0 {
		p.Backoff = d.Backoff
	}
	if p.MaxBackoff == 0 {
		p.MaxBackoff = max(d.MaxBackoff, p.Backoff)
	}
	if p.ResetAfter == 0 {
		p.ResetAfter = d.ResetAfter
	}
	return p
}

// Delay is how long to wait before starting an instance again after its
// index crashed crashes times in a row (counting the latest).
func (p CrashPolicy) Delay(crashes int) time.Duration {
	over := crashes - p.QuickRestarts
	if over <= 0 {
		return 0
	}
	d := p.Backoff
	for i := 1; i < over; i++ {
		d *= 2
		if d >= p.MaxBackoff {
			return p.MaxBackoff
		}
	}
	return min(d, p.MaxBackoff)
}
