//go:build !linux

package proxy

import "syscall"

// listenControl sets nothing where TCP_DEFER_ACCEPT is not known.
func listenControl(string, string, syscall.RawConn) error { return nil }
