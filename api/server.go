// Package api is sessiond's HTTP transport: routes, authentication,
// request and response types, and problem+json errors. It calls the
// sessions service and knows nothing of the database.
package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gin-contrib/cors"
	"github.com/gin-gonic/gin"
	"github.com/klauspost/compress/gzhttp"
	"github.com/klauspost/compress/gzip"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sessiond/sessiond/internal/events"
	"github.com/sessiond/sessiond/internal/sessions"
)

// Config is what the transport needs besides the service.
type Config struct {
	APIKeys []string // sk_... keys of backends
	// The attributes of every cookie sessiond sets or clears (see
	// CookieSettings): name (default __session), Secure, Domain (default
	// none: host-only), Path (default /) and SameSite (lax, strict or
	// none; default lax).
	CookieName     string
	CookieSecure   bool
	CookieDomain   string
	CookiePath     string
	CookieSameSite string
	CORSOrigins    []string
	// MaxBodyBytes bounds request bodies; larger ones are 413.
	MaxBodyBytes int64
	// RequestTimeout bounds the work of one request, database included;
	// a database that does not answer in time makes it a 503.
	RequestTimeout time.Duration
	// Ready reports whether the service can serve (the database answers).
	Ready func(context.Context) error
	// ReadyTimeout bounds Ready; 0 means 800 ms.
	ReadyTimeout time.Duration
	// OpenAPI is the document served at /openapi.yaml.
	OpenAPI []byte
	// Registry receives the HTTP metrics and is served at /metrics.
	Registry *prometheus.Registry
	// Logger receives sessiond's own lines (errors of requests, panics);
	// AccessLogger the access log (nil: Logger).
	Logger       *slog.Logger
	AccessLogger *slog.Logger
	// AccessLog says which requests get an access-log line; the zero
	// value logs every request. Request IDs and metrics do not depend on
	// it.
	AccessLog AccessLog
	// SlowRequest is how long a request must take to count as slow for
	// AccessLogErrors; 0 means DefaultSlowRequest.
	SlowRequest time.Duration
	// Events serves GET /session/events; nil: it answers 503.
	Events *events.Hub
}

// AccessLog says which requests the access log records.
type AccessLog int

const (
	// AccessLogAll records every request (the zero value).
	AccessLogAll AccessLog = iota
	// AccessLogErrors records answers of 400 and above (499 included)
	// and requests that took SlowRequest or longer.
	AccessLogErrors
	// AccessLogOff records none.
	AccessLogOff
)

// DefaultSlowRequest is the slow-request threshold of AccessLogErrors:
// well above the p99 of every endpoint (sign-out everywhere of 10,000
// sessions takes about 250 ms), a fifth of the default request timeout.
const DefaultSlowRequest = time.Second

// StatusClientClosedRequest is the status a request gets in the access log
// and the metrics when its client went away before the answer (nginx's
// 499). It is never an error of ours, and no one receives it.
const StatusClientClosedRequest = 499

