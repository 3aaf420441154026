package db

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sessiond/sessiond/internal/sessions"
)

// ClientsEventsAfterSQL is ClientsEventsAfter's statement, for tests that
// look at its plan.
var ClientsEventsAfterSQL = clientsEventsAfter

// CreateClient inserts a client inside tx, the way sign-in's combined
// statement does, for tests that need a client without a session (and a
// write that can fail on a duplicate key). The service never creates a
// bare client, so this lives with the tests.
func CreateClient(ctx context.Context, tx sessions.Tx, id string, at time.Time) error {
	_, err := tx.(txStore).tx.Exec(ctx, `INSERT INTO clients (id, created_at) VALUES ($1, $2)`, id, at)
	return err
}

// CreateClientAndCommit is CreateClient as the transaction's last
// statement, sent with its COMMIT, as a write with Commit set is.
func CreateClientAndCommit(ctx context.Context, tx sessions.Tx, id string, at time.Time) error {
	tx.(txStore).tx.commitWithNext(true)
	return CreateClient(ctx, tx, id, at)
}

// WithTracer traces the pool's statements with tracer.
func WithTracer(tracer pgx.QueryTracer) Option {
	return func(o *options) { o.tracer = tracer }
}
