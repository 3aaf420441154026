//go:build !linux

package db

import "syscall"

// setUserTimeout does nothing where TCP_USER_TIMEOUT does not exist; the
// keepalives still notice a vanished peer.
func setUserTimeout(string, string, syscall.RawConn) error { return nil }