// New returns the HTTP handler of sessiond.
func New(svc *sessions.Service, cfg Config) (http.Handler, error) {
	keys, err := parseAPIKeys(cfg.APIKeys)
	if err != nil {
		return nil, err
	}
	jar, err := newCookies(CookieSettings{Name: cfg.CookieName, Domain: cfg.CookieDomain, Path: cfg.CookiePath,
		SameSite: cfg.CookieSameSite, Secure: cfg.CookieSecure})
	if err != nil {
		return nil, err
	}
	cfg.CookieName = jar.Name
	if cfg.ReadyTimeout == 0 {
		cfg.ReadyTimeout = defaultReadyTimeout
	}
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = 64 << 10
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.AccessLogger == nil {
		cfg.AccessLogger = cfg.Logger
	}
	if cfg.SlowRequest == 0 {
		cfg.SlowRequest = DefaultSlowRequest
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	h := &handlers{svc: svc, keys: keys, cfg: cfg, cookies: jar}

	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	// Route user IDs may hold any printable character, "/" included when
	// escaped as %2F: the router always matches the escaped path
	// (url.URL.EscapedPath: the client's own escaping where it is a valid
	// one), so a "%2F" never splits a segment, and decodePathParams decodes
	// each parameter once, as a path segment (Gin's own unescaping would
	// read "+" as a space).
	r.UseEscapedPath = true
	r.UnescapePathValues = false
	r.HandleMethodNotAllowed = true
	// A path with a stray trailing slash is an unknown route (404
	// not_found), not a redirect that bypasses the middleware and its
	// no-store header.
	r.RedirectTrailingSlash = false
	r.ContextWithFallback = true

	m := newMetrics(cfg.Registry)
	r.Use(withRequestID, observe(cfg, m), recoverProblem, secureHeaders, limits(cfg), strictQuery)
	if len(cfg.CORSOrigins) > 0 {
		r.Use(onlyForOrigins(cfg.CORSOrigins, cors.New(cors.Config{
			AllowOrigins:     cfg.CORSOrigins,
			AllowMethods:     []string{http.MethodGet, http.MethodPost, http.MethodDelete},
			AllowHeaders:     []string{"Authorization", "Content-Type", "X-Request-ID", "Last-Event-ID"},
			ExposeHeaders:    []string{"X-Request-ID"},
			AllowCredentials: true,
			MaxAge:           10 * time.Minute,
		})))
	}
	r.NoRoute(func(c *gin.Context) { writeError(c, sessions.Errorf(codeNotFound, "No such endpoint.")) })
	r.NoMethod(func(c *gin.Context) {
		// The answer names the method only if it is a known one: a client
		// may send a 30 KB token as its method.
		method := knownMethod(c.Request.Method)
		if method == "other" {
			method = "this method"
		}
		writeError(c, sessions.Errorf(codeMethodNotAllowed, "This endpoint does not answer %s.", method))
	})

	r.Match(getAndHead, "/healthz", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok"}) })
	r.Match(getAndHead, "/readyz", func(c *gin.Context) {
		if cfg.Ready != nil {
			// Answer within a probe's usual 1 s budget even when the
			// database hangs instead of refusing.
			ctx, cancel := context.WithTimeout(c.Request.Context(), cfg.ReadyTimeout)
			defer cancel()
			if err := cfg.Ready(ctx); err != nil {
				writeError(c, err)
				return
			}
		}
		c.JSON(http.StatusOK, gin.H{"status": "ok"})
	})
	r.Match(getAndHead, "/metrics", gin.WrapH(promhttp.HandlerFor(cfg.Registry, promhttp.HandlerOpts{})))
	r.Match(getAndHead, "/openapi.yaml", func(c *gin.Context) { c.Data(http.StatusOK, "application/yaml", cfg.OpenAPI) })

	// Each API route names the query parameters it takes (queryParams),
	// then decodes its path (decodePathParams) and authenticates (auth;
	// nil for a handler that authenticates itself).
	routeWith := func(auth gin.HandlerFunc, methods []string, path string, params []string, handler gin.HandlerFunc) {
		chain := []gin.HandlerFunc{queryParams(params...), decodePathParams}
		if !slices.Contains(methods, http.MethodPost) {
			chain = append(chain, noBody)
		}
		if auth != nil {
			chain = append(chain, auth)
		}
		r.Match(methods, path, append(chain, handler)...)
	}
	route := func(methods []string, path string, params []string, handler gin.HandlerFunc) {
		routeWith(h.authenticate, methods, path, params, handler)
	}
	post, del := []string{http.MethodPost}, []string{http.MethodDelete}
	ending := []string{"redirect_url"}
	listing := []string{"status", "limit", "cursor"}
	route(post, "/sessions", nil, h.signIn)
	route(getAndHead, "/session", nil, h.whoAmI)
	// DELETE /session authenticates in its handler (sessions.Service.SignOut).
	routeWith(nil, del, "/session", []string{"session_id", "redirect_url"}, h.signOut)
	route(getAndHead, "/sessions/:id", nil, h.getSession)
	route(del, "/sessions/:id", ending, h.endSession)
	route(getAndHead, "/users/:id/sessions", listing, h.listUserSessions)
	route(del, "/users/:id/sessions", []string{"except", "redirect_url"}, h.endUserSessions)
	route(getAndHead, "/clients/:id/sessions", listing, h.listClientSessions)
	route(del, "/clients/:id/sessions", ending, h.endClientSessions)
	// POST /session/active is authenticated by the account cookie it
	// names, not by the active cookie (which may be the one that died).
	r.Handle(http.MethodPost, "/session/active", queryParams(), h.switchActive)
	route([]string{http.MethodGet}, eventsRoute, nil, h.streamEvents)
	return closeAfterChunked(compressLarge(r)), nil
}

// getAndHead registers a GET route for HEAD too (RFC 9110 §9.3.2: the
// same status and headers, no body). Gin does not answer HEAD for a GET
// route by itself; net/http's server drops the body a handler writes to a
// HEAD request and still sends the GET's Content-Length, so one handler
// serves both.
var getAndHead = []string{http.MethodGet, http.MethodHead}

// gzipMinSize is the smallest answer compressed for a client that accepts
// gzip. The hot paths' answers (one session, about 400 bytes; a sign-in)
// stay well under it and are never compressed; a list of a few dozen
// sessions or a sign-out everywhere's 10,000 (4.2 MB in make bench) is.
const gzipMinSize = 8 << 10

// compressLarge gzips answers of gzipMinSize or more when the client sends
// Accept-Encoding: gzip (klauspost/compress's gzhttp, at its fastest
// level: the answers are generated per request, and the time spent
// compressing 4 MB, about 10 ms, should be small next to the request's own). A
// request that does not accept gzip (backends calling GET /session, as a
// rule) skips gzhttp, which would still wrap its writer, and gets only the
// Vary header.
func compressLarge(h http.Handler) http.Handler {
	gz := gzipLarge(h)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.Contains(strings.ToLower(r.Header.Get("Accept-Encoding")), "gzip") {
			w.Header()["Vary"] = varyAcceptEncoding
			h.ServeHTTP(w, r)
			return
		}
		gz(w, r)
	})
}

