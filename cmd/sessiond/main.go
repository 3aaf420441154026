// Command sessiond is the session-management service. main only wires:
// config → pool → store → service → api → server.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/api"
	"github.com/sessiond/sessiond/internal/db"
	"github.com/sessiond/sessiond/internal/events"
	"github.com/sessiond/sessiond/internal/sessions"
)

// version is stamped at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// The first SIGTERM or SIGINT starts a graceful shutdown; after it the
	// signals have their default effect again, so a second one ends the
	// process at once.
	go func() {
		<-ctx.Done()
		stop()
	}()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "sessiond:", err)
			os.Exit(1)
		}
	}
}

// run is sessiond with its outside world passed in, so tests can run it.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	command := "serve"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		command, args = args[0], args[1:]
	}
	cfg, rest, err := parseConfig(args, getenv, stderr)
	if err != nil {
		return err
	}
	if command == "serve" && len(rest) > 0 { // "sessiond --addr :9 migrate up"
		command, rest = rest[0], rest[1:]
	}
	logger := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: cfg.LogLevel}))
	slog.SetDefault(logger)

	switch command {
	case "serve":
		// The access log is its own switch (SESSIOND_ACCESS_LOG), whatever
		// the level of sessiond's own lines: its lines are info.
		accessLogger := slog.New(slog.NewJSONHandler(stderr, nil))
		return serve(ctx, cfg, logger, accessLogger)
	case "migrate":
		return migrateCommand(cfg, rest, stdout)
	case "healthcheck":
		return healthcheck(ctx, cfg.Addr)
	case "version":
		fmt.Fprintln(stdout, "sessiond", version)
		return nil
	default:
		return fmt.Errorf("unknown command %q (want serve, migrate, healthcheck or version; see --help)", command)
	}
}

func serve(ctx context.Context, cfg config, logger, accessLogger *slog.Logger) error {
	started := time.Now()
	// The pool connects lazily, so everything below up to the migrations
	// checks settings without touching the database.
	store, err := db.Open(ctx, cfg.DatabaseURL, int32(cfg.DBMaxConns), db.WithDirectURL(cfg.DirectDatabaseURL))
	if err != nil {
		return err
	}
	// Closing the pool waits for every connection in use, so it is left
	// out when requests outlived the grace period (see below).
	closeStore := true
	defer func() {
		if closeStore {
			store.Close()
		}
	}()

	svc := sessions.NewService(store, sessions.Config{
		Mode:                   cfg.Mode,
		MaxSessionsPerUser:     cfg.MaxSessionsPerUser,
		Lifetime:               cfg.SessionLifetime,
		InactivityTimeout:      cfg.InactivityTimeout,
		Retention:              cfg.Retention,
		AllowedRedirectOrigins: cfg.AllowedRedirectOrigins,
	})
	registry := prometheus.NewRegistry()
	registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	hub := events.NewHub(events.HubConfig{
		Log:        store,
		Sequencer:  store,
		Listen:     func(ctx context.Context) (events.Listener, error) { return listenEvents(ctx, store) },
		Sessions:   svc,
		MaxStreams: cfg.MaxStreams,
		// One session's streams, how far back they resume, and how long
		// one read of the event table may take: a stream is a request.
		MaxStreamsPerSession: cfg.MaxStreamsPerSession,
		ResumeWindow:         int64(cfg.StreamResumeWindow),
		ReadTimeout:          cfg.RequestTimeout,
		Logger:               logger,
		Registry:             registry,
	})
	// Every event this process commits is numbered right after its commit.
	store.OnEventsCommitted(hub.Committed)
	var webhooks *events.Webhooks
	if len(cfg.WebhookURLs) > 0 {
		webhooks, err = events.NewWebhooks(events.WebhookConfig{
			URLs: cfg.WebhookURLs, Secret: cfg.WebhookSecret, RetryFor: cfg.WebhookRetryFor, Timeout: cfg.WebhookTimeout,
			BackoffMin: cfg.WebhookBackoffMin, BackoffMax: cfg.WebhookBackoffMax, LeaseRetry: cfg.WebhookLeaseRetry,
			Log:      store,
			TryLease: func(ctx context.Context, key string) (events.Lease, error) { return tryWebhookLease(ctx, store, key) },
			Wake:     hub.Watch,
			Logger:   logger,
			Registry: registry,
		})
		if err != nil {
			return err
		}
	}
	handler, err := api.New(svc, api.Config{
		APIKeys:        cfg.APIKeys,
		CookieName:     cfg.CookieName,
		CookieSecure:   cfg.CookieSecure,
		CookieDomain:   cfg.CookieDomain,
		CookiePath:     cfg.CookiePath,
		CookieSameSite: cfg.CookieSameSite,
		CORSOrigins:    cfg.CORSOrigins,
		RequestTimeout: cfg.RequestTimeout,
		Ready:          store.Ping,
		OpenAPI:        sessiond.OpenAPI,
		Registry:       registry,
		Logger:         logger,
		AccessLogger:   accessLogger,
		AccessLog:      cfg.AccessLog,
		SlowRequest:    cfg.SlowRequest,
		Events:         hub,
	})
	if err != nil {
		return err
	}
	if len(cfg.APIKeys) == 0 {
		logger.Warn("no API key configured: backend endpoints answer 401 (set SESSIOND_API_KEYS)")
	}
	if cfg.AutoMigrate {
		// Over the direct URL: golang-migrate's advisory lock and its
		// multi-statement migrations need a session of their own, which a
		// PgBouncer in transaction mode does not give.
		if err := migrateUp(ctx, cfg.DirectDatabaseURL, logger); err != nil {
			return err
		}
	}

	if len(cfg.WebhookURLs) > 0 {
		// Before serving: every event this process commits goes to every URL.
		if err := store.EnsureWebhookPositions(ctx, webhookKeys(cfg.WebhookURLs)); err != nil {
			logger.Warn("webhook positions not recorded yet; each URL starts when its delivery does", "error", err.Error())
		}
	}
	srv := api.NewHTTPServer(cfg.Addr, handler, api.DefaultServerLimits, slog.NewLogLogger(logger.Handler(), slog.LevelWarn))
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return err
	}
	sweepCtx, stopSweeper := context.WithCancel(ctx)
	defer stopSweeper()
	go sweep(sweepCtx, svc, cfg.SweepInterval, logger)
	go hub.Run(sweepCtx)
	// Shutdown ends every event stream at once, so none holds the grace
	// period; EventSource clients reconnect to another replica.
	srv.RegisterOnShutdown(hub.Close)
	if webhooks != nil {
		go webhooks.Run(sweepCtx)
	}
	if cfg.PprofAddr != "" {
		go servePprof(sweepCtx, cfg.PprofAddr, logger)
	}

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	logger.Info("sessiond listening", "addr", ln.Addr().String(), "version", version,
		"mode", cfg.Mode, "startup", time.Since(started))

	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	// Stop accepting, let in-flight requests finish within the grace period.
	logger.Info("shutting down", "grace", cfg.ShutdownTimeout)
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		// Requests are still running, some perhaps waiting in the
		// database. The grace period is over: exit now, without waiting
		// for them; Postgres rolls their transactions back when the
		// connections drop.
		closeStore = false
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

