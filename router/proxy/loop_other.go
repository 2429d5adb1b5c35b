//go:build !linux

package proxy

import "net"

// loop is the event loop, on Linux only; elsewhere a goroutine serves
// each connection.
type loop struct{}

func (s *Server) startLoops(net.Listener) (chan error, bool) { return nil, false }

func (s *Server) nudgeLoops() {}