var gzipLarge = func() func(http.Handler) http.HandlerFunc {
	wrap, err := gzhttp.NewWrapper(
		gzhttp.MinSize(gzipMinSize),
		gzhttp.CompressionLevel(gzip.BestSpeed),
		gzhttp.EnableZstd(false),
	)
	if err != nil {
		panic(err) // the options above are constants
	}
	return wrap
}()

const requestIDHeader = "X-Request-ID"

// defaultReadyTimeout bounds the database check of /readyz so it answers
// within a probe's usual 1 s budget.
const defaultReadyTimeout = 800 * time.Millisecond

var validRequestID = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)

// withRequestID keeps a caller's well-formed X-Request-ID, or makes one,
// and echoes it.
func withRequestID(c *gin.Context) {
	var id string
	if v := c.Request.Header[canonicalRequestID]; len(v) > 0 { // Header.Get, without canonicalizing the name
		id = v[0]
	}
	if !validRequestID.MatchString(id) {
		var b [12]byte
		_, _ = rand.Read(b[:])
		id = hex.EncodeToString(b[:])
	}
	c.Writer.Header()[canonicalRequestID] = []string{id}
	c.Next()
}

// canonicalRequestID is requestIDHeader as net/http stores it
// (textproto.CanonicalMIMEHeaderKey), so neither setting nor reading it
// canonicalizes the name again.
const canonicalRequestID = "X-Request-Id"

// requestID is the request's ID, as withRequestID put it in the answer's
// headers.
func requestID(c *gin.Context) string {
	if v := c.Writer.Header()[canonicalRequestID]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// observe records every request in the metrics and, as cfg.AccessLog
// says, in the access log: one line per request, never a header, a query
// string or a body, so no token or key can reach the log.
func observe(cfg Config, m *metrics) gin.HandlerFunc {
	logger, mode, slow := cfg.AccessLogger, cfg.AccessLog, cfg.SlowRequest
	return func(c *gin.Context) {
		start := time.Now()
		c.Next()
		took := time.Since(start)
		route := routeOf(c)
		status := c.Writer.Status()
		method := knownMethod(c.Request.Method)
		m.observe(method, route, status, took)
		if cause, ok := c.Get(unavailableCauseKey); ok {
			m.unavailable.WithLabelValues(cause.(string)).Inc()
		}
		if mode == AccessLogOff || (mode == AccessLogErrors && status < 400 && took < slow) {
			return
		}
		logger.LogAttrs(c.Request.Context(), slog.LevelInfo, "request",
			slog.String("request_id", requestID(c)),
			slog.String("method", method),
			slog.String("route", route),
			slog.Int("status", status),
			slog.Duration("duration", took),
		)
	}
}

// onlyForOrigins runs the CORS middleware for requests from the allowed
// origins only. gin-contrib/cors answers any other origin with a bare 403
// that is not problem+json (and not in openapi.yaml); such a request is
// instead served as if CORS were off: no Access-Control-* headers, so a
// browser keeps the answer from the page and fails the preflight.
func onlyForOrigins(origins []string, corsMiddleware gin.HandlerFunc) gin.HandlerFunc {
	allowed := make(map[string]bool, len(origins))
	for _, o := range origins {
		allowed[strings.ToLower(strings.TrimSpace(o))] = true
	}
	return func(c *gin.Context) {
		if allowed[c.GetHeader("Origin")] {
			corsMiddleware(c)
		}
	}
}

// recoverProblem turns a panic into a logged 500 problem.
func recoverProblem(c *gin.Context) {
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			slog.ErrorContext(c.Request.Context(), "panic", "request_id", requestID(c), "panic", v)
			writeError(c, sessions.Errorf(sessions.CodeInternal, "Something went wrong on our side; it has been logged."))
		}
	}()
	c.Next()
}

