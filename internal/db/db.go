// Package db is sessiond's Postgres storage: a pgx pool, the queries, the
// transactions and the migration runner. It implements sessions.Store.
package db

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
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
}

var _ sessions.Store = (*Store)(nil)

// Open connects a pool to the database at url. It does not wait for the
// database: a service may start before Postgres and become ready later.
func Open(ctx context.Context, url string, maxConns int32) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// The parse error can quote the URL, password included.
		return nil, errors.New("SESSIOND_DATABASE_URL is not a valid Postgres URL")
	}
	if maxConns > 0 {
		cfg.MaxConns = maxConns
	}
	cfg.ConnConfig.ConnectTimeout = 5 * time.Second
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open database pool: %w", err)
	}
	return &Store{pool: pool, lookups: newLookups(pool)}, nil
}

// Close closes every connection of the pool.
func (s *Store) Close() { s.pool.Close() }

// Ping reports whether the database answers; for /readyz.
func (s *Store) Ping(ctx context.Context) error { return mapError(s.pool.Ping(ctx)) }

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
		// COMMIT (CommitAfterNext) and that COMMIT succeeded.
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
// when it travels with the COMMIT (Tx.CommitAfterNext), made when the two
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

// TouchSession implements sessions.Store.
func (s *Store) TouchSession(ctx context.Context, id string, at time.Time) error {
	_, err := s.pool.Exec(ctx, touchSession, id, at)
	return mapError(err)
}
