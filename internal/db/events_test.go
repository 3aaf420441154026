package db_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/sessiond/sessiond/internal/pgtest"
)

// insertEvent writes a session and its created event in tx, as a sign-in
// does, and returns the event's identity id.
func insertEvent(t *testing.T, ctx context.Context, tx pgx.Tx, n string) int64 {
	t.Helper()
	h := make([]byte, 32)
	_, _ = rand.Read(h)
	var id int64
	err := tx.QueryRow(ctx, `WITH c AS (INSERT INTO clients (id, created_at) VALUES ('client_'||$1, now()) RETURNING id),
		s AS (INSERT INTO sessions (id, token_hash, user_id, client_id, created_at, last_active_at, expires_at)
			SELECT 'sess_'||$1, $2, 'u', id, now(), now(), now() + interval '1 hour' FROM c RETURNING id)
		INSERT INTO session_events (session_id, old_status, new_status, at, actor) SELECT id, NULL, 'active', now(), 'test' FROM s RETURNING id`,
		n, h).Scan(&id)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func commitSeq(t *testing.T, ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, id int64) int64 {
	t.Helper()
	var seq int64
	if err := q.QueryRow(ctx, `SELECT commit_seq FROM session_events WHERE id = $1`, id).Scan(&seq); err != nil {
		t.Fatal(err)
	}
	return seq
}

// TestCommitSeqIsCommitOrder: the transaction that inserts first but
// commits last gets the lower identity id and the higher commit_seq, so a
// reader that follows commit_seq never moves past a row that is yet to
// become visible.
func TestCommitSeqIsCommitOrder(t *testing.T) {
	t.Parallel()
	store := pgtest.NewStore(t)
	ctx := context.Background()
	pool := store.Pool()
	first, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Rollback(ctx)
	firstID := insertEvent(t, ctx, first, "A")
	second, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	secondID := insertEvent(t, ctx, second, "B")
	if err := second.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	secondSeq := commitSeq(t, ctx, pool, secondID)
	if err := first.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	firstSeq := commitSeq(t, ctx, pool, firstID)
	if !(firstID < secondID && firstSeq > secondSeq) {
		t.Fatalf("ids %d, %d; commit_seq %d, %d: want the later commit to have the higher commit_seq", firstID, secondID, firstSeq, secondSeq)
	}
	events, err := store.EventsAfter(ctx, 0, 10)
	if err != nil || len(events) != 2 || events[0].Session.ID != "sess_B" || events[1].Session.ID != "sess_A" {
		t.Fatalf("EventsAfter: %+v, %v; want B then A", events, err)
	}
}

// TestReaderFollowingCommitSeqMissesNothing: 8 writers commit 1,600
// events while a reader keeps reading past its cursor; it sees every
// event exactly once, in increasing commit_seq.
func TestReaderFollowingCommitSeqMissesNothing(t *testing.T) {
	t.Parallel()
	store := pgtest.NewStore(t)
	ctx := context.Background()
	const writers, each = 8, 200
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				tx, err := store.Pool().Begin(ctx)
				if err != nil {
					t.Error(err)
					return
				}
				insertEvent(t, ctx, tx, fmt.Sprintf("%d_%d", w, i))
				if err := tx.Commit(ctx); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	seen := map[string]bool{}
	var cursor int64
	for finished := false; ; {
		select {
		case <-done:
			finished = true
		default:
		}
		batch, err := store.EventsAfter(ctx, cursor, 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range batch {
			if e.Seq <= cursor || seen[e.Session.ID] {
				t.Fatalf("event %d of %s out of order or twice", e.Seq, e.Session.ID)
			}
			seen[e.Session.ID], cursor = true, e.Seq
		}
		if finished && len(batch) == 0 {
			break
		}
	}
	if len(seen) != writers*each {
		t.Fatalf("reader saw %d events, want %d", len(seen), writers*each)
	}
}
