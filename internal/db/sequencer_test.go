package db_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sessiond/sessiond/internal/db"
	"github.com/sessiond/sessiond/internal/pgtest"
)

// seenEvent is an event as a reader of the ordering under test saw it.
type seenEvent struct {
	seq   int64
	actor string
}

// orderingVariant is the ordering TestNumberingGivesGapFreeCausalPrefixes
// checks: empty for sessiond's. SESSIOND_TEST_EVENT_ORDER=by-id (readers
// follow the identity, as if numbered at insert) or first-id (the
// numbering orders a batch by lowest id) runs the same test against a
// naive ordering, to see that it catches it; both fail.
var orderingVariant = os.Getenv("SESSIOND_TEST_EVENT_ORDER")

// TestNumberingGivesGapFreeCausalPrefixes: 8 writers commit 480
// transactions on 6 causal chains (each transaction locks its chain's
// row, then writes one to three events carrying the chain's next step;
// half of them write an unrelated event before they take the lock).
// Every commit is held open for a few random milliseconds after its
// events trigger has run (a deferred trigger that sleeps), so commits
// finish out of insert order. Three "replicas" number at random moments
// while two readers poll at random moments. Each reader must see every
// committed event exactly once (a number below its cursor appearing
// later would be missed: a gap), in increasing numbers, and each chain's
// steps in order.
func TestNumberingGivesGapFreeCausalPrefixes(t *testing.T) {
	t.Parallel()
	store := pgtest.NewStore(t)
	ctx := context.Background()
	pool := store.Pool()
	const chains, writers, each = 6, 8, 60
	if _, err := pool.Exec(ctx, fmt.Sprintf(`
		CREATE TABLE chains (id int PRIMARY KEY, step int NOT NULL DEFAULT 0);
		INSERT INTO chains (id) SELECT generate_series(1, %d);
		-- Fires after session_events_sequence (triggers of one event fire
		-- in name order): the pending row is written, the commit not done.
		CREATE FUNCTION hold_commit() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN PERFORM pg_sleep(random() * 0.004); RETURN NULL; END $$;
		CREATE CONSTRAINT TRIGGER zz_hold_commit AFTER INSERT ON session_events
			DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
			WHEN (NEW.actor <> 'noise') EXECUTE FUNCTION hold_commit();`, chains)); err != nil {
		t.Fatal(err)
	}
	if orderingVariant == "first-id" {
		var def string
		if err := pool.QueryRow(ctx, `SELECT pg_get_functiondef('session_events_number'::regproc)`).Scan(&def); err != nil {
			t.Fatal(err)
		}
		if _, err := pool.Exec(ctx, strings.Replace(def, "ORDER BY last_id", "ORDER BY first_id", 1)); err != nil {
			t.Fatal(err)
		}
	}
	read := func(ctx context.Context, after int64) ([]seenEvent, error) {
		events, err := store.EventsAfter(ctx, after, 50)
		var seen []seenEvent
		for _, e := range events {
			seen = append(seen, seenEvent{e.Seq, e.Actor})
		}
		return seen, err
	}
	if orderingVariant == "by-id" {
		read = func(ctx context.Context, after int64) ([]seenEvent, error) {
			rows, _ := pool.Query(ctx, `SELECT id, actor FROM session_events WHERE id > $1 ORDER BY id LIMIT 50`, after)
			return pgx.CollectRows(rows, func(row pgx.CollectableRow) (seenEvent, error) {
				var e seenEvent
				return e, row.Scan(&e.seq, &e.actor)
			})
		}
	}

	var writing sync.WaitGroup
	for w := range writers {
		writing.Go(func() {
			for i := range each {
				if err := writeStep(ctx, store, 1+rand.IntN(chains), rand.IntN(2) == 0, 1+rand.IntN(3)); err != nil {
					t.Errorf("writer %d, transaction %d: %v", w, i, err)
					return
				}
			}
		})
	}
	written := make(chan struct{})
	go func() { writing.Wait(); close(written) }()

	var background sync.WaitGroup
	for range 3 {
		background.Go(func() {
			for {
				select {
				case <-written:
					return
				case <-time.After(time.Duration(rand.IntN(8000)) * time.Microsecond):
				}
				if _, err := store.NumberEvents(ctx); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	logs := make([][]seenEvent, 2)
	for r := range logs {
		background.Go(func() {
			var cursor int64
			for finished := false; ; {
				select {
				case <-written:
					finished = true
				case <-time.After(time.Duration(rand.IntN(2000)) * time.Microsecond):
				}
				if finished && orderingVariant != "by-id" {
					// Every commit is in; number what the random
					// numberings left, then read to the end.
					if _, err := store.NumberEvents(ctx); err != nil {
						t.Error(err)
						return
					}
				}
				for {
					batch, err := read(ctx, cursor)
					if err != nil {
						t.Error(err)
						return
					}
					for _, e := range batch {
						if e.seq <= cursor {
							t.Errorf("reader %d: %d after %d", r, e.seq, cursor)
						}
						cursor = e.seq
					}
					logs[r] = append(logs[r], batch...)
					if len(batch) < 50 {
						break
					}
				}
				if finished {
					return
				}
			}
		})
	}
	background.Wait()
	if t.Failed() {
		return
	}

	var total int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM session_events`).Scan(&total); err != nil {
		t.Fatal(err)
	}
	for r, log := range logs {
		checkCausalLog(t, fmt.Sprintf("reader %d", r), log, total)
	}
}

// writeStep commits one transaction of chain: optionally an unrelated
// event first, then the chain's row lock, then events events of the
// chain's next step, "chain:step:index".
func writeStep(ctx context.Context, store *db.Store, chain int, noiseFirst bool, events int) error {
	tx, err := store.Pool().Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	insert := func(actor string) error {
		_, err := tx.Exec(ctx, `INSERT INTO session_events (session_id, old_status, new_status, at, actor, client_id, session)
			VALUES ('s', NULL, 'active', now(), $1, 'c', '{"id": "s", "client_id": "c", "status": "active"}')`, actor)
		return err
	}
	if noiseFirst {
		if err := insert("noise"); err != nil {
			return err
		}
	}
	// The lock is held a moment before the events are written, so that
	// others' unrelated events get ids in between.
	var step int
	if err := tx.QueryRow(ctx, `WITH next AS (UPDATE chains SET step = step + 1 WHERE id = $1 RETURNING step)
		SELECT step FROM next, pg_sleep(random() * 0.002)`, chain).Scan(&step); err != nil {
		return err
	}
	for i := range events {
		if err := insert(fmt.Sprintf("%d:%d:%d", chain, step, i)); err != nil {
			return err
		}
	}
	return tx.Commit(ctx)
}

// checkCausalLog checks that log holds total events, each once, and each
// chain's events in step order, a step's events together and in order.
func checkCausalLog(t *testing.T, who string, log []seenEvent, total int) {
	t.Helper()
	if len(log) != total {
		t.Errorf("%s saw %d events of %d committed: a gap (a number below the cursor became visible after the reader passed it) or a repeat", who, len(log), total)
	}
	type position struct{ step, index int }
	last := map[int]position{}
	for _, e := range log {
		if e.actor == "noise" {
			continue
		}
		var chain int
		var p position
		if _, err := fmt.Sscanf(e.actor, "%d:%d:%d", &chain, &p.step, &p.index); err != nil {
			t.Fatalf("%s: event actor %q: %v", who, e.actor, err)
		}
		prev, ok := last[chain]
		if !ok {
			prev = position{0, -1}
		}
		next := (p.step == prev.step && p.index == prev.index+1) || (p.step == prev.step+1 && p.index == 0)
		if !next {
			t.Errorf("%s: chain %d step %d event %d (number %d) after step %d event %d: out of causal order",
				who, chain, p.step, p.index, e.seq, prev.step, prev.index)
			return
		}
		last[chain] = p
	}
}

// TestNumberingOrdersAWaiterAfterWhatItWaitedFor: B writes an event, then
// waits for a lock A holds; A writes its event (a higher id than B's
// first) and commits; B goes on, writes an event that depends on A's and
// commits. Both are numbered in one batch: B's events must come after
// A's. Ordering a batch by each transaction's lowest id puts B first.
func TestNumberingOrdersAWaiterAfterWhatItWaitedFor(t *testing.T) {
	t.Parallel()
	store := pgtest.NewStore(t)
	ctx := context.Background()
	pool := store.Pool()
	if _, err := pool.Exec(ctx, `CREATE TABLE chains (id int PRIMARY KEY, step int NOT NULL DEFAULT 0);
		INSERT INTO chains (id) VALUES (1)`); err != nil {
		t.Fatal(err)
	}
	a := beginTx(t, ctx, pool)
	if _, err := a.Exec(ctx, `SELECT 1 FROM chains WHERE id = 1 FOR UPDATE`); err != nil {
		t.Fatal(err)
	}
	var bPID int
	bDone := make(chan error, 1)
	bConn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer bConn.Release()
	if err := bConn.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&bPID); err != nil {
		t.Fatal(err)
	}
	go func() {
		tx, err := bConn.Begin(ctx)
		if err == nil {
			defer tx.Rollback(ctx)
			for _, q := range []string{
				`INSERT INTO session_events (session_id, new_status, at, actor, client_id, session) VALUES ('b', 'active', now(), 'b first', 'c', '{}')`,
				`UPDATE chains SET step = step + 1 WHERE id = 1`,
				`INSERT INTO session_events (session_id, new_status, at, actor, client_id, session) VALUES ('b', 'active', now(), 'b after a', 'c', '{}')`,
			} {
				if _, err = tx.Exec(ctx, q); err != nil {
					break
				}
			}
			if err == nil {
				err = tx.Commit(ctx)
			}
		}
		bDone <- err
	}()
	// The bound only catches a hang.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		var waiting bool
		if err := pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_locks WHERE pid = $1 AND NOT granted)`, bPID).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("B never waited for A's lock")
		}
	}
	if _, err := a.Exec(ctx, `INSERT INTO session_events (session_id, new_status, at, actor, client_id, session) VALUES ('a', 'active', now(), 'a', 'c', '{}')`); err != nil {
		t.Fatal(err)
	}
	if err := a.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-bDone; err != nil {
		t.Fatal(err)
	}
	if n := numberEvents(t, ctx, pool); n != 2 {
		t.Fatalf("numbered %d commits in one batch; want A and B", n)
	}
	events, err := store.EventsAfter(ctx, 0, 10)
	var got []string
	for _, e := range events {
		got = append(got, e.Actor)
	}
	if err != nil || strings.Join(got, ", ") != "a, b first, b after a" {
		t.Fatalf("events %v, %v; want a, b first, b after a", got, err)
	}
}

// TestNumberingWaitsForNothingInFlight: an open transaction that has
// written events holds no one up; its events are numbered after it
// commits, above everything numbered meanwhile. A numbering in
// REPEATABLE READ is refused rather than done on an old snapshot.
func TestNumberingWaitsForNothingInFlight(t *testing.T) {
	t.Parallel()
	store := pgtest.NewStore(t)
	ctx := context.Background()
	pool := store.Pool()
	long := beginTx(t, ctx, pool)
	longID := insertEvent(t, ctx, long, "long")
	quick := commitEvents(t, ctx, pool, "quick")
	if n := numberEvents(t, ctx, pool); n != 1 {
		t.Fatalf("numbered %d commits; want the one committed", n)
	}
	quickSeq := commitSeq(t, ctx, pool, quick[0])
	if err := long.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if longSeq := commitSeq(t, ctx, pool, longID); longSeq <= quickSeq {
		t.Fatalf("long transaction numbered %d, not above %d", longSeq, quickSeq)
	}
	rr, err := pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead})
	if err != nil {
		t.Fatal(err)
	}
	defer rr.Rollback(ctx)
	if _, err := rr.Exec(ctx, `SELECT session_events_number()`); err == nil || !strings.Contains(err.Error(), "READ COMMITTED") {
		t.Fatalf("numbering in REPEATABLE READ: %v; want it refused", err)
	}
}

