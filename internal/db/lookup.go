package db

import (
	"bytes"
	"context"
	"runtime"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sessiond/sessiond/internal/sessions"
)

// selectSessionsByTokenHashes is the coalesced form of
// selectSessionByTokenHash: one statement for many tokens.
const selectSessionsByTokenHashes = `SELECT token_hash, ` + sessionColumns + ` FROM sessions WHERE token_hash = ANY($1) AND status = 'active'`

// maxLookupBatch bounds how many lookups one statement answers.
const maxLookupBatch = 128

// maxBatchWait bounds a coalesced statement whose callers all came
// without a deadline.
const maxBatchWait = 30 * time.Second

// lookups coalesces concurrent token lookups, the hot path of every
// authenticated request, into fewer statements. Up to slots lookups run
// as their own statement, exactly as without coalescing; a lookup that
// finds every slot busy joins the batch that is still being collected
// (up to maxLookupBatch lookups; then a new one starts), and each time a
// slot frees up the oldest batch is sent as a single statement
// (token_hash = ANY($1)).
//
// No cache is involved and no answer is shared with a lookup that asked
// after the statement was sent: a lookup only ever joins a batch that has
// not been sent yet, so the statement's snapshot is taken after every one
// of its callers asked, and a session ended before a caller asked is seen
// as ended (SPEC invariant 5).
type lookups struct {
	pool  *pgxpool.Pool
	slots int

	mu      sync.Mutex
	running int // statements in flight, at most slots (guarded by mu)
	// pending are the batches not sent yet, oldest first; only the last
	// one may still be collecting (guarded by mu).
	pending []*lookupBatch
}

// lookupBatch is the lookups that one coalesced statement answers. Its
// fields other than done are written before done is closed.
type lookupBatch struct {
	ctxs   []context.Context
	hashes [][]byte
	found  []sessions.Session
	ok     []bool
	err    error
	done   chan struct{}
}

func newLookups(pool *pgxpool.Pool) *lookups {
	// As many statements in flight as the database's CPUs can work on is
	// enough to keep them busy; the rest wait a moment and share one.
	slots := max(2, min(int(pool.Config().MaxConns)/2, runtime.GOMAXPROCS(0)))
	return &lookups{pool: pool, slots: slots}
}

// lookup returns the session whose token hashes to h, or pgx.ErrNoRows.
func (l *lookups) lookup(ctx context.Context, h sessions.TokenHash) (sessions.Session, error) {
	l.mu.Lock()
	if l.running < l.slots {
		l.running++
		l.mu.Unlock()
		sess, err := scanSession(l.pool.QueryRow(ctx, selectSessionByTokenHash, h[:]))
		l.release()
		return sess, err
	}
	// Join the batch still collecting, or start one. A full batch waits
	// for a slot like any other: with thousands of callers in flight, a
	// lookup that went alone instead would queue for a pool connection
	// and cost Postgres a statement of its own.
	var b *lookupBatch
	if n := len(l.pending); n > 0 && len(l.pending[n-1].hashes) < maxLookupBatch {
		b = l.pending[n-1]
	} else {
		b = &lookupBatch{done: make(chan struct{})}
		l.pending = append(l.pending, b)
	}
	i := len(b.hashes)
	b.hashes = append(b.hashes, h[:])
	b.ctxs = append(b.ctxs, ctx)
	l.mu.Unlock()

	select {
	case <-b.done:
		if b.err != nil {
			return sessions.Session{}, b.err
		}
		if !b.ok[i] {
			return sessions.Session{}, pgx.ErrNoRows
		}
		return b.found[i], nil
	case <-ctx.Done():
		return sessions.Session{}, ctx.Err()
	}
}

// release frees a slot: the oldest batch not sent yet, if any, takes it
// over and is sent now.
func (l *lookups) release() {
	l.mu.Lock()
	var b *lookupBatch
	if len(l.pending) > 0 {
		b = l.pending[0]
		l.pending[0] = nil
		l.pending = l.pending[1:]
	} else {
		l.running--
	}
	l.mu.Unlock()
	if b != nil {
		go l.send(b)
	}
}

// send runs one coalesced statement for b, then frees its slot.
func (l *lookups) send(b *lookupBatch) {
	defer l.release()
	defer close(b.done)
	if allDone(b.ctxs) {
		// It waited for a slot while every caller gave up.
		b.err = context.Canceled
		return
	}
	ctx, cancel := batchContext(b.ctxs)
	defer cancel()
	b.found = make([]sessions.Session, len(b.hashes))
	b.ok = make([]bool, len(b.hashes))
	if len(b.hashes) == 1 {
		sess, err := scanSession(l.pool.QueryRow(ctx, selectSessionByTokenHash, b.hashes[0]))
		switch {
		case err == nil:
			b.found[0], b.ok[0] = sess, true
		case err != pgx.ErrNoRows:
			b.err = err
		}
		return
	}
	rows, err := l.pool.Query(ctx, selectSessionsByTokenHashes, b.hashes)
	if err != nil {
		b.err = err
		return
	}
	defer rows.Close()
	for rows.Next() {
		var hash []byte
		sess, err := scanSession(prefixedRow{rows, &hash})
		if err != nil {
			b.err = err
			return
		}
		// The same token may be asked for twice in one batch.
		for i, h := range b.hashes {
			if !b.ok[i] && bytes.Equal(h, hash) {
				b.found[i], b.ok[i] = sess, true
			}
		}
	}
	b.err = rows.Err()
}

// prefixedRow scans a row's first column into first and the rest as
// scanSession wants.
type prefixedRow struct {
	rows  pgx.Rows
	first any
}

func (r prefixedRow) Scan(dest ...any) error { return r.rows.Scan(append([]any{r.first}, dest...)...) }

func allDone(ctxs []context.Context) bool {
	for _, c := range ctxs {
		if c.Err() == nil {
			return false
		}
	}
	return true
}

// batchContext lives as long as the last of the callers' deadlines (the
// statement is of no use after that), and at most maxBatchWait.
func batchContext(ctxs []context.Context) (context.Context, context.CancelFunc) {
	last := time.Now().Add(maxBatchWait)
	latest := time.Time{}
	for _, c := range ctxs {
		d, ok := c.Deadline()
		if !ok {
			latest = last
			break
		}
		if d.After(latest) {
			latest = d
		}
	}
	if latest.After(last) {
		latest = last
	}
	return context.WithDeadline(context.Background(), latest)
}
