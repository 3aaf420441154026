package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/sessiond/sessiond/api"
	"github.com/sessiond/sessiond/internal/events"
	"github.com/sessiond/sessiond/internal/sessions"
)

// config is every setting of sessiond. Each comes from a flag, else its
// environment variable, else its default, and is checked at start-up: a bad
// one stops the process with a message that names it.
type config struct {
	DatabaseURL            string
	DirectDatabaseURL      string
	Addr                   string
	APIKeys                []string
	Mode                   sessions.Mode
	MaxSessionsPerUser     int
	SessionLifetime        time.Duration
	InactivityTimeout      time.Duration
	Retention              time.Duration
	AllowedRedirectOrigins []string
	CORSOrigins            []string
	CookieName             string
	CookieSecure           bool
	CookieDomain           string
	CookiePath             string
	CookieSameSite         string
	AutoMigrate            bool
	RequestTimeout         time.Duration
	ShutdownTimeout        time.Duration
	SweepInterval          time.Duration
	DBMaxConns             int
	PprofAddr              string
	LogLevel               slog.Level
	AccessLog              api.AccessLog
	SlowRequest            time.Duration
	MaxStreams             int
	MaxStreamsPerSession   int
	StreamResumeWindow     int
	WebhookURLs            []string
	WebhookSecret          string
	WebhookRetryFor        time.Duration
	WebhookTimeout         time.Duration
	WebhookBackoffMin      time.Duration
	WebhookBackoffMax      time.Duration
	WebhookLeaseRetry      time.Duration
}

// setting is one row of the settings table: flag name, variable, default.
type setting struct {
	flag, env, def, usage string
	value                 *string
}

