// Package faults tests how sessiond holds up when things go wrong around
// it: the database going away and coming back, and the process being told
// to stop while it serves.
package faults

import (
	"log/slog"
	"testing"

	"github.com/sessiond/sessiond/internal/pgtest"
)

func TestMain(m *testing.M) {
	// The outage test makes the in-process service log thousands of
	// "request failed" lines on purpose; the answers are what it checks.
	slog.SetDefault(slog.New(slog.DiscardHandler))
	pgtest.Main(m)
}

// apiKey is the backend key of every sessiond these tests start.
const apiKey = "sk_faults_0123456789abcdef"
