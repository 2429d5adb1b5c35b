package osb_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/driftless/driftless/brokers/osb"
)

// pollGaps returns the times between the broker's last_operation requests.
func pollGaps(b *broker) []time.Duration {
	var at []time.Time
	for _, r := range b.seen() {
		if strings.HasSuffix(r.Path, "/last_operation") {
			at = append(at, r.At)
		}
	}
	var gaps []time.Duration
	for i := 1; i < len(at); i++ {
		gaps = append(gaps, at[i].Sub(at[i-1]))
	}
	return gaps
}

// TestWaitInterval measures the waits between polls: the broker's
// Retry-After when it sends one, else the configured interval doubling to
// its cap.
func TestWaitInterval(t *testing.T) {
	for _, tc := range []struct {
		name       string
		retryAfter string
		polls      int
		min, max   time.Duration // bounds of every gap
	}{
		{"Retry-After 1 s", "1", 2, 950 * time.Millisecond, 1800 * time.Millisecond},
		{"no Retry-After: 10 ms doubling to 40 ms", "", 5, 9 * time.Millisecond, 400 * time.Millisecond},
		{"unreadable Retry-After ignored", "soon", 2, 9 * time.Millisecond, 400 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBroker(t)
			b.set(func(b *broker) { b.retryAfter, b.asyncPolls = tc.retryAfter, tc.polls })
			c, _ := newClient(t, b, nil)
			ctx := testCtx(t)
			_, op, err := c.Provision(ctx, "db", osb.ProvisionRequest{ServiceID: svcID, PlanID: planAsync, OrganizationGUID: "o", SpaceGUID: "s"})
			if err != nil || op == nil {
				t.Fatalf("Provision: %v %v", op, err)
			}
			if _, err := c.Wait(ctx, op, nil); err != nil {
				t.Fatalf("Wait: %v", err)
			}
			gaps := pollGaps(b)
			if len(gaps) != tc.polls {
				t.Fatalf("%d gaps between polls, want %d", len(gaps), tc.polls)
			}
			for i, g := range gaps {
				if g < tc.min || g > tc.max {
					t.Errorf("gap %d: %s, want within [%s, %s]", i, g, tc.min, tc.max)
				}
			}
			if tc.retryAfter == "" && gaps[len(gaps)-1] < 35*time.Millisecond {
				t.Errorf("interval did not grow to its cap: %v", gaps)
			}
		})
	}
}

// TestWaitMaximumPollingDuration gives up on an operation that never ends
// once the plan's maximum_polling_duration (1 s, from the catalog) passes.
func TestWaitMaximumPollingDuration(t *testing.T) {
	b := newBroker(t)
	b.set(func(b *broker) { b.retryAfter = "1" })
	c, _ := newClient(t, b, nil)
	ctx := testCtx(t)
	if _, err := c.Catalog(ctx); err != nil {
		t.Fatal(err)
	}
	_, op, err := c.Provision(ctx, "db", osb.ProvisionRequest{ServiceID: svcID, PlanID: planSlow, OrganizationGUID: "o", SpaceGUID: "s"})
	if err != nil || op == nil {
		t.Fatalf("Provision: %v %v", op, err)
	}
	if op.MaximumPollingDuration != time.Second {
		t.Fatalf("operation's maximum polling duration %s, want the plan's 1s", op.MaximumPollingDuration)
	}
	start := time.Now()
	lo, err := c.Wait(ctx, op, nil)
	took := time.Since(start)
	if !errors.Is(err, osb.ErrPollingTimeout) || !strings.Contains(err.Error(), "maximum_polling_duration of 1s") {
		t.Fatalf("Wait: %v", err)
	}
	if lo.State != osb.StateInProgress {
		t.Errorf("last state %q, want in progress", lo.State)
	}
	if took < 900*time.Millisecond || took > 3*time.Second {
		t.Errorf("gave up after %s, want about 1s", took)
	}
	// Retry-After (1 s) was cut short by the deadline: two polls, the last at the deadline.
	if gaps := pollGaps(b); len(gaps) != 1 {
		t.Errorf("polls gaps %v, want one", gaps)
	}
}

// TestWaitRetriesTransient: a poll answered 503 is repeated; a broker that
// keeps failing ends the wait with its error.
func TestWaitRetriesTransient(t *testing.T) {
	for _, tc := range []struct {
		name     string
		failures int
		wantErr  bool
	}{
		{"two 503s", 2, false},
		{"503 forever", 1000, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBroker(t)
			left := tc.failures
			b.set(func(b *broker) {
				b.override = func(w http.ResponseWriter, r *http.Request) bool {
					if !strings.HasSuffix(r.URL.Path, "/last_operation") || left == 0 {
						return false
					}
					left--
					fail(w, http.StatusServiceUnavailable, "", "restarting")
					return true
				}
			})
			c, _ := newClient(t, b, nil)
			ctx := testCtx(t)
			_, op, err := c.Provision(ctx, "db", osb.ProvisionRequest{ServiceID: svcID, PlanID: planAsync, OrganizationGUID: "o", SpaceGUID: "s"})
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Wait(ctx, op, nil)
			var e *osb.Error
			if tc.wantErr != (err != nil) || tc.wantErr && (!errors.As(err, &e) || e.StatusCode != 503 || !strings.Contains(err.Error(), "restarting")) {
				t.Fatalf("Wait: %v", err)
			}
		})
	}
}
