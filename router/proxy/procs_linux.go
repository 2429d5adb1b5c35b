//go:build linux

package proxy

// An event loop waits in epoll_wait on its own thread, holding its Go
// processor (P) meanwhile, as an nginx worker holds its process: the
// kernel wakes that thread when the loop's set has events. The wait is a
// raw system call, which the runtime does not see as one: it neither
// hands the processor to another thread (a thread switch per wake) nor
// lets the loop's events be found by another thread's poll.
//
// So that the loops do not take the processors the router's goroutines
// (TLS, HTTP/2, hand-overs, the route table) run on, each running loop
// adds one processor to GOMAXPROCS and gives it back when it returns.
// The runtime still stops a waiting loop when it must (the garbage
// collector's stop-the-world and stack scans, preemption after 10 ms):
// its signal interrupts epoll_wait (EINTR, never restarted), and the loop
// stops at its next function call.

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// loopProcs counts the running loops of every Server in the process and
// the GOMAXPROCS there was before the first.
var loopProcs struct {
	mu    sync.Mutex
	base  int
	loops int
}

// loopCount is how many loops a new Server starts: one per processor the
// process had before any loop added one.
func loopCount() int {
	loopProcs.mu.Lock()
	defer loopProcs.mu.Unlock()
	if loopProcs.loops > 0 {
		return loopProcs.base
	}
	return max(1, runtime.GOMAXPROCS(0))
}

// holdProcs adds n processors for n loops about to run.
func holdProcs(n int) {
	if n <= 0 {
		return
	}
	loopProcs.mu.Lock()
	defer loopProcs.mu.Unlock()
	if loopProcs.loops == 0 {
		loopProcs.base = runtime.GOMAXPROCS(0)
	}
	loopProcs.loops += n
	runtime.GOMAXPROCS(loopProcs.base + loopProcs.loops)
}

// releaseProcs gives back the processors of n loops that returned (or
// never ran).
func releaseProcs(n int) {
	if n <= 0 {
		return
	}
	loopProcs.mu.Lock()
	defer loopProcs.mu.Unlock()
	loopProcs.loops -= n
	runtime.GOMAXPROCS(loopProcs.base + loopProcs.loops)
}

// maxWait bounds a loop's wait. Without the runtime's asynchronous
// preemption (GODEBUG=asyncpreemptoff=1) nothing interrupts the wait to
// stop the loop, and the garbage collector would wait for the loop's
// next sweep: the loops then wake every millisecond.
var maxWait = func() time.Duration {
	if strings.Contains(os.Getenv("GODEBUG"), "asyncpreemptoff=1") {
		return time.Millisecond
	}
	return loopSweep
}()

// wait waits in epoll_wait until the loop's set has events or until
// (rounded up to the millisecond; at once if past; maxWait at most). An
// interrupted wait returns no events: the interruption is the runtime
// asking this goroutine to stop, which it does at its next function call
// (its stack check). A runtime.Gosched here would not do: rescheduled at
// once, the goroutine would lose the request, and the garbage collector,
// waiting for it to stop (to scan its stack), would spin and signal it
// again.
func (l *loop) wait(until time.Time) (int, error) {
	ms := max(int((min(time.Until(until), maxWait)+time.Millisecond-1)/time.Millisecond), 0)
	n, _, errno := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(l.ep), uintptr(unsafe.Pointer(&l.events[0])),
		uintptr(len(l.events)), uintptr(ms), 0, 0)
	switch errno {
	case 0:
		return int(n), nil
	case unix.EINTR:
		return 0, nil
	}
	return 0, fmt.Errorf("waiting for events: %w", errno)
}

// rawRead and rawWrite are read(2) and write(2) on a loop's non-blocking
// descriptors as raw system calls, as the loop's wait is: a system call
// through syscall.Syscall tells the runtime the goroutine may block,
// and the runtime's monitor, finding a loop's processor in one, woke
// every 20 µs to see whether to take the processor away (thousands of
// wake-ups a second under load, each a context switch on a shared
// core). A non-blocking descriptor's read or write never blocks.
func rawRead(fd int, p []byte) (int, error)  { return rawIO(unix.SYS_READ, fd, p) }
func rawWrite(fd int, p []byte) (int, error) { return rawIO(unix.SYS_WRITE, fd, p) }

// rawIO is read(2) or write(2) (trap) of p on fd as a raw system call.
func rawIO(trap uintptr, fd int, p []byte) (int, error) {
	var ptr unsafe.Pointer
	if len(p) > 0 {
		ptr = unsafe.Pointer(&p[0])
	}
	n, _, errno := unix.RawSyscall(trap, uintptr(fd), uintptr(ptr), uintptr(len(p)))
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}
