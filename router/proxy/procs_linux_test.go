//go:build linux

package proxy

import (
	"context"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestLoopProcs: each running loop adds a processor, given back at
// Shutdown; a loop waiting in epoll_wait does not hold up the garbage
// collector's stop-the-world (it would wait for the loop's next sweep,
// up to 100 ms, were the wait not interrupted).
func TestLoopProcs(t *testing.T) {
	base := runtime.GOMAXPROCS(0)
	_, s := startFast(t, driver{name: "loop"}, nil, Config{})
	s.mu.Lock()
	loops := len(s.loops)
	s.mu.Unlock()
	if loops != base {
		t.Fatalf("%d loops for GOMAXPROCS %d", loops, base)
	}
	if got := runtime.GOMAXPROCS(0); got != base+loops {
		t.Fatalf("GOMAXPROCS %d with %d loops running; want %d", got, loops, base+loops)
	}

	time.Sleep(20 * time.Millisecond) // the loops are waiting
	var took []time.Duration
	for range 9 {
		began := time.Now()
		runtime.GC()
		took = append(took, time.Since(began))
	}
	slices.Sort(took)
	// Held up by a loop, a collection takes 100 ms or more (500 ms and
	// more were seen); on a quiet machine 1–2 ms, and up to ~30 ms when
	// other tests' builds take both cores.
	if took[4] > 50*time.Millisecond {
		t.Fatalf("a garbage collection took %s (median of 9: %v) while the loops waited", took[4], took)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); runtime.GOMAXPROCS(0) != base; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("GOMAXPROCS %d after Shutdown; want %d back", runtime.GOMAXPROCS(0), base)
		}
	}
}

// TestLoopProcsWithoutAsyncPreemption: with the runtime's asynchronous
// preemption off, nothing interrupts a loop's wait; the loops then wait
// a millisecond at most, and the collector still does not wait for them
// (TestLoopProcs again, in a child process with GODEBUG set).
func TestLoopProcsWithoutAsyncPreemption(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run", "^TestLoopProcs$", "-test.count", "1", "-test.v")
	cmd.Env = append(os.Environ(), "GODEBUG=asyncpreemptoff=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestLoopProcs ") {
		t.Fatalf("TestLoopProcs with GODEBUG=asyncpreemptoff=1: %v\n%s", err, out)
	}
}