// secureHeaders: answers carry sessions and must never be cached or
// sniffed.
func secureHeaders(c *gin.Context) {
	h := c.Writer.Header()
	h["Cache-Control"] = noStore
	h["X-Content-Type-Options"] = noSniff
	c.Next()
}

// The values of the headers every answer carries, shared by all answers
// instead of allocated for each: net/http only reads them, and each slice
// is full (len == cap), so a later Add copies it and a Set replaces it.
var (
	noStore            = []string{"no-store"}
	noSniff            = []string{"nosniff"}
	varyAcceptEncoding = []string{"Accept-Encoding"}
)

// limits bounds the body and the time of each request.
func limits(cfg Config) gin.HandlerFunc {
	return func(c *gin.Context) {
		if c.Request.Body != http.NoBody { // net/http's body of a request without one
			c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, cfg.MaxBodyBytes)
		}
		c.Set(unboundedCtxKey, c.Request.Context()) // for event streams
		if cfg.RequestTimeout > 0 {
			ctx, cancel := context.WithTimeout(c.Request.Context(), cfg.RequestTimeout)
			defer cancel()
			c.Request = c.Request.WithContext(ctx)
		}
		c.Next()
	}
}

type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	// unavailable counts 503 answers by cause, so a request that ran out
	// of time is told apart from a database out of reach.
	unavailable *prometheus.CounterVec
	// series caches the counter and histogram of each method, route and
	// status seen, so a request does not hash and check its labels
	// through the vectors again (a third of the metrics' CPU per request).
	// A map under a read lock rather than a sync.Map, whose any-typed key
	// would allocate a copy of seriesKey on every request.
	mu     sync.RWMutex
	series map[seriesKey]*series
}

type seriesKey struct {
	method, route string
	status        int
}

type series struct {
	requests prometheus.Counter
	duration prometheus.Observer
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sessiond_http_requests_total",
			Help: "HTTP requests answered, by method, route and status.",
		}, []string{"method", "route", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sessiond_http_request_duration_seconds",
			Help:    "Time to answer HTTP requests, by method and route.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"method", "route"}),
		unavailable: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sessiond_http_unavailable_total",
			Help: "503 unavailable answers by cause: deadline (the request ran out of time), database (out of reach), other (e.g. a replica at SESSIOND_MAX_STREAMS).",
		}, []string{"cause"}),
		series: map[seriesKey]*series{},
	}
	for _, cause := range []string{causeDeadline, causeDatabase, causeOther} {
		m.unavailable.WithLabelValues(cause) // shown at 0 from the start
	}
	reg.MustRegister(m.requests, m.duration, m.unavailable)
	return m
}

// observe counts one answered request. The set of series is bounded
// because each label is: routes are patterns (or "unmatched"), methods
// are passed through knownMethod (net/http itself accepts any token as a
// method, so the raw method would make a series per distinct name),
// statuses are three digits.
func (m *metrics) observe(method, route string, status int, took time.Duration) {
	k := seriesKey{method, route, status}
	m.mu.RLock()
	s := m.series[k]
	m.mu.RUnlock()
	if s == nil {
		m.mu.Lock()
		if s = m.series[k]; s == nil {
			s = &series{
				requests: m.requests.WithLabelValues(method, route, strconv.Itoa(status)),
				duration: m.duration.WithLabelValues(method, route),
			}
			m.series[k] = s
		}
		m.mu.Unlock()
	}
	s.requests.Inc()
	s.duration.Observe(took.Seconds())
}

// knownMethod is method if it is one of RFC 9110's methods (or PATCH),
// and "other" for anything else: the method of a request is chosen by the
// client, and a metric label or a log field that took it as it came would
// let anyone add series for ever or write lines of any length
// (promhttp's sanitizeMethod does the same).
func knownMethod(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodConnect, http.MethodOptions, http.MethodTrace:
		return method
	}
	return "other"
}

// routeOf is the route pattern that served c ("/sessions/:id"), never the
// raw path, so logs and metric labels hold no IDs; "unmatched" otherwise.
func routeOf(c *gin.Context) string {
	if route := c.FullPath(); route != "" {
		return route
	}
	return "unmatched"
}
