// Package db is sessiond's Postgres storage: a pgx pool, the queries, the
// transactions and the migration runner. It implements sessions.Store.
package db

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sessiond/sessiond/internal/sessions"
)

// Store implements sessions.Store on a pgx pool.
type Store struct {
	pool    *pgxpool.Pool
	lookups *lookups // coalesces SessionByTokenHash; see lookup.go
	// eventsCommitted is called after a commit that wrote events
	// (OnEventsCommitted).
	eventsCommitted atomic.Pointer[func()]
	// ready answers /readyz on a connection of its own, so the check
	// never waits for a slot of pool, whose connections may all be busy
	// with commits that wait for a synchronous standby.
	ready *pgxpool.Pool
	// direct is the configuration of the connections that must reach
	// Postgres itself, not a transaction-pooling PgBouncer: the events
	// LISTEN and the webhook leases' session-level advisory locks.
	direct *pgx.ConnConfig
}

var _ sessions.Store = (*Store)(nil)

// Timeouts of every connection to Postgres; see docs/operations.md, "Production".
const (
	// DefaultConnectTimeout bounds one connection attempt to one host of
	// the URL when the URL sets no connect_timeout: pgx tries the hosts of
	// a multi-host URL in turn, so a host that hangs (a machine that
	// died) costs this much before the next is tried.
	DefaultConnectTimeout = 2 * time.Second
	// keepAliveIdle, keepAliveInterval and keepAliveCount make the kernel
	// probe a connection that has been quiet for keepAliveIdle, and drop
	// it when keepAliveCount probes in a row go unanswered; userTimeout
	// (TCP_USER_TIMEOUT, Linux) drops it when data sent stays
	// unacknowledged that long. Together a primary that vanishes without
	// closing its connections (power loss, a network partition) is
	// noticed within about 10 s, not the kernel's default of hours. A
	// commit that waits for a slow synchronous standby is not cut off by
	// them: the server's kernel acknowledges the probes and the data.
	keepAliveIdle     = 5 * time.Second
	keepAliveInterval = time.Second
	keepAliveCount    = 5
	userTimeout       = 10 * time.Second
)

// Option configures Open.
type Option func(*options)

type options struct {
	directURL string
	// tracer, when set, traces the pool's statements (tests count round
	// trips with it).
	tracer pgx.QueryTracer
}

// WithDirectURL makes the events LISTEN connection and the webhook leases
// connect to directURL instead of the pool's URL: when the pool's URL is
// a PgBouncer in transaction mode, LISTEN and session-level advisory
// locks need a connection to Postgres itself. Empty: the pool's URL.
func WithDirectURL(directURL string) Option {
	return func(o *options) { o.directURL = directURL }
}

// Open connects a pool to the database at url. It does not wait for the
// database: a service may start before Postgres and become ready later.
//
// url may name several hosts (postgres://u:p@h1:5432,h2:5432/db?
// target_session_attrs=read-write): every new connection goes to the
// first of them that accepts writes, so after a failover the pool, the
// events listener and the webhook leases reconnect to the new primary by
// themselves. The URL's connect_timeout (seconds, per host) is honoured;
// without one (or with 0) each host gets DefaultConnectTimeout.
func Open(ctx context.Context, url string, maxConns int32, opts ...Option) (*Store, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// The parse error can quote the URL, password included.
		return nil, errors.New("SESSIOND_DATABASE_URL is not a valid Postgres URL")
	}
	if maxConns > 0 {
		cfg.MaxConns = maxConns
	}
	configureConn(&cfg.ConnConfig.Config)
	direct := cfg.ConnConfig
	if o.directURL != "" && o.directURL != url {
		if direct, err = pgx.ParseConfig(o.directURL); err != nil {
			return nil, errors.New("SESSIOND_DIRECT_DATABASE_URL is not a valid Postgres URL")
		}
		configureConn(&direct.Config)
	}
	readyCfg := cfg.Copy()
	readyCfg.MaxConns, readyCfg.MinConns = 1, 0
	readyCfg.ConnConfig.RuntimeParams["application_name"] = ReadinessAppName
	if o.tracer != nil {
		cfg.ConnConfig.Tracer = o.tracer
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open database pool: %w", err)
	}
	ready, err := pgxpool.NewWithConfig(ctx, readyCfg)
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("open readiness pool: %w", err)
	}
	return &Store{pool: pool, lookups: newLookups(pool), ready: ready, direct: direct}, nil
}

