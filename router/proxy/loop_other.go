//go:build !linux

package proxy

import "net"

// loop is the event loop, on Linux only; elsewhere a goroutine serves
// each connection.
type loop struct{}

func (s *Server) startLoops(net.Listener, bool) (chan error, bool) { return nil, false }

func (s *Server) handIn(*conn) bool { return false }

func wrapTLS(c net.Conn) net.Conn { return c }

func holdLast(net.Conn) {}

func flushHeld(net.Conn) {}

func (s *Server) nudgeLoops() {}
