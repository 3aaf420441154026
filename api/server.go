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
	"strconv"
	"strings"
	"time"

	"github.com/gin-contrib/cors"
	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sessiond/sessiond/internal/events"
	"github.com/sessiond/sessiond/internal/sessions"
)

// Config is what the transport needs besides the service.
type Config struct {
	APIKeys      []string // sk_... keys of backends
	CookieName   string
	CookieSecure bool
	CORSOrigins  []string
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
	Logger   *slog.Logger
	// Events serves GET /session/events; nil: it answers 503.
	Events *events.Hub
}

// New returns the HTTP handler of sessiond.
func New(svc *sessions.Service, cfg Config) (http.Handler, error) {
	keys, err := parseAPIKeys(cfg.APIKeys)
	if err != nil {
		return nil, err
	}
	if cfg.CookieName == "" {
		cfg.CookieName = "__session"
	}
	if cfg.ReadyTimeout == 0 {
		cfg.ReadyTimeout = defaultReadyTimeout
	}
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = 64 << 10
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	h := &handlers{svc: svc, keys: keys, cfg: cfg}

	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	// Route user IDs may hold any printable character, "/" included when
	// escaped as %2F.
	r.UseRawPath = true
	r.UnescapePathValues = true
	r.HandleMethodNotAllowed = true
	// A path with a stray trailing slash is an unknown route (404
	// not_found), not a redirect that bypasses the middleware and its
	// no-store header.
	r.RedirectTrailingSlash = false
	r.ContextWithFallback = true

	m := newMetrics(cfg.Registry)
	r.Use(withRequestID, accessLog(cfg.Logger), m.observe, recoverProblem, secureHeaders, limits(cfg))
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
		writeError(c, sessions.Errorf(codeMethodNotAllowed, "This endpoint does not answer %s.", c.Request.Method))
	})

	r.GET("/healthz", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok"}) })
	r.GET("/readyz", func(c *gin.Context) {
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
	r.GET("/metrics", gin.WrapH(promhttp.HandlerFor(cfg.Registry, promhttp.HandlerOpts{})))
	r.GET("/openapi.yaml", func(c *gin.Context) { c.Data(http.StatusOK, "application/yaml", cfg.OpenAPI) })

	authed := r.Group("", h.authenticate)
	authed.POST("/sessions", h.signIn)
	authed.GET("/session", h.whoAmI)
	authed.DELETE("/session", h.signOut)
	authed.GET("/sessions/:id", h.getSession)
	authed.DELETE("/sessions/:id", h.endSession)
	authed.GET("/users/:id/sessions", h.listUserSessions)
	authed.DELETE("/users/:id/sessions", h.endUserSessions)
	authed.GET("/clients/:id/sessions", h.listClientSessions)
	authed.DELETE("/clients/:id/sessions", h.endClientSessions)
	authed.GET(eventsRoute, h.streamEvents)
	return r, nil
}

const requestIDHeader = "X-Request-ID"

// defaultReadyTimeout bounds the database check of /readyz so it answers
// within a probe's usual 1 s budget.
const defaultReadyTimeout = 800 * time.Millisecond

var validRequestID = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)

// withRequestID keeps a caller's well-formed X-Request-ID, or makes one,
// and echoes it.
func withRequestID(c *gin.Context) {
	id := c.GetHeader(requestIDHeader)
	if !validRequestID.MatchString(id) {
		b := make([]byte, 12)
		_, _ = rand.Read(b)
		id = hex.EncodeToString(b)
	}
	c.Set(requestIDHeader, id)
	c.Header(requestIDHeader, id)
	c.Next()
}

func requestID(c *gin.Context) string { return c.GetString(requestIDHeader) }

// accessLog logs one line per request: never a header, a query string or
// a body, so no token or key can reach the log.
func accessLog(logger *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		c.Next()
		logger.LogAttrs(c.Request.Context(), slog.LevelInfo, "request",
			slog.String("request_id", requestID(c)),
			slog.String("method", c.Request.Method),
			slog.String("route", routeOf(c)),
			slog.Int("status", c.Writer.Status()),
			slog.Duration("duration", time.Since(start)),
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
	c.Header("Cache-Control", "no-store")
	c.Header("X-Content-Type-Options", "nosniff")
	c.Next()
}

// limits bounds the body and the time of each request.
func limits(cfg Config) gin.HandlerFunc {
	return func(c *gin.Context) {
		c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, cfg.MaxBodyBytes)
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
	}
	reg.MustRegister(m.requests, m.duration)
	return m
}

func (m *metrics) observe(c *gin.Context) {
	start := time.Now()
	c.Next()
	route := routeOf(c)
	m.requests.WithLabelValues(c.Request.Method, route, strconv.Itoa(c.Writer.Status())).Inc()
	m.duration.WithLabelValues(c.Request.Method, route).Observe(time.Since(start).Seconds())
}

// routeOf is the route pattern that served c ("/sessions/:id"), never the
// raw path, so logs and metric labels hold no IDs; "unmatched" otherwise.
func routeOf(c *gin.Context) string {
	if route := c.FullPath(); route != "" {
		return route
	}
	return "unmatched"
}