// ReadinessAppName is the application_name of the readiness check's
// connection.
const ReadinessAppName = "sessiond-readiness"

// configureConn applies the connect timeout and the TCP settings above.
func configureConn(c *pgconn.Config) {
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = DefaultConnectTimeout
	}
	d := &net.Dialer{
		Timeout: c.ConnectTimeout,
		KeepAliveConfig: net.KeepAliveConfig{Enable: true,
			Idle: keepAliveIdle, Interval: keepAliveInterval, Count: keepAliveCount},
		Control: setUserTimeout,
	}
	c.DialFunc = d.DialContext
	// A request's deadline ends a statement by closing the connection,
	// never by a cancel request (pgx's default, kept on purpose): a
	// cancel request that reaches a COMMIT waiting for the synchronous
	// standby makes Postgres stop waiting and report the commit as done,
	// committed on the primary alone. A closed connection leaves the
	// COMMIT waiting, and the request answers 503 (outcome unknown).
	c.BuildContextWatcherHandler = func(pc *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.DeadlineContextWatcherHandler{Conn: pc.Conn()}
	}
	// A COMMIT whose wait for the standby someone else cut short
	// (statement_timeout, pg_cancel_backend) succeeds with a WARNING;
	// the commit paths turn that into an error (see commitWarning).
	c.OnNotice = func(pc *pgconn.PgConn, n *pgconn.Notice) {
		if n.SeverityUnlocalized == "WARNING" || (n.SeverityUnlocalized == "" && n.Severity == "WARNING") {
			pc.CustomData()[warningKey] = n.Message
		}
	}
}

// warningKey is where a connection keeps the last WARNING it received.
const warningKey = "sessiond.warning"

// clearWarning forgets the connection's last WARNING, before a COMMIT.
func clearWarning(pc *pgconn.PgConn) { delete(pc.CustomData(), warningKey) }

// commitWarning is the error of a COMMIT that Postgres answered with a
// WARNING: the one it sends when the wait for the synchronous standby was
// cancelled ("canceling wait for synchronous replication ...: the
// transaction has already committed locally, but might not have been
// replicated"). Nothing else sessiond sends with a COMMIT warns, so any
// WARNING means the same: committed on the primary, not confirmed by the
// standby. That is not an answer sessiond may give as success; it is
// ErrUnavailable, and a retry is safe (it waits for the standby).
func commitWarning(pc *pgconn.PgConn) error {
	msg, ok := pc.CustomData()[warningKey].(string)
	if !ok {
		return nil
	}
	return fmt.Errorf("%w: commit not confirmed by the synchronous standby: %s", sessions.ErrUnavailable, msg)
}

// Close closes every connection of the pools.
func (s *Store) Close() {
	s.ready.Close()
	s.pool.Close()
}

// Ping reports whether a primary answers, for /readyz: on the readiness
// check's own connection, so it answers while every pooled connection
// waits in a commit, and an error when the server is a standby (a URL
// without target_session_attrs=read-write may lead there).
func (s *Store) Ping(ctx context.Context) error {
	var standby bool
	if err := s.ready.QueryRow(ctx, `SELECT pg_is_in_recovery()`).Scan(&standby); err != nil {
		return mapError(err)
	}
	if standby {
		return fmt.Errorf("%w: the database is a standby (read-only)", sessions.ErrUnavailable)
	}
	return nil
}

// Pool is the underlying pool, for tests and benchmarks that query directly.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// rollbackTimeout bounds the rollback of a failed transaction.
const rollbackTimeout = 2 * time.Second

// maxTxAttempts bounds how often InTx runs a transaction that Postgres
// aborted to break a deadlock or a serialization conflict.
const maxTxAttempts = 5

// InTx implements sessions.Store.
func (s *Store) InTx(ctx context.Context, fn func(sessions.Tx) error) error {
	var err error
	for attempt := 1; attempt <= maxTxAttempts; attempt++ {
		err = s.runTx(ctx, fn)
		if !retryable(err) || attempt == maxTxAttempts {
			break
		}
		// A random pause, growing with each attempt, so the transactions
		// that deadlocked do not meet again in the same order.
		select {
		case <-ctx.Done():
			return mapError(ctx.Err())
		case <-time.After(time.Duration(1+rand.IntN(5*attempt)) * time.Millisecond):
		}
	}
	return mapError(err)
}