func settings() []*setting {
	return []*setting{
		{"database-url", "SESSIOND_DATABASE_URL", "postgres://postgres:postgres@localhost:5432/sessiond?sslmode=disable", "Postgres URL; several hosts with target_session_attrs=read-write follow a failover (see docs/operations.md, Production)", nil},
		{"direct-database-url", "SESSIOND_DIRECT_DATABASE_URL", "", "Postgres URL for migrations, the events LISTEN and the webhook leases when SESSIOND_DATABASE_URL is a PgBouncer in transaction mode; empty: SESSIOND_DATABASE_URL", nil},
		{"addr", "SESSIOND_ADDR", ":8080", "address to listen on", nil},
		{"api-keys", "SESSIOND_API_KEYS", "", "comma-separated backend API keys (sk_...); none: backend endpoints answer 401", nil},
		{"session-mode", "SESSIOND_SESSION_MODE", "single", "single or multi", nil},
		{"max-sessions-per-user", "SESSIOND_MAX_SESSIONS_PER_USER", "0", "active sessions per user; 0: no limit", nil},
		{"session-lifetime", "SESSIOND_SESSION_LIFETIME", "168h", "how long a session lasts from its creation", nil},
		{"inactivity-timeout", "SESSIOND_INACTIVITY_TIMEOUT", "0", "how long a session lasts from its last activity; 0: off", nil},
		{"retention", "SESSIOND_RETENTION", "720h", "how long ended sessions are kept before the sweeper deletes them", nil},
		{"allowed-redirect-origins", "SESSIOND_ALLOWED_REDIRECT_ORIGINS", "", "comma-separated origins an absolute redirect_url may point to", nil},
		{"cors-origins", "SESSIOND_CORS_ORIGINS", "", "comma-separated origins allowed to call with credentials (CORS)", nil},
		{"cookie-name", "SESSIOND_COOKIE_NAME", "__session", "name of the session cookie", nil},
		{"cookie-secure", "SESSIOND_COOKIE_SECURE", "true", "mark every session cookie Secure (browsers then send it over https only, or to localhost)", nil},
		{"cookie-domain", "SESSIOND_COOKIE_DOMAIN", "", "Domain of every session cookie, e.g. example.com for sessiond on auth.example.com beside app.example.com; empty: host-only", nil},
		{"cookie-path", "SESSIOND_COOKIE_PATH", "/", "Path of every session cookie", nil},
		{"cookie-samesite", "SESSIOND_COOKIE_SAMESITE", "lax", "SameSite of every session cookie: lax, strict or none (none needs SESSIOND_COOKIE_SECURE=true)", nil},
		{"auto-migrate", "SESSIOND_AUTO_MIGRATE", "true", "run migrations at start (under golang-migrate's lock)", nil},
		{"request-timeout", "SESSIOND_REQUEST_TIMEOUT", "5s", "bound on one request's work, database included; past it the answer is 503", nil},
		{"shutdown-timeout", "SESSIOND_SHUTDOWN_TIMEOUT", "15s", "grace period for in-flight requests after SIGTERM", nil},
		{"sweep-interval", "SESSIOND_SWEEP_INTERVAL", "1m", "how often the sweeper records expiry and deletes old sessions; 0: never", nil},
		{"db-max-conns", "SESSIOND_DB_MAX_CONNS", "0", "database pool size; 0: pgx's default (4 per CPU, at least 4)", nil},
		{"pprof-addr", "SESSIOND_PPROF_ADDR", "", "serve net/http/pprof on this separate address (e.g. 127.0.0.1:6060); empty: off", nil},
		{"log-level", "SESSIOND_LOG_LEVEL", "info", "level of sessiond's own log lines: debug, info, warn or error (the access log has its own setting)", nil},
		{"access-log", "SESSIOND_ACCESS_LOG", "errors", "which requests get an access-log line: all, errors (4xx, 5xx and slow requests) or off", nil},
		{"slow-request", "SESSIOND_SLOW_REQUEST", "1s", "a request taking this long or longer is slow: logged with SESSIOND_ACCESS_LOG=errors", nil},
		{"max-streams", "SESSIOND_MAX_STREAMS", "10000", "open GET /session/events streams per replica; over it 503 with Retry-After", nil},
		{"max-streams-per-session", "SESSIOND_MAX_STREAMS_PER_SESSION", "3", "open GET /session/events streams of one session per replica; over it 503 with Retry-After", nil},
		{"stream-resume-window", "SESSIOND_STREAM_RESUME_WINDOW", "10000", "how many event numbers back a stream may resume with Last-Event-ID; older positions start from now", nil},
		{"webhook-urls", "SESSIOND_WEBHOOK_URLS", "", "comma-separated URLs that receive every session event (Standard Webhooks)", nil},
		{"webhook-secret", "SESSIOND_WEBHOOK_SECRET", "", "whsec_... secret the webhooks are signed with; required with SESSIOND_WEBHOOK_URLS", nil},
		{"webhook-retry-for", "SESSIOND_WEBHOOK_RETRY_FOR", "24h", "how long an event is retried; older ones are dropped, logged and counted", nil},
		{"webhook-timeout", "SESSIOND_WEBHOOK_TIMEOUT", "10s", "bound on one webhook delivery attempt", nil},
		{"webhook-backoff-min", "SESSIOND_WEBHOOK_BACKOFF_MIN", "1s", "first wait after a failed delivery; it doubles, with jitter", nil},
		{"webhook-backoff-max", "SESSIOND_WEBHOOK_BACKOFF_MAX", "10m", "longest wait between delivery attempts", nil},
		{"webhook-lease-retry", "SESSIOND_WEBHOOK_LEASE_RETRY", "5s", "how often a replica tries to take over a URL another replica delivers to", nil},
	}
}

