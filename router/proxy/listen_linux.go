package proxy

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// deferAcceptSeconds is how long the kernel holds a connection whose
// client has sent nothing yet before it is accepted anyway (HTTP's and
// TLS's clients speak first; the kernel counts it in SYN-ACK
// retransmissions, so "1" is one, about 1–3 s, as libevent sets it). A
// silent client is then served as before: the idle and read-header
// timeouts end it.
const deferAcceptSeconds = 1

// listenControl sets TCP_DEFER_ACCEPT on a listening socket: the kernel
// queues a connection for accept only once its first bytes (a request
// head, a ClientHello) have arrived, so that accepting it and reading
// them is one wake-up of the router, not two (nginx's `listen …
// deferred`).
func listenControl(_, _ string, rc syscall.RawConn) error {
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_DEFER_ACCEPT, deferAcceptSeconds)
	}); err != nil {
		return err
	}
	return serr
}