func (s *Store) runTx(ctx context.Context, fn func(sessions.Tx) error) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	// Release destroys a connection that is still in a transaction or
	// broken, so a failed rollback cannot hand an open one to the next
	// caller.
	defer conn.Release()
	tx := &pipelinedTx{conn: conn}
	defer func() {
		// A no-op after Commit. Bounded, so a frozen database cannot hold
		// the request past its deadline; pgx closes the connection when
		// the rollback fails.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rollbackTimeout)
		defer cancel()
		_ = tx.Rollback(rctx)
	}()
	defer func() {
		// Also when fn failed after its last statement went out with the
		// COMMIT (a write with Commit set) and that COMMIT succeeded.
		if tx.committed && tx.wroteEvents {
			if f := s.eventsCommitted.Load(); f != nil {
				(*f)()
			}
		}
	}()
	if err := fn(txStore{tx}); err != nil {
		return err
	}
	// The commit is not cut off by the request's deadline: a COMMIT
	// cancelled in flight may or may not have happened, and a request that
	// fails must have changed nothing. It is bounded like the rollback.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rollbackTimeout)
	defer cancel()
	return tx.Commit(cctx)
}

// lastStatementContext is the context of a transaction's last statement
// when it travels with the COMMIT (a write with Commit set), made when the two
// are sent: not cancelled with the request, like a bare COMMIT, and given
// until the request's deadline or rollbackTimeout from now, whichever is
// later — as long as a bare COMMIT after it would have had — so that a
// frozen database cannot hold it for ever and a request against one still
// ends within its timeout plus rollbackTimeout.
func lastStatementContext(ctx context.Context) (context.Context, context.CancelFunc) {
	deadline := time.Now().Add(rollbackTimeout)
	if d, ok := ctx.Deadline(); ok && d.After(deadline) {
		deadline = d
	}
	return context.WithDeadline(context.WithoutCancel(ctx), deadline)
}

func retryable(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) &&
		(pgErr.Code == "40P01" /* deadlock_detected */ || pgErr.Code == "40001" /* serialization_failure */)
}

// mapError turns what pgx returns into what sessions.Store promises: the
// service's own errors pass through; a deadline that ran out (the
// request's, or a statement's) is sessions.ErrTimedOut, since a request
// queued behind other transactions' row locks runs out of time against a
// database that answers; an error that did not come from Postgres itself
// (refused, reset) means the database is out of reach, so it is
// sessions.ErrUnavailable with the cause kept for the log; anything else
// stays an internal error.
func mapError(err error) error {
	var se *sessions.Error
	var pgErr *pgconn.PgError
	switch {
	case err == nil, errors.As(err, &se), errors.Is(err, context.Canceled):
		return err
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%w: %w", sessions.ErrTimedOut, err)
	case errors.As(err, &pgErr):
		if pgErr.Code == "57014" { // query_canceled: a statement_timeout, or pgx cancelling at a deadline
			return fmt.Errorf("%w: %w", sessions.ErrTimedOut, err)
		}
		switch pgErr.Code[:2] {
		case "08", "53", "57": // connection exception, insufficient resources, operator intervention
			return fmt.Errorf("%w: %w", sessions.ErrUnavailable, err)
		}
		if pgErr.Code == "25006" { // read_only_sql_transaction: a primary demoted under the connection
			return fmt.Errorf("%w: %w", sessions.ErrUnavailable, err)
		}
		return fmt.Errorf("postgres: %w", err)
	default:
		return fmt.Errorf("%w: %w", sessions.ErrUnavailable, err)
	}
}

// SessionByTokenHash implements sessions.Store.
func (s *Store) SessionByTokenHash(ctx context.Context, h sessions.TokenHash) (sessions.Session, error) {
	sess, err := s.lookups.lookup(ctx, h)
	if errors.Is(err, pgx.ErrNoRows) {
		return sess, sessions.ErrSessionNotFound
	}
	return sess, mapError(err)
}

// TouchSession implements sessions.Store. The activity write does not
// wait for a synchronous standby (synchronous_commit = local for its
// transaction alone): losing a last_active_at in a failover costs at
// most a minute of recorded activity, while waiting would make every
// verify hang whenever the standby is away. It is one round trip.
func (s *Store) TouchSession(ctx context.Context, id string, at time.Time) error {
	b := &pgx.Batch{}
	b.Queue("begin")
	b.Queue("set local synchronous_commit = local")
	b.Queue(touchSession, id, at)
	b.Queue("commit")
	err := s.pool.SendBatch(ctx, b).Close()
	return mapError(err)
}