// migrateUp applies the migrations, waiting a while for a database that is
// still starting.
func migrateUp(ctx context.Context, url string, logger *slog.Logger) error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		err := func() error {
			m, err := db.NewMigrator(url)
			if err != nil {
				return err
			}
			defer m.Close()
			return m.Up()
		}()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("migrate: %w", err)
		}
		logger.Warn("database not ready for migrations; retrying", "error", err.Error())
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

func migrateCommand(cfg config, args []string, stdout io.Writer) error {
	m, err := db.NewMigrator(cfg.DirectDatabaseURL)
	if err != nil {
		return err
	}
	defer m.Close()
	switch {
	case len(args) == 1 && args[0] == "up":
		return m.Up()
	case len(args) == 2 && args[0] == "down":
		n, err := strconv.Atoi(args[1])
		if err != nil || n < 1 {
			return fmt.Errorf("migrate down: want a number of migrations, 1 or more (got %q)", args[1])
		}
		return m.Down(n)
	case len(args) == 1 && args[0] == "version":
		v, dirty, err := m.Version()
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%d", v)
		if dirty {
			fmt.Fprint(stdout, " (dirty)")
		}
		fmt.Fprintln(stdout)
		return nil
	default:
		return errors.New("usage: sessiond migrate up | down N | version")
	}
}

// healthcheck asks the local server's /readyz; for the container's
// HEALTHCHECK, which has no curl.
func healthcheck(ctx context.Context, addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("SESSIOND_ADDR: %w", err)
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+net.JoinHostPort(host, port)+"/readyz", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("/readyz answered %d", resp.StatusCode)
	}
	return nil
}

// sweep runs the sweeper every interval until ctx ends. Replicas may sweep
// at once: the sweeper's statements skip rows another holds.
func sweep(ctx context.Context, svc *sessions.Service, every time.Duration, logger *slog.Logger) {
	if every <= 0 {
		return
	}
	ticker := time.NewTicker(every)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		r, err := svc.Sweep(ctx)
		if err != nil && ctx.Err() == nil {
			logger.Warn("sweep failed", "error", err.Error())
			continue
		}
		if r.Expired > 0 || r.Deleted > 0 {
			logger.Info("swept", "expired", r.Expired, "deleted", r.Deleted)
		}
	}
}

// listenEvents and tryWebhookLease adapt the store's concrete types to
// the events package's interfaces (a nil pointer must be a nil interface).
func listenEvents(ctx context.Context, store *db.Store) (events.Listener, error) {
	l, err := store.ListenEvents(ctx)
	if l == nil {
		return nil, err
	}
	return l, err
}

func tryWebhookLease(ctx context.Context, store *db.Store, key string) (events.Lease, error) {
	l, err := store.TryWebhookLease(ctx, key)
	if l == nil {
		return nil, err
	}
	return l, err
}

// webhookKeys are the database keys of the webhook URLs (the URLs
// themselves are never stored: they may hold secrets).
func webhookKeys(urls []string) []string {
	keys := make([]string, len(urls))
	for i, u := range urls {
		keys[i] = events.WebhookKey(u)
	}
	return keys
}