// TestEventsKeepTheirNumbersAcrossMigration7: on a database with events
// numbered at commit (000004), 000007 changes no number; a transaction
// that wrote events before the migration and commits after it is
// numbered by the sequencer, above the rest; and going down numbers what
// is pending and keeps every number.
func TestEventsKeepTheirNumbersAcrossMigration7(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url, m, conn := migratedTo(t, 6)
	for i := range 50 {
		names := []string{fmt.Sprintf("old%d", i)}
		if i%7 == 0 {
			names = append(names, fmt.Sprintf("old%db", i), fmt.Sprintf("old%dc", i))
		}
		commitEvents(t, ctx, conn, names...)
	}
	seqs := func() map[string]int64 {
		rows, _ := conn.Query(ctx, `SELECT e.session_id, c.first_seq + (e.id - c.first_id)
			FROM session_events e JOIN session_event_commits c ON c.txn = e.txn`)
		got := map[string]int64{}
		var id string
		var seq int64
		if _, err := pgx.ForEachRow(rows, []any{&id, &seq}, func() error { got[id] = seq; return nil }); err != nil {
			t.Fatal(err)
		}
		return got
	}
	before := seqs()
	if len(before) != 50+2*8 {
		t.Fatalf("%d numbered events under 000004; want %d", len(before), 50+2*8)
	}
	// In flight across the migration: its commit trigger is queued under
	// 000004 and fires under 000007.
	inFlight, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer inFlight.Close(ctx)
	flying := beginTx(t, ctx, inFlight)
	insertEvent(t, ctx, flying, "inflight")
	if err := m.Up(); err != nil {
		t.Fatal(err)
	}
	if err := flying.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	commitEvents(t, ctx, conn, "new")
	if n := numberEvents(t, ctx, conn); n != 2 {
		t.Fatalf("numbered %d commits after the migration; want 2", n)
	}
	after := seqs()
	var highest int64
	for id, seq := range before {
		if after[id] != seq {
			t.Errorf("%s: numbered %d before 000007, %d after", id, seq, after[id])
		}
		highest = max(highest, seq)
	}
	if !(after["sess_inflight"] > highest && after["sess_new"] > after["sess_inflight"]) {
		t.Errorf("in flight %d, new %d; want both above %d, in that order", after["sess_inflight"], after["sess_new"], highest)
	}

	// Down with a commit not numbered yet: the down migration numbers it.
	commitEvents(t, ctx, conn, "pending")
	if err := m.Down(1); err != nil {
		t.Fatal(err)
	}
	commitEvents(t, ctx, conn, "under4") // numbered at its commit again
	// This binary on the database gone down: nothing to number, and the
	// newest number is the newest commit's.
	store, err := db.Open(ctx, url, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if n, err := store.NumberEvents(ctx); n != 0 || err != nil {
		t.Fatalf("NumberEvents under 000004: %d, %v; want 0, nil", n, err)
	}
	latest, err := store.LatestEventSeq(ctx)
	if err != nil {
		t.Fatal(err)
	}
	down := seqs()
	if latest != down["sess_under4"] {
		t.Errorf("LatestEventSeq under 000004: %d; want the last commit's %d", latest, down["sess_under4"])
	}
	for id, seq := range after {
		if down[id] != seq {
			t.Errorf("%s: numbered %d under 000007, %d after going down", id, seq, down[id])
		}
	}
	if !(down["sess_pending"] > after["sess_new"] && down["sess_under4"] > down["sess_pending"]) {
		t.Errorf("pending %d, under4 %d; want both above %d, in that order", down["sess_pending"], down["sess_under4"], after["sess_new"])
	}
}
