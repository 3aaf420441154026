package db

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// pipelinedTx is one transaction on a pooled connection whose BEGIN goes
// out with its first statement, in one round trip: pgx's own Begin waits
// for BEGIN's answer before anything else is sent, a round trip that
// carries nothing. A transaction that never runs a statement never
// begins.
//
// Once the first statement has gone out, every call goes straight to the
// connection, except the one after commitWithNext(true), which goes out
// with the COMMIT (a write whose Commit field is set); Commit and Rollback
// end a transaction still open. The connection goes
// back to the pool only through Store.runTx, which destroys it unless it
// is idle and out of any transaction (pgxpool's Release checks).
type pipelinedTx struct {
	conn  *pgxpool.Conn
	begun bool
	// commitAfterNext: the next statement goes out with COMMIT behind it
	// (under lastStatementContext); committed is set once that COMMIT
	// succeeded.
	commitAfterNext bool
	committed       bool
	// wroteEvents: a statement that writes session_events was sent.
	wroteEvents bool
}

var errAfterCommit = errors.New("db: a statement after the transaction's last one")

// commitWithNext, when last is true, makes the next statement the
// transaction's last: it goes out with the COMMIT behind it.
func (t *pipelinedTx) commitWithNext(last bool) {
	if last {
		t.commitAfterNext = true
	}
}

// batch sends sql in one round trip with what has to travel with it:
// BEGIN before it if the transaction has not begun, COMMIT after it if it
// is the last. The results are positioned at sql's; closing them reads the
// COMMIT's. It returns ok false when the statement can go out on its own.
func (t *pipelinedTx) batch(ctx context.Context, sql string, args []any) (results *batchResults, ok bool, err error) {
	if t.committed {
		return nil, true, errAfterCommit
	}
	if t.begun && !t.commitAfterNext {
		return nil, false, nil
	}
	b := &pgx.Batch{}
	begin := !t.begun
	if begin {
		b.Queue("begin")
		t.begun = true
	}
	last := t.commitAfterNext
	if last {
		b.Queue(writeCommitRecord)
	}
	b.Queue(sql, args...)
	r := &batchResults{tx: t, cancel: func() {}}
	if last {
		t.commitAfterNext = false
		b.Queue("commit")
		r.commit = true
		// The statement and its COMMIT are not cut off by the request's
		// context, for the reason Store.runTx gives for a COMMIT.
		ctx, r.cancel = lastStatementContext(ctx)
		clearWarning(t.conn.Conn().PgConn())
	}
	r.BatchResults = t.conn.SendBatch(ctx, b)
	// Read the answers that go before sql's: BEGIN's, writeCommitRecord's.
	for _, ahead := range []bool{begin, last} {
		if !ahead {
			continue
		}
		if _, err := r.BatchResults.Exec(); err != nil {
			r.commit = false // nothing after a failed statement ran
			_ = r.Close()
			return nil, true, err
		}
	}
	return r, true, nil
}

// writeCommitRecord goes out ahead of the last statement of every
// transaction that commits with its last write — the sign-ins and
// sign-outs. It writes a transactional WAL record (a logical message,
// prefix "sessiond", empty: no privilege needed, nothing else to clean
// up), so the transaction has written WAL even when its statement changes
// nothing (a retried sign-out whose first attempt already ended the
// session), and its COMMIT therefore waits, like every other, for the
// synchronous standby. Postgres lets a COMMIT of a transaction that wrote
// no WAL return at once, even one with a transaction ID: the retry would
// answer 2xx while the first attempt's ending, committed on the primary
// alone after its wait was cut short, could still be lost in a failover.
// The retry's commit record lies after the first attempt's, so once the
// standby has it, it has both.
const writeCommitRecord = "select pg_logical_emit_message(true, 'sessiond', '')"

func (t *pipelinedTx) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	br, ok, err := t.batch(ctx, sql, args)
	if !ok {
		return t.conn.Exec(ctx, sql, args...)
	}
	if err != nil {
		return pgconn.CommandTag{}, err
	}
	tag, err := br.Exec()
	return tag, errors.Join(err, br.Close())
}

func (t *pipelinedTx) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	br, ok, err := t.batch(ctx, sql, args)
	if !ok {
		return t.conn.Query(ctx, sql, args...)
	}
	if err != nil {
		return nil, err
	}
	rows, err := br.Query()
	if err != nil {
		_ = br.Close()
		return nil, err
	}
	return &batchRows{Rows: rows, batch: br}, nil
}

func (t *pipelinedTx) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	br, ok, err := t.batch(ctx, sql, args)
	if !ok {
		return t.conn.QueryRow(ctx, sql, args...)
	}
	if err != nil {
		return errRow{err}
	}
	return batchRow{row: br.QueryRow(), batch: br}
}

// batchResults are a batch's results from its statement on; Close reads
// the COMMIT that followed it, if one did.
type batchResults struct {
	pgx.BatchResults
	tx     *pipelinedTx
	commit bool
	cancel context.CancelFunc // of the last statement's context
}

func (r *batchResults) Close() error {
	var err error
	if r.commit {
		r.commit = false
		var tag pgconn.CommandTag
		tag, err = r.BatchResults.Exec()
		if err == nil && tag.String() == "ROLLBACK" {
			err = pgx.ErrTxCommitRollback
		}
		if err == nil {
			r.tx.committed, r.tx.begun = true, false
		}
	}
	err = errors.Join(err, r.BatchResults.Close())
	if r.tx.committed && err == nil {
		err = commitWarning(r.tx.conn.Conn().PgConn())
	}
	r.cancel()
	return err
}

// Commit ends the transaction. A COMMIT of a transaction that an earlier
// error aborted answers ROLLBACK without an error; that is an error here,
// as it is in pgx's own Tx.
func (t *pipelinedTx) Commit(ctx context.Context) error {
	if !t.begun {
		return nil
	}
	clearWarning(t.conn.Conn().PgConn())
	tag, err := t.conn.Exec(ctx, "commit")
	t.begun = false
	if err == nil && tag.String() == "ROLLBACK" {
		return pgx.ErrTxCommitRollback
	}
	if err == nil {
		err = commitWarning(t.conn.Conn().PgConn())
	}
	t.committed = err == nil
	return err
}

// Rollback ends the transaction if it is still open; a no-op after Commit.
func (t *pipelinedTx) Rollback(ctx context.Context) error {
	if !t.begun {
		return nil
	}
	t.begun = false
	_, err := t.conn.Exec(ctx, "rollback")
	return err
}

// batchRows are the rows of a batch's last statement: closing them also
// reads the rest of the batch, so the connection is free again.
type batchRows struct {
	pgx.Rows
	batch  *batchResults
	closed bool
	err    error
}

func (r *batchRows) Next() bool {
	if r.Rows.Next() {
		return true
	}
	r.Close() // so that Err, asked next, includes the batch's end
	return false
}

func (r *batchRows) Close() {
	r.Rows.Close()
	if !r.closed {
		r.closed = true
		r.err = r.batch.Close()
	}
}

func (r *batchRows) Err() error {
	if err := r.Rows.Err(); err != nil {
		return err
	}
	return r.err
}

// batchRow is QueryRow's row of a batch's last statement.
type batchRow struct {
	row   pgx.Row
	batch *batchResults
}

func (r batchRow) Scan(dest ...any) error {
	err := r.row.Scan(dest...)
	if cerr := r.batch.Close(); err == nil {
		err = cerr
	}
	return err
}

type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }
