package db_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sessiond/sessiond/internal/db"
	"github.com/sessiond/sessiond/internal/pgtest"
)

// insertEvent writes a session and its created event in tx, as a sign-in
// does (with the event's client and session snapshot), and returns the
// event's identity id.
func insertEvent(t *testing.T, ctx context.Context, tx pgx.Tx, n string) int64 {
	t.Helper()
	h := make([]byte, 32)
	_, _ = rand.Read(h)
	var id int64
	err := tx.QueryRow(ctx, `WITH c AS (INSERT INTO clients (id, created_at) VALUES ('client_'||$1, now()) RETURNING id),
		s AS (INSERT INTO sessions (id, token_hash, user_id, client_id, created_at, last_active_at, expires_at)
			SELECT 'sess_'||$1, $2, 'u', id, now(), now(), now() + interval '1 hour' FROM c RETURNING id)
		INSERT INTO session_events (session_id, old_status, new_status, at, actor, client_id, session)
		SELECT id, NULL, 'active', now(), 'test', 'client_'||$1, jsonb_build_object('id', id, 'user_id', 'u',
			'client_id', 'client_'||$1, 'status', 'active', 'created_at', now(), 'last_active_at', now(),
			'expires_at', now() + interval '1 hour', 'ended_at', NULL, 'user_agent', '', 'ip_address', '', 'metadata', '{}'::jsonb)
		FROM s RETURNING id`,
		n, h).Scan(&id)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// querier is a connection or a pool.
type querier interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}

// numberEvents runs a numbering, as a Hub does after a commit, and
// returns how many commits it numbered.
func numberEvents(t *testing.T, ctx context.Context, q querier) int {
	t.Helper()
	var n int
	if err := q.QueryRow(ctx, `SELECT session_events_number()`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// migratedTo makes a fresh database at migration version (the latest,
// then down) and returns its URL, its migrator (to go up again) and a
// connection to it, each closed when the test ends.
func migratedTo(t *testing.T, version uint) (string, *db.Migrator, *pgx.Conn) {
	t.Helper()
	url := pgtest.NewDatabase(t)
	m, err := db.NewMigrator(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	downTo(t, m, version)
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return url, m, conn
}

// downTo migrates m down to version from wherever it is.
func downTo(t *testing.T, m *db.Migrator, version uint) {
	t.Helper()
	v, _, err := m.Version()
	if err != nil || v < version {
		t.Fatalf("at version %d, %v; want at least %d", v, err, version)
	}
	if err := m.Down(int(v - version)); err != nil {
		t.Fatal(err)
	}
}

// commitSeq numbers what has committed and returns the Seq of the
// committed event with the given id.
func commitSeq(t *testing.T, ctx context.Context, q querier, id int64) int64 {
	t.Helper()
	numberEvents(t, ctx, q)
	var seq int64
	if err := q.QueryRow(ctx, `SELECT c.first_seq + (e.id - c.first_id) FROM session_events e
		JOIN session_event_commits c ON c.txn = e.txn WHERE e.id = $1`, id).Scan(&seq); err != nil {
		t.Fatal(err)
	}
	return seq
}

// beginTx begins a transaction of db, rolled back at the test's end
// unless committed.
func beginTx(t *testing.T, ctx context.Context, db interface {
	Begin(context.Context) (pgx.Tx, error)
}) pgx.Tx {
	t.Helper()
	tx, err := db.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tx.Rollback(context.Background()) })
	return tx
}

// commitEvents writes one event per name in one transaction of db, as
// insertEvent does, commits it and returns the events' identity ids.
func commitEvents(t *testing.T, ctx context.Context, db interface {
	Begin(context.Context) (pgx.Tx, error)
}, names ...string) []int64 {
	t.Helper()
	tx, err := db.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	ids := make([]int64, 0, len(names))
	for _, n := range names {
		ids = append(ids, insertEvent(t, ctx, tx, n))
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	return ids
}

// committedSessions numbers and reads every committed event, checks that
// their Seqs increase, and returns their session IDs in that order.
func committedSessions(t *testing.T, ctx context.Context, store *db.Store) []string {
	t.Helper()
	numberEvents(t, ctx, store.Pool())
	events, err := store.EventsAfter(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for i, e := range events {
		got = append(got, e.Session.ID)
		if i > 0 && e.Seq <= events[i-1].Seq {
			t.Errorf("%s numbered %d after %s's %d", e.Session.ID, e.Seq, events[i-1].Session.ID, events[i-1].Seq)
		}
	}
	return got
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
	first := beginTx(t, ctx, pool)
	firstID := insertEvent(t, ctx, first, "A")
	second := beginTx(t, ctx, pool)
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
		if _, err := store.NumberEvents(ctx); err != nil {
			t.Fatal(err)
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

// TestCommitNumbersOnlyItsOwnRows: a commit finds its own rows' range
// with two probes of the per-transaction index, whatever came before:
// 300 commits one after another read about two entries each. A count,
// not a timing: 000002 walked every earlier commit's dead index entries
// while it held the commit-order lock, each commit slower than the last,
// until sign-ins timed out. And every event belongs to a commit.
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
		commitEvents(t, ctx, conn, fmt.Sprint(i))
	}
	// Statistics reach the shared counters when the backend next goes
	// idle after a forced flush; poll until this backend's have arrived.
	var read int64
	for range 50 {
		if _, err := conn.Exec(ctx, `SELECT pg_stat_force_next_flush()`); err != nil {
			t.Fatal(err)
		}
		err := conn.QueryRow(ctx, `SELECT pg_stat_clear_snapshot(), idx_tup_read FROM pg_stat_user_indexes
			WHERE indexrelname = 'session_events_txn_idx'`).Scan(nil, &read)
		if err != nil {
			t.Fatal(err)
		}
		if read >= commits {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if read < commits || read > 4*commits {
		t.Fatalf("%d commits read %d entries of the per-transaction index; want about two each (at least %d, at most %d)", commits, read, commits, 4*commits)
	}
	numberEvents(t, ctx, conn)
	var orphans, commitRows int
	if err := conn.QueryRow(ctx, `SELECT (SELECT count(*) FROM session_events e WHERE NOT EXISTS
			(SELECT 1 FROM session_event_commits c WHERE c.txn = e.txn)), (SELECT count(*) FROM session_event_commits)`).
		Scan(&orphans, &commitRows); err != nil || orphans != 0 || commitRows != commits {
		t.Fatalf("%d events without a commit, %d commits (%v); want 0 and %d", orphans, commitRows, err, commits)
	}
}

// TestOneCommitNumbersAllItsEvents: a transaction of 1,000 events writes
// one commit row; its events are numbered in id order above everything
// committed before, and a reader paging 128 at a time gets each once, in
// order, then what committed after.
func TestOneCommitNumbersAllItsEvents(t *testing.T) {
	t.Parallel()
	store := pgtest.NewStore(t)
	ctx := context.Background()
	pool := store.Pool()
	before := commitEvents(t, ctx, pool, "before")
	var names []string
	for i := range 1000 {
		names = append(names, fmt.Sprintf("big%04d", i))
	}
	big := commitEvents(t, ctx, pool, names...)
	after := commitEvents(t, ctx, pool, "after")
	numberEvents(t, ctx, pool)
	var commits int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM session_event_commits`).Scan(&commits); err != nil || commits != 3 {
		t.Fatalf("%d commit rows (%v); want 3", commits, err)
	}
	var got []string
	var cursor int64
	for {
		batch, err := store.EventsAfter(ctx, cursor, 128)
		if err != nil {
			t.Fatal(err)
		}
		if len(batch) == 0 {
			break
		}
		for _, e := range batch {
			if e.Seq <= cursor {
				t.Fatalf("event %d of %s after %d", e.Seq, e.Session.ID, cursor)
			}
			got, cursor = append(got, strings.TrimPrefix(e.Session.ID, "sess_")), e.Seq
		}
	}
	want := append(append([]string{"before"}, names...), "after")
	if !slices.Equal(got, want) {
		t.Fatalf("read %d events (%.3v…); want %d in commit and id order", len(got), got, len(want))
	}
	if s0, s1, s2 := commitSeq(t, ctx, pool, before[0]), commitSeq(t, ctx, pool, big[0]), commitSeq(t, ctx, pool, after[0]); !(s0 < s1 && s1+999 <= commitSeq(t, ctx, pool, big[999]) && commitSeq(t, ctx, pool, big[999]) < s2) {
		t.Fatalf("seqs before %d, big %d…%d, after %d; want increasing", s0, s1, commitSeq(t, ctx, pool, big[999]), s2)
	}
	latest, err := store.LatestEventSeq(ctx)
	if err != nil || latest != cursor {
		t.Fatalf("LatestEventSeq %d, %v; want the last event's %d", latest, err, cursor)
	}
}

// TestSavepointRolledBackLeavesTheRestNumbered: events written in a
// savepoint that rolls back are gone with their transaction key; the
// transaction's other events, before and after, are numbered and read.
func TestSavepointRolledBackLeavesTheRestNumbered(t *testing.T) {
	t.Parallel()
	store := pgtest.NewStore(t)
	ctx := context.Background()
	for _, firstInSavepoint := range []bool{false, true} {
		tx, err := store.Pool().Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		p := fmt.Sprint(firstInSavepoint)
		if !firstInSavepoint {
			insertEvent(t, ctx, tx, p+"kept1")
		}
		sp, err := tx.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		insertEvent(t, ctx, sp, p+"dropped")
		if err := sp.Rollback(ctx); err != nil {
			t.Fatal(err)
		}
		insertEvent(t, ctx, tx, p+"kept2")
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := committedSessions(t, ctx, store), []string{"sess_falsekept1", "sess_falsekept2", "sess_truekept2"}; !slices.Equal(got, want) {
		t.Fatalf("committed events of %v; want %v", got, want)
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
	long := beginTx(t, ctx, pool)
	first := insertEvent(t, ctx, long, "first")
	other := beginTx(t, ctx, pool)
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
		commitEvents(t, ctx, store.Pool(), n)
	}
	numberEvents(t, ctx, store.Pool())
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

// TestEventsKeepTheirNumbersAcrossMigration4: events numbered row by row
// (000003) keep their numbers when 000004 numbers per commit, what
// commits afterwards comes after them, and going down again gives every
// row its number back.
func TestEventsKeepTheirNumbersAcrossMigration4(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// At 000003, from the latest (later migrations do not touch the
	// numbering).
	url, m, conn := migratedTo(t, 3)
	commitEvents(t, ctx, conn, "old1")
	commitEvents(t, ctx, conn, "old2", "old3")
	seqOf := func(q string) map[string]int64 {
		got := map[string]int64{}
		rows, err := conn.Query(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		var id string
		var seq int64
		if _, err := pgx.ForEachRow(rows, []any{&id, &seq}, func() error { got[id] = seq; return nil }); err != nil {
			t.Fatal(err)
		}
		return got
	}
	oldSeqs := seqOf(`SELECT session_id, commit_seq FROM session_events`)
	if err := m.Up(); err != nil {
		t.Fatal(err)
	}
	commitEvents(t, ctx, conn, "new")
	numberEvents(t, ctx, conn)
	store, err := db.Open(ctx, url, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	events, err := store.EventsAfter(ctx, 0, 10)
	if err != nil || len(events) != 4 {
		t.Fatalf("EventsAfter: %d events, %v; want 4", len(events), err)
	}
	for i, e := range events[:3] {
		if want := oldSeqs[e.Session.ID]; e.Seq != want || e.Session.ID != fmt.Sprintf("sess_old%d", i+1) {
			t.Errorf("event %d: %s numbered %d; want sess_old%d with its old number %d", i, e.Session.ID, e.Seq, i+1, want)
		}
	}
	if e := events[3]; e.Session.ID != "sess_new" || e.Seq <= events[2].Seq {
		t.Errorf("the event after the migration: %s numbered %d; want sess_new above %d", e.Session.ID, e.Seq, events[2].Seq)
	}
	newSeq := events[3].Seq
	store.Close()

	downTo(t, m, 3)
	got := seqOf(`SELECT session_id, commit_seq FROM session_events`)
	oldSeqs["sess_new"] = newSeq
	if !maps.Equal(got, oldSeqs) {
		t.Fatalf("after going down: %v; want %v", got, oldSeqs)
	}
}

// TestImmediateTriggerStillNumbersEveryRowOnce: SQL outside sessiond that
// makes the commit trigger IMMEDIATE writes rows after it has fired; they
// get a range of their own above the first, never a number inside
// another commit's range.
func TestImmediateTriggerStillNumbersEveryRowOnce(t *testing.T) {
	t.Parallel()
	store := pgtest.NewStore(t)
	ctx := context.Background()
	tx := beginTx(t, ctx, store.Pool())
	if _, err := tx.Exec(ctx, `SET CONSTRAINTS session_events_sequence IMMEDIATE`); err != nil {
		t.Fatal(err)
	}
	insertEvent(t, ctx, tx, "im1")
	insertEvent(t, ctx, tx, "im2")
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	commitEvents(t, ctx, store.Pool(), "im3")
	if got, want := committedSessions(t, ctx, store), []string{"sess_im1", "sess_im2", "sess_im3"}; !slices.Equal(got, want) {
		t.Fatalf("committed events of %v; want %v", got, want)
	}
}

// TestClientEventsAfterFindsLowerIDsCommittedLater: a page resuming
// after Last-Event-ID (ClientsEventsAfter with its one client) gets its
// client's event from a transaction that inserted before, and committed
// after, the event it last saw, although that event has the lower id.
func TestClientEventsAfterFindsLowerIDsCommittedLater(t *testing.T) {
	t.Parallel()
	store := pgtest.NewStore(t)
	ctx := context.Background()
	pool := store.Pool()
	long := beginTx(t, ctx, pool)
	insertEvent(t, ctx, long, "late")
	other := beginTx(t, ctx, pool)
	seen := insertEvent(t, ctx, other, "seen")
	if err := other.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	seenSeq := commitSeq(t, ctx, pool, seen) // as a reader that read it then
	if err := long.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	numberEvents(t, ctx, pool)
	events, _, _, err := store.ClientsEventsAfter(ctx, []string{"client_late"}, seenSeq, 10)
	if err != nil || len(events) != 1 || events[0].Session.ID != "sess_late" {
		t.Fatalf("ClientsEventsAfter: %+v, %v; want the late commit's event", events, err)
	}
	if events, _, _, err := store.ClientsEventsAfter(ctx, []string{"client_late"}, events[0].Seq, 10); err != nil || len(events) != 0 {
		t.Fatalf("ClientsEventsAfter its own Seq: %+v, %v; want none", events, err)
	}
}

// planNodes returns every node of an EXPLAIN (FORMAT JSON) plan.
func planNodes(node map[string]any) []map[string]any {
	nodes := []map[string]any{node}
	children, _ := node["Plans"].([]any)
	for _, c := range children {
		if m, ok := c.(map[string]any); ok {
			nodes = append(nodes, planNodes(m)...)
		}
	}
	return nodes
}

// TestCatchUpReadsByIndex: a page catching up (ClientsEventsAfter with
// its one client) from position 0 over 50,000 commits reads one page:
// session_event_commits by the index of last_seq, at most limit of its
// rows, never a scan of the table (the statement it replaced took the
// min(first_id) of every commit past the position: 547 ms over 3,000,000
// commits), with a custom plan and with the generic plan a prepared
// statement may switch to. Counted from EXPLAIN ANALYZE, not timed.
func TestCatchUpReadsByIndex(t *testing.T) {
	t.Parallel()
	store := pgtest.NewStore(t)
	ctx := context.Background()
	conn, err := store.Pool().Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	// 50,000 one-event commits, written as 000004 numbered the rows it
	// found (the commit trigger is off meanwhile: it numbers one
	// transaction, and this is one transaction).
	const commits, limit = 50000, 1000
	for _, q := range []string{
		`ALTER TABLE session_events DISABLE TRIGGER session_events_sequence`,
		`INSERT INTO session_events (session_id, old_status, new_status, at, actor, client_id, session, txn)
			SELECT 'sess_bulk' || g, NULL, 'active', now(), 'test', 'client_bulk' || (g % 1000), '{}'::jsonb, -g
			FROM generate_series(1, ` + fmt.Sprint(commits) + `) g`,
		`INSERT INTO session_event_commits (first_seq, last_seq, txn, first_id) SELECT id, id, txn, id FROM session_events`,
		`SELECT setval('session_events_commit_seq', (SELECT max(last_seq) FROM session_event_commits))`,
		`ALTER TABLE session_events ENABLE TRIGGER session_events_sequence`,
		`ANALYZE session_events, session_event_commits`,
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	commitEvents(t, ctx, store.Pool(), "mine")
	numberEvents(t, ctx, store.Pool()) // committed events wait for the sequencer

	check := func(name string, plan []byte) {
		t.Helper()
		var doc []struct{ Plan map[string]any }
		if err := json.Unmarshal(plan, &doc); err != nil || len(doc) != 1 {
			t.Fatalf("%s: plan %s: %v", name, plan, err)
		}
		var read float64
		for _, n := range planNodes(doc[0].Plan) {
			if n["Relation Name"] != "session_event_commits" {
				continue
			}
			if n["Node Type"] == "Seq Scan" {
				t.Errorf("%s: a sequential scan of session_event_commits:\n%s", name, plan)
			}
			rows, _ := n["Actual Rows"].(float64)
			loops, _ := n["Actual Loops"].(float64)
			read += rows * loops
		}
		t.Logf("%s: read %.0f rows of session_event_commits (of %d) for one page of %d", name, read, commits+1, limit)
		if read == 0 || read > limit+1 {
			t.Errorf("%s: read %.0f rows of session_event_commits; want at most one page (%d)", name, read, limit+1)
		}
	}
	var plan []byte
	if err := conn.QueryRow(ctx, `EXPLAIN (ANALYZE, FORMAT JSON) `+db.ClientsEventsAfterSQL,
		0, []string{"client_mine"}, false, limit).Scan(&plan); err != nil {
		t.Fatal(err)
	}
	check("custom plan", plan)
	for _, q := range []string{`SET plan_cache_mode = force_generic_plan`, `PREPARE catch_up AS ` + db.ClientsEventsAfterSQL} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	defer conn.Exec(ctx, `DEALLOCATE catch_up; RESET plan_cache_mode`)
	if err := conn.QueryRow(ctx, `EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE catch_up(0, '{client_mine}', false, `+fmt.Sprint(limit)+`)`).
		Scan(&plan); err != nil {
		t.Fatal(err)
	}
	check("generic plan", plan)

	// And the page is right: the read ends after limit numbers, none of
	// them the client's; paging on reaches its event.
	events, read, last, err := store.ClientsEventsAfter(ctx, []string{"client_mine"}, 0, limit)
	if err != nil || len(events) != 0 || read != limit || last != limit {
		t.Fatalf("first page: %d events, read %d, last %d, %v; want 0, %d, %d", len(events), read, last, err, limit, limit)
	}
	events, _, _, err = store.ClientsEventsAfter(ctx, []string{"client_mine"}, commits-1, limit)
	if err != nil || len(events) != 1 || events[0].Session.ID != "sess_mine" {
		t.Fatalf("last page: %+v, %v; want the client's one event", events, err)
	}
}

// TestMigration6ForgetsSessionsSweptBefore: events of sessions the
// sweeper deleted before 000006 lose their snapshot when it runs (so no
// stream replays them), events of sessions that still exist keep theirs,
// and every audit row stays.
func TestMigration6ForgetsSessionsSweptBefore(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, m, conn := migratedTo(t, 5)
	commitEvents(t, ctx, conn, "swept", "kept")
	if _, err := conn.Exec(ctx, `DELETE FROM sessions WHERE id = 'sess_swept'`); err != nil { // as the sweeper did before 000006
		t.Fatal(err)
	}
	if err := m.Up(); err != nil {
		t.Fatal(err)
	}
	var rows, sweptSnapshots, keptSnapshots int
	if err := conn.QueryRow(ctx, `SELECT count(*), count(session) FILTER (WHERE session_id = 'sess_swept'),
		count(session) FILTER (WHERE session_id = 'sess_kept') FROM session_events`).Scan(&rows, &sweptSnapshots, &keptSnapshots); err != nil {
		t.Fatal(err)
	}
	if rows != 2 || sweptSnapshots != 0 || keptSnapshots != 1 {
		t.Fatalf("%d audit rows, %d snapshots of the swept session, %d of the kept one; want 2, 0, 1", rows, sweptSnapshots, keptSnapshots)
	}
}

// TestWebhookPositionsKeyedByHashAcrossMigration5: 000005 keeps each
// URL's position under the hex SHA-256 of the URL, and the URL itself
// (which may hold a secret) is gone from the database.
func TestWebhookPositionsKeyedByHashAcrossMigration5(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, m, conn := migratedTo(t, 4)
	const hook = "https://user:PASS@hooks.example/services/T0/SECRETPATH?token=SECRETQUERY"
	if _, err := conn.Exec(ctx, `INSERT INTO webhook_positions (url, position) VALUES ($1, 42)`, hook); err != nil {
		t.Fatal(err)
	}
	if err := m.Up(); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(hook))
	var pos int64
	if err := conn.QueryRow(ctx, `SELECT position FROM webhook_positions WHERE url_hash = $1`, hex.EncodeToString(sum[:])).Scan(&pos); err != nil || pos != 42 {
		t.Fatalf("position under the URL's hash: %d, %v; want 42", pos, err)
	}
	var dump string
	if err := conn.QueryRow(ctx, `SELECT string_agg(row_to_json(w)::text, ' ') FROM webhook_positions w`).Scan(&dump); err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"PASS", "SECRETPATH", "SECRETQUERY"} {
		if strings.Contains(dump, secret) {
			t.Errorf("webhook_positions still holds %q: %s", secret, dump)
		}
	}
}
