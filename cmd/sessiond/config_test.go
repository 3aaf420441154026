package main

import (
	"io"
	"strings"
	"testing"
)

func TestCookieSettingsStopTheStart(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"SESSIOND_COOKIE_SAMESITE": "none", "SESSIOND_COOKIE_SECURE": "false"}, "SESSIOND_COOKIE_SAMESITE: none needs SESSIOND_COOKIE_SECURE=true"},
		{map[string]string{"SESSIOND_COOKIE_SAMESITE": "loose"}, "SESSIOND_COOKIE_SAMESITE: want lax, strict or none"},
		{map[string]string{"SESSIOND_COOKIE_DOMAIN": "https://example.com"}, "SESSIOND_COOKIE_DOMAIN: want a host name"},
		{map[string]string{"SESSIOND_COOKIE_PATH": "auth"}, "SESSIOND_COOKIE_PATH: want a path starting with /"},
		{map[string]string{"SESSIOND_COOKIE_NAME": "a;b"}, "SESSIOND_COOKIE_NAME: want a cookie name"},
	} {
		_, _, err := parseConfig(nil, func(k string) string { return tc.env[k] }, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want it to say %q", tc.env, err, tc.want)
		}
	}
	env := map[string]string{"SESSIOND_COOKIE_DOMAIN": "example.com", "SESSIOND_COOKIE_PATH": "/auth", "SESSIOND_COOKIE_SAMESITE": "none"}
	c, _, err := parseConfig(nil, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.CookieDomain != "example.com" || c.CookiePath != "/auth" || c.CookieSameSite != "none" || !c.CookieSecure {
		t.Errorf("config %+v", c)
	}
	// Flags win over the environment.
	c, _, err = parseConfig([]string{"--cookie-samesite=strict"}, func(k string) string { return env[k] }, io.Discard)
	if err != nil || c.CookieSameSite != "strict" {
		t.Errorf("flag: %v %q", err, c.CookieSameSite)
	}
}

// TestStreamSettings: the per-session stream cap and the resume window
// default to 3 and 10,000, take a value from the environment, and refuse 0.
func TestStreamSettings(t *testing.T) {
	c, _, err := parseConfig(nil, func(string) string { return "" }, io.Discard)
	if err != nil || c.MaxStreamsPerSession != 3 || c.StreamResumeWindow != 10000 {
		t.Fatalf("defaults: %d, %d, %v; want 3, 10000", c.MaxStreamsPerSession, c.StreamResumeWindow, err)
	}
	env := map[string]string{"SESSIOND_MAX_STREAMS_PER_SESSION": "1", "SESSIOND_STREAM_RESUME_WINDOW": "500"}
	c, _, err = parseConfig(nil, func(k string) string { return env[k] }, io.Discard)
	if err != nil || c.MaxStreamsPerSession != 1 || c.StreamResumeWindow != 500 {
		t.Fatalf("set: %d, %d, %v; want 1, 500", c.MaxStreamsPerSession, c.StreamResumeWindow, err)
	}
	for _, name := range []string{"SESSIOND_MAX_STREAMS_PER_SESSION", "SESSIOND_STREAM_RESUME_WINDOW"} {
		env := map[string]string{name: "0"}
		if _, _, err := parseConfig(nil, func(k string) string { return env[k] }, io.Discard); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s=0: %v; want an error naming it", name, err)
		}
	}
}

func TestDirectDatabaseURLDefaultsToTheDatabaseURL(t *testing.T) {
	env := map[string]string{"SESSIOND_DATABASE_URL": "postgres://u:p@bouncer:6432/s?default_query_exec_mode=cache_describe"}
	c, _, err := parseConfig(nil, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.DirectDatabaseURL != env["SESSIOND_DATABASE_URL"] {
		t.Errorf("direct URL %q, want the database URL", c.DirectDatabaseURL)
	}
	env["SESSIOND_DIRECT_DATABASE_URL"] = "postgres://u:p@pg1:5432,pg2:5432/s?target_session_attrs=read-write"
	if c, _, err = parseConfig(nil, func(k string) string { return env[k] }, io.Discard); err != nil || c.DirectDatabaseURL != env["SESSIOND_DIRECT_DATABASE_URL"] {
		t.Errorf("direct URL %q %v, want %q", c.DirectDatabaseURL, err, env["SESSIOND_DIRECT_DATABASE_URL"])
	}
}
