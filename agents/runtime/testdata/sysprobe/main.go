// Command sysprobe tries, from inside a container, the system calls the
// container's seccomp profile must refuse, and prints one "NAME result"
// line each: "allowed", or the errno name it failed with.
package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "child" {
		return
	}
	// unshare(2) of a user namespace needs a single-threaded caller: the
	// forked child, before it runs this program again.
	report("UNSHARE_USER", runChild(&syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWUSER}))
	report("CLONE_USER", runChild(&syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWUSER}))
	var params [120]byte // struct io_uring_params
	fd, _, errno := unix.Syscall(unix.SYS_IO_URING_SETUP, 1, uintptr(unsafe.Pointer(&params)), 0)
	if errno == 0 {
		unix.Close(int(fd))
		report("IO_URING_SETUP", nil)
	} else {
		report("IO_URING_SETUP", errno)
	}
	attr := unix.PerfEventAttr{Type: unix.PERF_TYPE_SOFTWARE, Config: unix.PERF_COUNT_SW_CPU_CLOCK,
		Bits: unix.PerfBitDisabled | unix.PerfBitExcludeKernel | unix.PerfBitExcludeHv}
	attr.Size = uint32(unsafe.Sizeof(attr))
	pfd, err := unix.PerfEventOpen(&attr, 0, -1, -1, unix.PERF_FLAG_FD_CLOEXEC)
	if err == nil {
		unix.Close(pfd)
	}
	report("PERF_EVENT_OPEN", err)
	fmt.Println("DONE")
}

// runChild runs this program again as "child" (which exits at once) in a
// process made with attr.
func runChild(attr *syscall.SysProcAttr) error {
	child := exec.Command("/proc/self/exe", "child")
	child.SysProcAttr = attr
	return child.Run()
}

func report(name string, err error) {
	var errno syscall.Errno
	switch {
	case err == nil:
		fmt.Println(name, "allowed")
	case errors.As(err, &errno):
		fmt.Println(name, unix.ErrnoName(errno))
	default:
		fmt.Println(name, "error:", err)
	}
}
