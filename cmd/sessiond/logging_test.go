package main

import (
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/sessiond/sessiond/api"
)

func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// TestLoggingSettings: SESSIOND_LOG_LEVEL, SESSIOND_ACCESS_LOG and
// SESSIOND_SLOW_REQUEST, their defaults, flags over variables, and bad
// values stopping the start with a message that names the setting.
func TestLoggingSettings(t *testing.T) {
	t.Run("defaults are what a high-traffic operator wants", func(t *testing.T) {
		c, _, err := parseConfig(nil, envOf(nil), io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if c.LogLevel != slog.LevelInfo || c.AccessLog != api.AccessLogErrors || c.SlowRequest != time.Second {
			t.Errorf("defaults: level %v, access log %v, slow %v; want info, errors, 1s", c.LogLevel, c.AccessLog, c.SlowRequest)
		}
	})
	for _, c := range []struct {
		name  string
		env   map[string]string
		args  []string
		level slog.Level
		mode  api.AccessLog
		slow  time.Duration
	}{
		{"variables", map[string]string{"SESSIOND_LOG_LEVEL": "debug", "SESSIOND_ACCESS_LOG": "all", "SESSIOND_SLOW_REQUEST": "250ms"}, nil, slog.LevelDebug, api.AccessLogAll, 250 * time.Millisecond},
		{"upper case", map[string]string{"SESSIOND_LOG_LEVEL": "WARN", "SESSIOND_ACCESS_LOG": "OFF"}, nil, slog.LevelWarn, api.AccessLogOff, time.Second},
		{"flags win over variables", map[string]string{"SESSIOND_LOG_LEVEL": "debug", "SESSIOND_ACCESS_LOG": "all"},
			[]string{"--log-level", "error", "--access-log", "off", "--slow-request", "2s"}, slog.LevelError, api.AccessLogOff, 2 * time.Second},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, _, err := parseConfig(c.args, envOf(c.env), io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			if got.LogLevel != c.level || got.AccessLog != c.mode || got.SlowRequest != c.slow {
				t.Errorf("got level %v, access log %v, slow %v; want %v, %v, %v", got.LogLevel, got.AccessLog, got.SlowRequest, c.level, c.mode, c.slow)
			}
		})
	}
	for _, c := range []struct{ env, value string }{
		{"SESSIOND_LOG_LEVEL", "verbose"},
		{"SESSIOND_LOG_LEVEL", "info+2"},
		{"SESSIOND_ACCESS_LOG", "some"},
		{"SESSIOND_ACCESS_LOG", "true"},
		{"SESSIOND_SLOW_REQUEST", "0"},
		{"SESSIOND_SLOW_REQUEST", "fast"},
	} {
		t.Run("bad "+c.env+"="+c.value, func(t *testing.T) {
			_, _, err := parseConfig(nil, envOf(map[string]string{c.env: c.value}), io.Discard)
			if err == nil || !strings.Contains(err.Error(), c.env+": ") || !strings.Contains(err.Error(), c.value) {
				t.Errorf("error %v, want one naming %s and quoting %q", err, c.env, c.value)
			}
		})
	}
}
