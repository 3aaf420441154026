package db_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

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

// TestCommitNumbersOnlyItsOwnRows: the commit-time trigger finds the rows
// of its transaction without walking what earlier commits left behind in
// the index of unnumbered rows (one dead entry per event until vacuum):
// 300 commits one after another read a few entries each, not the ~45,000
// that walking every earlier entry would read. A count, not a timing: the
// walk made each commit slower than the last while it held the
// commit-order lock, until sign-ins timed out.
func TestCommitNumbersOnlyItsOwnRows(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pgtest.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	const commits = 300
	for i := range commits {
		tx, err := conn.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		insertEvent(t, ctx, tx, fmt.Sprint(i))
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// Statistics reach the shared counters when the backend next goes
	// idle after a forced flush; poll until this backend's have arrived.
	var read int64
	for range 50 {
		if _, err := conn.Exec(ctx, `SELECT pg_stat_force_next_flush()`); err != nil {
			t.Fatal(err)
		}
		err := conn.QueryRow(ctx, `SELECT pg_stat_clear_snapshot(), idx_tup_read FROM pg_stat_user_indexes
			WHERE indexrelname = 'session_events_unsequenced_idx'`).Scan(nil, &read)
		if err != nil {
			t.Fatal(err)
		}
		if read >= commits {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if read < commits || read > 4*commits {
		t.Fatalf("%d commits read %d entries of the unnumbered-rows index; want about one each (at least %d, at most %d)", commits, read, commits, 4*commits)
	}
	var unnumbered int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM session_events WHERE commit_seq IS NULL`).Scan(&unnumbered); err != nil || unnumbered != 0 {
		t.Fatalf("%d rows without a commit_seq (%v); want 0", unnumbered, err)
	}
}

// TestCommitNumbersRowsInsertedAroundOtherCommits: a transaction's rows
// are numbered at its commit even when another transaction inserted and
// committed a row between them (an id inside its range), and that other
// row keeps the number it got first.
func TestCommitNumbersRowsInsertedAroundOtherCommits(t *testing.T) {
	t.Parallel()
	store := pgtest.NewStore(t)
	ctx := context.Background()
	pool := store.Pool()
	long, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer long.Rollback(ctx)
	first := insertEvent(t, ctx, long, "first")
	other, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	between := insertEvent(t, ctx, other, "between")
	if err := other.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	betweenSeq := commitSeq(t, ctx, pool, between)
	last := insertEvent(t, ctx, long, "last")
	if err := long.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	firstSeq, lastSeq := commitSeq(t, ctx, pool, first), commitSeq(t, ctx, pool, last)
	if !(first < between && between < last) || !(betweenSeq < firstSeq && firstSeq < lastSeq) ||
		commitSeq(t, ctx, pool, between) != betweenSeq {
		t.Fatalf("ids %d, %d, %d; commit_seq %d, %d, %d: want the long transaction's rows numbered after the one committed between them", first, between, last, firstSeq, betweenSeq, lastSeq)
	}
}

// TestClientsEventsAfter: of the next events, only the listed clients'
// come back in full, with how many were read and where the read ended;
// nil lists every client.
func TestClientsEventsAfter(t *testing.T) {
	t.Parallel()
	store := pgtest.NewStore(t)
	ctx := context.Background()
	for _, n := range []string{"a1", "b1", "a2", "c1"} {
		tx, err := store.Pool().Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		insertEvent(t, ctx, tx, n)
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}
	all, err := store.EventsAfter(ctx, 0, 10)
	if err != nil || len(all) != 4 {
		t.Fatalf("EventsAfter: %d events, %v", len(all), err)
	}
	clientOf := func(n string) string { return "client_" + n }
	for _, c := range []struct {
		name    string
		clients []string
		after   int64
		limit   int
		want    []string // session IDs
		read    int
		last    int64
	}{
		{"two clients of four", []string{clientOf("a1"), clientOf("c1")}, 0, 10, []string{"sess_a1", "sess_c1"}, 4, all[3].Seq},
		{"none listed", []string{}, 0, 10, nil, 4, all[3].Seq},
		{"every client", nil, 0, 10, []string{"sess_a1", "sess_b1", "sess_a2", "sess_c1"}, 4, all[3].Seq},
		{"a limit ends the read", []string{clientOf("c1")}, 0, 2, nil, 2, all[1].Seq},
		{"after the last", nil, all[3].Seq, 10, nil, 0, all[3].Seq},
	} {
		events, read, last, err := store.ClientsEventsAfter(ctx, c.clients, c.after, c.limit)
		var got []string
		for _, e := range events {
			got = append(got, e.Session.ID)
		}
		if err != nil || !slices.Equal(got, c.want) || read != c.read || last != c.last {
			t.Errorf("%s: %v, read %d, last %d, %v; want %v, %d, %d", c.name, got, read, last, err, c.want, c.read, c.last)
		}
	}
}