// parseConfig reads flags from args and variables through getenv, and
// returns the config and the arguments left after the flags.
func parseConfig(args []string, getenv func(string) string, usageOut io.Writer) (config, []string, error) {
	fs := flag.NewFlagSet("sessiond", flag.ContinueOnError)
	fs.SetOutput(usageOut)
	table := settings()
	for _, s := range table {
		// The flag's default is the documented one, never the
		// environment's value: --help must not print an API key.
		s.value = fs.String(s.flag, s.def, fmt.Sprintf("%s (env %s)", s.usage, s.env))
	}
	fs.Usage = func() {
		fmt.Fprint(usageOut, `Usage: sessiond [command] [flags]

Commands:
  serve               run the HTTP service (the default)
  migrate up          apply every migration
  migrate down N      roll back N migrations
  migrate version     print the schema version
  healthcheck         exit 0 when /readyz answers 200 (for a container HEALTHCHECK)
  version             print the version

Settings (flag, or environment variable):
`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return config{}, nil, err
	}
	setByFlag := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { setByFlag[f.Name] = true })
	for _, s := range table {
		if v := getenv(s.env); v != "" && !setByFlag[s.flag] {
			*s.value = v
		}
	}
	get := func(env string) string {
		for _, s := range table {
			if s.env == env {
				return *s.value
			}
		}
		panic("unknown setting " + env)
	}

	var c config
	var errs []string
	bad := func(env, format string, a ...any) { errs = append(errs, env+": "+fmt.Sprintf(format, a...)) }
	duration := func(env string, positive bool) time.Duration {
		d, err := time.ParseDuration(get(env))
		if err != nil || d < 0 || (positive && d == 0) {
			bad(env, "want a duration like 168h or 30m (got %q)", get(env))
		}
		return d
	}
	boolean := func(env string) bool {
		b, err := strconv.ParseBool(get(env))
		if err != nil {
			bad(env, "want true or false (got %q)", get(env))
		}
		return b
	}
	number := func(env string) int {
		n, err := strconv.Atoi(get(env))
		if err != nil || n < 0 {
			bad(env, "want a whole number, 0 or more (got %q)", get(env))
		}
		return n
	}

	c.DatabaseURL = get("SESSIOND_DATABASE_URL")
	c.DirectDatabaseURL = get("SESSIOND_DIRECT_DATABASE_URL")
	if c.DirectDatabaseURL == "" {
		c.DirectDatabaseURL = c.DatabaseURL
	}
	c.Addr = get("SESSIOND_ADDR")
	c.APIKeys = list(get("SESSIOND_API_KEYS"))
	switch m := sessions.Mode(get("SESSIOND_SESSION_MODE")); m {
	case sessions.ModeSingle, sessions.ModeMulti:
		c.Mode = m
	default:
		bad("SESSIOND_SESSION_MODE", "want single or multi (got %q)", m)
	}
	c.MaxSessionsPerUser = number("SESSIOND_MAX_SESSIONS_PER_USER")
	c.SessionLifetime = duration("SESSIOND_SESSION_LIFETIME", true)
	c.InactivityTimeout = duration("SESSIOND_INACTIVITY_TIMEOUT", false)
	c.Retention = duration("SESSIOND_RETENTION", false)
	for _, o := range list(get("SESSIOND_ALLOWED_REDIRECT_ORIGINS")) {
		origin, err := sessions.ParseOrigin(o)
		if err != nil {
			bad("SESSIOND_ALLOWED_REDIRECT_ORIGINS", "%v", err)
		}
		c.AllowedRedirectOrigins = append(c.AllowedRedirectOrigins, origin)
	}
	for _, o := range list(get("SESSIOND_CORS_ORIGINS")) {
		origin, err := sessions.ParseOrigin(o)
		if err != nil {
			bad("SESSIOND_CORS_ORIGINS", "%v", err)
		}
		c.CORSOrigins = append(c.CORSOrigins, origin)
	}
	c.CookieName = get("SESSIOND_COOKIE_NAME")
	c.CookieSecure = boolean("SESSIOND_COOKIE_SECURE")
	c.CookieDomain = get("SESSIOND_COOKIE_DOMAIN")
	c.CookiePath = get("SESSIOND_COOKIE_PATH")
	c.CookieSameSite = get("SESSIOND_COOKIE_SAMESITE")
	// The same check api.New makes, so a bad cookie setting is reported
	// with the others; each message names its setting.
	if err := api.CheckCookieSettings(api.CookieSettings{Name: c.CookieName, Domain: c.CookieDomain,
		Path: c.CookiePath, SameSite: c.CookieSameSite, Secure: c.CookieSecure}); err != nil {
		errs = append(errs, err.Error())
	}
	c.AutoMigrate = boolean("SESSIOND_AUTO_MIGRATE")
	c.RequestTimeout = duration("SESSIOND_REQUEST_TIMEOUT", true)
	c.ShutdownTimeout = duration("SESSIOND_SHUTDOWN_TIMEOUT", false)
	c.SweepInterval = duration("SESSIOND_SWEEP_INTERVAL", false)
	c.DBMaxConns = number("SESSIOND_DB_MAX_CONNS")
	c.PprofAddr = get("SESSIOND_PPROF_ADDR")
	if err := c.LogLevel.UnmarshalText([]byte(get("SESSIOND_LOG_LEVEL"))); err != nil || !knownLevel(get("SESSIOND_LOG_LEVEL")) {
		bad("SESSIOND_LOG_LEVEL", "want debug, info, warn or error (got %q)", get("SESSIOND_LOG_LEVEL"))
	}
	switch v := strings.ToLower(get("SESSIOND_ACCESS_LOG")); v {
	case "all":
		c.AccessLog = api.AccessLogAll
	case "errors":
		c.AccessLog = api.AccessLogErrors
	case "off":
		c.AccessLog = api.AccessLogOff
	default:
		bad("SESSIOND_ACCESS_LOG", "want all, errors or off (got %q)", get("SESSIOND_ACCESS_LOG"))
	}
	c.SlowRequest = duration("SESSIOND_SLOW_REQUEST", true)
	c.MaxStreams = number("SESSIOND_MAX_STREAMS")
	if c.MaxStreams == 0 {
		bad("SESSIOND_MAX_STREAMS", "want 1 or more")
	}
	c.MaxStreamsPerSession = number("SESSIOND_MAX_STREAMS_PER_SESSION")
	if c.MaxStreamsPerSession == 0 {
		bad("SESSIOND_MAX_STREAMS_PER_SESSION", "want 1 or more")
	}
	c.StreamResumeWindow = number("SESSIOND_STREAM_RESUME_WINDOW")
	if c.StreamResumeWindow == 0 {
		bad("SESSIOND_STREAM_RESUME_WINDOW", "want 1 or more")
	}
	c.WebhookURLs = list(get("SESSIOND_WEBHOOK_URLS"))
	for _, u := range c.WebhookURLs {
		if err := events.CheckWebhookURL(u); err != nil {
			bad("SESSIOND_WEBHOOK_URLS", "%v", err)
		}
	}
	c.WebhookSecret = get("SESSIOND_WEBHOOK_SECRET")
	if len(c.WebhookURLs) > 0 || c.WebhookSecret != "" {
		if err := events.CheckWebhookSecret(c.WebhookSecret); err != nil {
			bad("SESSIOND_WEBHOOK_SECRET", "%v", err)
		}
	}
	c.WebhookRetryFor = duration("SESSIOND_WEBHOOK_RETRY_FOR", true)
	c.WebhookTimeout = duration("SESSIOND_WEBHOOK_TIMEOUT", true)
	c.WebhookBackoffMin = duration("SESSIOND_WEBHOOK_BACKOFF_MIN", true)
	c.WebhookBackoffMax = duration("SESSIOND_WEBHOOK_BACKOFF_MAX", true)
	c.WebhookLeaseRetry = duration("SESSIOND_WEBHOOK_LEASE_RETRY", true)
	if len(errs) > 0 {
		return config{}, nil, fmt.Errorf("bad settings:\n  %s", strings.Join(errs, "\n  "))
	}
	return c, fs.Args(), nil
}

// knownLevel reports whether s names one of the four levels; slog also
// takes offsets such as "info+2", which the setting does not promise.
func knownLevel(s string) bool {
	switch strings.ToLower(s) {
	case "debug", "info", "warn", "error":
		return true
	}
	return false
}

func list(s string) []string {
	var out []string
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}
