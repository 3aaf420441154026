package db_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/oklog/ulid/v2"

	"github.com/sessiond/sessiond/internal/db"
	"github.com/sessiond/sessiond/internal/pgtest"
	"github.com/sessiond/sessiond/internal/sessions"
)

// The contract of sessions.Store, run against real Postgres: what each
// method promises, and the rules the database itself enforces (the partial
// unique index, the terminal-status trigger, the audit rows) whatever
// code talks to it.

var (
	ctx = context.Background()
	// t0 is the tests' "now"; Postgres keeps microseconds.
	t0 = time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
)

const (
	lifetime = 168 * time.Hour
	apiActor = "api_key:0123456789ab"
)

func newClientID() string  { return "client_" + ulid.Make().String() }
func newSessionID() string { return "sess_" + ulid.Make().String() }

// lockErr is the error of a Lock that names no own session.
func lockErr(_ sessions.Session, err error) error { return err }

// signInLocks are the locks of a sign-in of userID on clientID.
func signInLocks(clientID, userID string) sessions.Locks {
	return sessions.Locks{ClientID: clientID, UserID: userID, NewUser: true, Sessions: sessions.Selector{ClientID: clientID}}
}

// inTx runs fn in a transaction and fails the test if it fails.
func inTx(t *testing.T, s *db.Store, fn func(tx sessions.Tx) error) {
	t.Helper()
	if err := s.InTx(ctx, fn); err != nil {
		t.Fatal(err)
	}
}

// mustClient creates a client.
func mustClient(t *testing.T, s *db.Store) string {
	t.Helper()
	id := newClientID()
	inTx(t, s, func(tx sessions.Tx) error { return db.CreateClient(ctx, tx, id, t0) })
	return id
}

// newSession is an active session of userID on clientID, created (and
// last active) at at.
func newSession(userID, clientID string, at time.Time) sessions.Session {
	return sessions.Session{
		ID: newSessionID(), UserID: userID, ClientID: clientID, Status: sessions.StatusActive,
		CreatedAt: at, LastActiveAt: at, ExpiresAt: at.Add(lifetime),
		UserAgent: "test", IPAddress: "203.0.113.7", Metadata: json.RawMessage(`{}`),
	}
}

// insert stores a new active session in its own transaction.
func insert(s *db.Store, sess sessions.Session) error {
	return s.InTx(ctx, func(tx sessions.Tx) error {
		return tx.InsertSession(ctx, sessions.Insert{Session: sess, TokenHash: sessions.HashToken(sess.ID), Actor: apiActor})
	})
}

// mustSession stores a new active session of userID on clientID.
func mustSession(t *testing.T, s *db.Store, userID, clientID string, at time.Time) sessions.Session {
	t.Helper()
	sess := newSession(userID, clientID, at)
	if err := insert(s, sess); err != nil {
		t.Fatal(err)
	}
	return sess
}

// mustEnd ends one active session with the given status.
func mustEnd(t *testing.T, s *db.Store, id string, status sessions.Status, at time.Time) {
	t.Helper()
	var ended []sessions.Session
	inTx(t, s, func(tx sessions.Tx) (err error) {
		ended, err = tx.EndSessions(ctx, sessions.Selector{SessionID: id}, sessions.Ending{Status: status, At: at, Actor: apiActor})
		return err
	})
	if len(ended) != 1 {
		t.Fatalf("ending %s ended %d sessions", id, len(ended))
	}
}

// mustTouch sets a session's last_active_at.
func mustTouch(t *testing.T, s *db.Store, id string, at time.Time) {
	t.Helper()
	if err := s.TouchSession(ctx, id, at); err != nil {
		t.Fatal(err)
	}
}

// read returns a session as stored.
func read(t *testing.T, s *db.Store, id string) sessions.Session {
	t.Helper()
	var sess sessions.Session
	inTx(t, s, func(tx sessions.Tx) (err error) {
		sess, err = tx.Session(ctx, id, sessions.Scope{})
		return err
	})
	return sess
}

// exists reports whether table holds a row with this id.
func exists(t *testing.T, s *db.Store, table, id string) bool {
	t.Helper()
	var ok bool
	col := "id"
	if table == "session_users" {
		col = "user_id"
	}
	q := fmt.Sprintf(`SELECT EXISTS (SELECT 1 FROM %s WHERE %s = $1)`, table, col)
	if err := s.Pool().QueryRow(ctx, q, id).Scan(&ok); err != nil {
		t.Fatal(err)
	}
	return ok
}

// event is one audit row.
type event struct {
	Old, New string
	At       time.Time
	Actor    string
}

// events returns a session's audit rows in order.
func events(t *testing.T, s *db.Store, id string) []event {
	t.Helper()
	rows, err := s.Pool().Query(ctx, `SELECT coalesce(old_status, ''), new_status, at, actor FROM session_events WHERE session_id = $1 ORDER BY id`, id)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var evs []event
	for rows.Next() {
		var e event
		if err := rows.Scan(&e.Old, &e.New, &e.At, &e.Actor); err != nil {
			t.Fatal(err)
		}
		e.At = e.At.UTC()
		evs = append(evs, e)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return evs
}

// wantPgError fails unless err carries a Postgres error with this SQLSTATE
// and, if given, constraint.
func wantPgError(t *testing.T, err error, code, constraint string) {
	t.Helper()
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		t.Fatalf("got %v, want Postgres error %s", err, code)
	}
	if pgErr.Code != code || (constraint != "" && pgErr.ConstraintName != constraint) {
		t.Fatalf("got SQLSTATE %s on %q (%v), want %s on %q", pgErr.Code, pgErr.ConstraintName, err, code, constraint)
	}
}

func ids(ss []sessions.Session) []string {
	out := make([]string, 0, len(ss))
	for _, s := range ss {
		out = append(out, s.ID)
	}
	slices.Sort(out)
	return out
}

func sorted(ids ...string) []string {
	out := slices.Clone(ids)
	slices.Sort(out)
	if out == nil {
		out = []string{}
	}
	return out
}

func TestInsertSession(t *testing.T) {
	t.Parallel()
	s := pgtest.NewStore(t)
	c := mustClient(t, s)
	want := newSession("alice", c, t0)
	want.Metadata = json.RawMessage(`{"plan": "pro"}`)
	if err := insert(s, want); err != nil {
		t.Fatal(err)
	}
	got := read(t, s, want.ID)
	var gotMeta, wantMeta any
	_ = json.Unmarshal(got.Metadata, &gotMeta)
	_ = json.Unmarshal(want.Metadata, &wantMeta)
	got.Metadata, want.Metadata = nil, nil
	if fmt.Sprint(got) != fmt.Sprint(want) || fmt.Sprint(gotMeta) != fmt.Sprint(wantMeta) {
		t.Errorf("read back %+v %v, want %+v %v", got, gotMeta, want, wantMeta)
	}
	byToken, err := s.SessionByTokenHash(ctx, sessions.HashToken(want.ID))
	if err != nil || byToken.ID != want.ID {
		t.Errorf("SessionByTokenHash: %v, %v", byToken.ID, err)
	}
	if evs := events(t, s, want.ID); !slices.Equal(evs, []event{{"", "active", t0, apiActor}}) {
		t.Errorf("audit rows %+v, want one creation row", evs)
	}

	t.Run("unknown session or token is ErrSessionNotFound", func(t *testing.T) {
		if _, err := s.SessionByTokenHash(ctx, sessions.HashToken("unknown")); !errors.Is(err, sessions.ErrSessionNotFound) {
			t.Errorf("SessionByTokenHash: %v, want ErrSessionNotFound", err)
		}
		err := s.InTx(ctx, func(tx sessions.Tx) error { _, err := tx.Session(ctx, newSessionID(), sessions.Scope{}); return err })
		if !errors.Is(err, sessions.ErrSessionNotFound) {
			t.Errorf("Session: %v, want ErrSessionNotFound", err)
		}
	})
	t.Run("a session on an unknown client is refused", func(t *testing.T) {
		err := insert(s, newSession("alice", newClientID(), t0))
		wantPgError(t, err, "23503", "sessions_client_id_fkey")
	})
}

// Invariant 2 in the database: a partial unique index allows one active
// session per (client, user).
func TestOneActiveSessionPerClientAndUser(t *testing.T) {
	t.Parallel()
	s := pgtest.NewStore(t) // each case works on its own rows
	t.Run("a second active session of the user on the client is refused", func(t *testing.T) {
		t.Parallel()
		c := mustClient(t, s)
		first := mustSession(t, s, "alice", c, t0)
		second := newSession("alice", c, t0)
		wantPgError(t, insert(s, second), "23505", "sessions_one_active_per_client_user")
		if exists(t, s, "sessions", second.ID) || len(events(t, s, second.ID)) != 0 {
			t.Error("the refused session or its audit row was stored")
		}
		if got := read(t, s, first.ID); got.Status != sessions.StatusActive {
			t.Errorf("the first session is %s", got.Status)
		}
	})
	t.Run("another user on the client is allowed", func(t *testing.T) {
		t.Parallel()
		c := mustClient(t, s)
		mustSession(t, s, "alice", c, t0)
		mustSession(t, s, "bob", c, t0)
	})
	t.Run("once the first has ended, the user may sign in there again", func(t *testing.T) {
		t.Parallel()
		c := mustClient(t, s)
		first := mustSession(t, s, "alice", c, t0)
		mustEnd(t, s, first.ID, sessions.StatusReplaced, t0)
		mustSession(t, s, "alice", c, t0)
	})
}

// Invariant 4 in the database: a trigger refuses any change of a terminal
// status or of ended_at, whoever writes the SQL.
func TestTerminalStatusesNeverChange(t *testing.T) {
	t.Parallel()
	s := pgtest.NewStore(t)
	terminal := []sessions.Status{sessions.StatusEnded, sessions.StatusRevoked, sessions.StatusReplaced, sessions.StatusEvicted, sessions.StatusExpired}
	for _, status := range terminal {
		for _, c := range []struct {
			name   string
			update string
		}{
			{"back to active", `UPDATE sessions SET status = 'active', ended_at = NULL WHERE id = $1`},
			{"to another terminal status", `UPDATE sessions SET status = CASE WHEN status = 'revoked' THEN 'ended' ELSE 'revoked' END WHERE id = $1`},
			{"ended_at rewritten", `UPDATE sessions SET ended_at = ended_at + interval '1 hour' WHERE id = $1`},
			{"ended_at cleared", `UPDATE sessions SET ended_at = NULL WHERE id = $1`},
		} {
			t.Run(string(status)+"/"+c.name, func(t *testing.T) {
				t.Parallel()
				sess := mustSession(t, s, "alice", mustClient(t, s), t0)
				mustEnd(t, s, sess.ID, status, t0.Add(time.Hour))
				_, err := s.Pool().Exec(ctx, c.update, sess.ID)
				wantPgError(t, err, "23514", "sessions_terminal_status")
				got := read(t, s, sess.ID)
				if got.Status != status || got.EndedAt == nil || !got.EndedAt.Equal(t0.Add(time.Hour)) {
					t.Errorf("after the refused UPDATE: %s ended at %v, want %s at %v", got.Status, got.EndedAt, status, t0.Add(time.Hour))
				}
			})
		}
	}
	t.Run("an active session may end", func(t *testing.T) {
		t.Parallel()
		sess := mustSession(t, s, "alice", mustClient(t, s), t0)
		if _, err := s.Pool().Exec(ctx, `UPDATE sessions SET status = 'revoked', ended_at = $2 WHERE id = $1`, sess.ID, t0); err != nil {
			t.Fatal(err)
		}
	})
}

func TestEndSessions(t *testing.T) {
	t.Parallel()
	// c1 holds alice and bob; alice is also on c2, and was on c3 (revoked);
	// carol is on c4.
	type cast struct {
		c1, c2                             string
		alice1, alice2, alice3, bob, carol sessions.Session
	}
	setup := func(t *testing.T, s *db.Store) cast {
		var w cast
		w.c1, w.c2 = mustClient(t, s), mustClient(t, s)
		w.alice1 = mustSession(t, s, "alice", w.c1, t0)
		w.bob = mustSession(t, s, "bob", w.c1, t0)
		w.alice2 = mustSession(t, s, "alice", w.c2, t0)
		w.alice3 = mustSession(t, s, "alice", mustClient(t, s), t0)
		mustEnd(t, s, w.alice3.ID, sessions.StatusRevoked, t0)
		w.carol = mustSession(t, s, "carol", mustClient(t, s), t0)
		return w
	}
	at := t0.Add(time.Hour)
	const actor = "session:sess_caller"
	for _, c := range []struct {
		name string
		sel  func(w cast) sessions.Selector
		want func(w cast) []string
	}{
		{"one session", func(w cast) sessions.Selector { return sessions.Selector{SessionID: w.alice2.ID} },
			func(w cast) []string { return sorted(w.alice2.ID) }},
		{"one session that already ended", func(w cast) sessions.Selector { return sessions.Selector{SessionID: w.alice3.ID} },
			func(w cast) []string { return sorted() }},
		{"a user's sessions", func(w cast) sessions.Selector { return sessions.Selector{UserID: "alice"} },
			func(w cast) []string { return sorted(w.alice1.ID, w.alice2.ID) }},
		{"a user's sessions except one", func(w cast) sessions.Selector {
			return sessions.Selector{UserID: "alice", ExceptSessionID: w.alice1.ID}
		}, func(w cast) []string { return sorted(w.alice2.ID) }},
		{"a client's sessions", func(w cast) sessions.Selector { return sessions.Selector{ClientID: w.c1} },
			func(w cast) []string { return sorted(w.alice1.ID, w.bob.ID) }},
		{"a user's session on a client", func(w cast) sessions.Selector { return sessions.Selector{ClientID: w.c1, UserID: "bob"} },
			func(w cast) []string { return sorted(w.bob.ID) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			s := pgtest.NewStore(t)
			w := setup(t, s)
			// The caller is on c1: sessions there become ended, others revoked.
			var ended []sessions.Session
			inTx(t, s, func(tx sessions.Tx) (err error) {
				ended, err = tx.EndSessions(ctx, c.sel(w), sessions.Ending{Status: sessions.StatusRevoked, OwnClientID: w.c1, At: at, Actor: actor})
				return err
			})
			want := c.want(w)
			if got := ids(ended); !slices.Equal(got, want) {
				t.Fatalf("ended %v, want %v", got, want)
			}
			for _, e := range ended {
				if e.EndedAt == nil || !e.EndedAt.Equal(at) {
					t.Errorf("%s returned with ended_at %v, want %v", e.ID, e.EndedAt, at)
				}
			}
			for _, sess := range []sessions.Session{w.alice1, w.alice2, w.alice3, w.bob, w.carol} {
				got, evs := read(t, s, sess.ID), events(t, s, sess.ID)
				switch {
				case slices.Contains(want, sess.ID):
					wantStatus := sessions.StatusRevoked
					if sess.ClientID == w.c1 {
						wantStatus = sessions.StatusEnded
					}
					if got.Status != wantStatus || !got.EndedAt.Equal(at) {
						t.Errorf("%s of %s: %s at %v, want %s at %v", sess.ID, sess.UserID, got.Status, got.EndedAt, wantStatus, at)
					}
					if len(evs) != 2 || evs[1] != (event{"active", string(wantStatus), at, actor}) {
						t.Errorf("%s of %s: audit rows %+v, want creation and active → %s", sess.ID, sess.UserID, evs, wantStatus)
					}
				case sess.ID == w.alice3.ID:
					if got.Status != sessions.StatusRevoked || !got.EndedAt.Equal(t0) || len(evs) != 2 {
						t.Errorf("the already revoked session: %s at %v with %d audit rows, want untouched", got.Status, got.EndedAt, len(evs))
					}
				default:
					if got.Status != sessions.StatusActive || len(evs) != 1 {
						t.Errorf("%s of %s, not selected: %s with %d audit rows, want active and untouched", sess.ID, sess.UserID, got.Status, len(evs))
					}
				}
			}
		})
	}
}

func TestEvictSessions(t *testing.T) {
	t.Parallel()
	for _, keep := range []int{0, 1, 2, 4, 5} {
		t.Run(fmt.Sprintf("keep %d", keep), func(t *testing.T) {
			t.Parallel()
			s := pgtest.NewStore(t)
			// Alice's active sessions, most recently active first: a1 (touched
			// at 10m), a4, a3, a2. a5 is newer but already ended; bob's
			// session is not hers.
			var a [6]sessions.Session
			for i := 1; i <= 5; i++ {
				a[i] = mustSession(t, s, "alice", mustClient(t, s), t0.Add(time.Duration(i)*time.Minute))
			}
			mustTouch(t, s, a[1].ID, t0.Add(10*time.Minute))
			mustEnd(t, s, a[5].ID, sessions.StatusEnded, t0.Add(6*time.Minute))
			bob := mustSession(t, s, "bob", mustClient(t, s), t0)
			byRecency := []sessions.Session{a[1], a[4], a[3], a[2]}
			var wantEvicted []string
			for _, sess := range byRecency[min(keep, len(byRecency)):] {
				wantEvicted = append(wantEvicted, sess.ID)
			}

			at := t0.Add(time.Hour)
			var evicted []sessions.Session
			inTx(t, s, func(tx sessions.Tx) (err error) {
				evicted, err = tx.EvictSessions(ctx, "alice", keep, sessions.Ending{Status: sessions.StatusEvicted, At: at, Actor: apiActor})
				return err
			})
			if got, want := ids(evicted), sorted(wantEvicted...); !slices.Equal(got, want) {
				t.Fatalf("evicted %v, want %v", got, want)
			}
			for _, sess := range byRecency {
				got, evs := read(t, s, sess.ID), events(t, s, sess.ID)
				if slices.Contains(wantEvicted, sess.ID) {
					if got.Status != sessions.StatusEvicted || !got.EndedAt.Equal(at) || len(evs) != 2 || evs[1] != (event{"active", "evicted", at, apiActor}) {
						t.Errorf("%s: %s at %v, audit %+v; want evicted at %v with its audit row", sess.ID, got.Status, got.EndedAt, evs, at)
					}
				} else if got.Status != sessions.StatusActive || len(evs) != 1 {
					t.Errorf("%s, among the %d most recently active: %s", sess.ID, keep, got.Status)
				}
			}
			if got := read(t, s, a[5].ID); got.Status != sessions.StatusEnded {
				t.Errorf("the ended session became %s", got.Status)
			}
			if got := read(t, s, bob.ID); got.Status != sessions.StatusActive {
				t.Errorf("bob's session became %s", got.Status)
			}
		})
	}
}

// expiryCases are sessions created at t0, active again at lastActive,
// looked at now with the idle timeout idle: expired at endedAt, or not.
var expiryCases = []struct {
	name       string
	lastActive time.Duration // after creation at t0
	idle       time.Duration
	now        time.Duration // after t0
	endedAt    time.Duration // after t0; 0: not expired
}{
	{"at its lifetime", 0, 0, lifetime, lifetime},
	{"past its lifetime", 0, 0, lifetime + 5*time.Hour, lifetime},
	{"just before its lifetime", 0, 0, lifetime - time.Microsecond, 0},
	{"idle for the timeout", time.Hour, 2 * time.Hour, 3 * time.Hour, 3 * time.Hour},
	{"idle past the timeout", time.Hour, 2 * time.Hour, 10 * time.Hour, 3 * time.Hour},
	{"idle just under the timeout", time.Hour, 2 * time.Hour, 3*time.Hour - time.Microsecond, 0},
	{"idle, but the timeout is off", time.Hour, 0, 100 * time.Hour, 0},
	{"lifetime before the idle bound", lifetime - time.Hour, 2 * time.Hour, lifetime + 5*time.Hour, lifetime},
}

func TestExpireSessions(t *testing.T) {
	t.Parallel()
	s := pgtest.NewStore(t)
	for _, c := range expiryCases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			sess := mustSession(t, s, "alice", mustClient(t, s), t0)
			mustTouch(t, s, sess.ID, t0.Add(c.lastActive))
			now := t0.Add(c.now)
			var n int
			inTx(t, s, func(tx sessions.Tx) (err error) {
				n, err = tx.ExpireSessions(ctx, sessions.Selector{SessionID: sess.ID}, sessions.Expiry{Now: now, IdleTimeout: c.idle}, 0)
				return err
			})
			got, evs := read(t, s, sess.ID), events(t, s, sess.ID)
			if c.endedAt == 0 {
				if n != 0 || got.Status != sessions.StatusActive || len(evs) != 1 {
					t.Errorf("expired %d: %s with %d audit rows, want active and untouched", n, got.Status, len(evs))
				}
				return
			}
			want := t0.Add(c.endedAt)
			if n != 1 || got.Status != sessions.StatusExpired || got.EndedAt == nil || !got.EndedAt.Equal(want) {
				t.Errorf("expired %d: %s at %v, want expired at %v", n, got.Status, got.EndedAt, want)
			}
			if len(evs) != 2 || evs[1].Old != "active" || evs[1].New != "expired" || evs[1].Actor != sessions.SystemActor {
				t.Errorf("audit rows %+v, want creation and active → expired by system", evs)
			}
		})
	}

	t.Run("the selector bounds what expires", func(t *testing.T) {
		t.Parallel()
		s := pgtest.NewStore(t)
		c := mustClient(t, s)
		alice := mustSession(t, s, "alice", c, t0)
		bob := mustSession(t, s, "bob", c, t0)
		carol := mustSession(t, s, "carol", mustClient(t, s), t0)
		var n int
		inTx(t, s, func(tx sessions.Tx) (err error) {
			n, err = tx.ExpireSessions(ctx, sessions.Selector{ClientID: c, ExceptSessionID: bob.ID}, sessions.Expiry{Now: t0.Add(lifetime)}, 0)
			return err
		})
		if n != 1 || read(t, s, alice.ID).Status != sessions.StatusExpired ||
			read(t, s, bob.ID).Status != sessions.StatusActive || read(t, s, carol.ID).Status != sessions.StatusActive {
			t.Errorf("expired %d; want only alice's session on the client", n)
		}
	})

	t.Run("with a limit, the batch is bounded and skips rows another transaction holds", func(t *testing.T) {
		t.Parallel()
		s := pgtest.NewStore(t)
		var all []sessions.Session
		for range 4 {
			all = append(all, mustSession(t, s, "alice", mustClient(t, s), t0))
		}
		held := all[1]
		lock, err := s.Pool().Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer lock.Rollback(ctx) //nolint:errcheck
		if _, err := lock.Exec(ctx, `SELECT 1 FROM sessions WHERE id = $1 FOR UPDATE`, held.ID); err != nil {
			t.Fatal(err)
		}
		sweep := func(limit int) int {
			t.Helper()
			var n int
			inTx(t, s, func(tx sessions.Tx) (err error) {
				n, err = tx.ExpireSessions(ctx, sessions.Selector{}, sessions.Expiry{Now: t0.Add(lifetime)}, limit)
				return err
			})
			return n
		}
		if n := sweep(2); n != 2 {
			t.Errorf("a batch of 2 expired %d", n)
		}
		if n := sweep(100); n != 1 {
			t.Errorf("the next batch expired %d, want the one left that no one holds", n)
		}
		if got := read(t, s, held.ID); got.Status != sessions.StatusActive {
			t.Errorf("the held session is %s, want skipped", got.Status)
		}
		if err := lock.Rollback(ctx); err != nil {
			t.Fatal(err)
		}
		if n := sweep(100); n != 1 {
			t.Errorf("once released, the held session: expired %d, want 1", n)
		}
		for _, sess := range all {
			if got := read(t, s, sess.ID); got.Status != sessions.StatusExpired {
				t.Errorf("%s is %s, want expired", sess.ID, got.Status)
			}
		}
	})
}

func TestDeleteEndedBefore(t *testing.T) {
	t.Parallel()
	cutoff := t0.Add(1000 * time.Hour)
	type cast struct {
		alone, mixed, recent, boundary, active, activeOld sessions.Session
	}
	setup := func(t *testing.T, s *db.Store) cast {
		var w cast
		w.alone = mustSession(t, s, "alice", mustClient(t, s), t0) // the only session on its client
		mustEnd(t, s, w.alone.ID, sessions.StatusEnded, cutoff.Add(-time.Hour))
		mixedClient := mustClient(t, s)
		w.mixed = mustSession(t, s, "bob", mixedClient, t0) // its client has an active session
		mustEnd(t, s, w.mixed.ID, sessions.StatusExpired, cutoff.Add(-2*time.Hour))
		w.active = mustSession(t, s, "carol", mixedClient, t0)
		w.recent = mustSession(t, s, "dave", mustClient(t, s), t0)
		mustEnd(t, s, w.recent.ID, sessions.StatusRevoked, cutoff.Add(time.Hour))
		w.boundary = mustSession(t, s, "erin", mustClient(t, s), t0)
		mustEnd(t, s, w.boundary.ID, sessions.StatusRevoked, cutoff)
		w.activeOld = mustSession(t, s, "frank", mustClient(t, s), t0) // long past its lifetime, never recorded
		return w
	}

	t.Run("deletes only sessions that ended before, and clients left empty", func(t *testing.T) {
		t.Parallel()
		s := pgtest.NewStore(t)
		w := setup(t, s)
		var n int
		inTx(t, s, func(tx sessions.Tx) (err error) {
			n, err = tx.DeleteEndedBefore(ctx, cutoff, 100)
			return err
		})
		if n != 2 {
			t.Errorf("deleted %d, want 2", n)
		}
		for _, c := range []struct {
			sess            sessions.Session
			session, client bool
		}{
			{w.alone, false, false},
			{w.mixed, false, true},
			{w.active, true, true},
			{w.recent, true, true},
			{w.boundary, true, true},
			{w.activeOld, true, true},
		} {
			if got := exists(t, s, "sessions", c.sess.ID); got != c.session {
				t.Errorf("session of %s exists: %v, want %v", c.sess.UserID, got, c.session)
			}
			if got := exists(t, s, "clients", c.sess.ClientID); got != c.client {
				t.Errorf("client of %s exists: %v, want %v", c.sess.UserID, got, c.client)
			}
		}
		if len(events(t, s, w.alone.ID)) != 2 {
			t.Error("the audit rows of a deleted session went with it")
		}
	})
	t.Run("deletes at most limit at a time", func(t *testing.T) {
		t.Parallel()
		s := pgtest.NewStore(t)
		setup(t, s)
		for i, want := range []int{1, 1, 0} {
			var n int
			inTx(t, s, func(tx sessions.Tx) (err error) {
				n, err = tx.DeleteEndedBefore(ctx, cutoff, 1)
				return err
			})
			if n != want {
				t.Errorf("batch %d deleted %d, want %d", i+1, n, want)
			}
		}
	})
}

func TestTouchSession(t *testing.T) {
	t.Parallel()
	s := pgtest.NewStore(t)
	for _, c := range []struct {
		name  string
		ended bool
		at    time.Duration
		want  time.Duration
	}{
		{"later activity is recorded", false, time.Hour, time.Hour},
		{"earlier activity is not", false, -time.Hour, 0},
		{"an ended session is not touched", true, time.Hour, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			sess := mustSession(t, s, "alice", mustClient(t, s), t0)
			if c.ended {
				mustEnd(t, s, sess.ID, sessions.StatusEnded, t0)
			}
			mustTouch(t, s, sess.ID, t0.Add(c.at))
			if got := read(t, s, sess.ID).LastActiveAt; !got.Equal(t0.Add(c.want)) {
				t.Errorf("last_active_at %v, want %v", got, t0.Add(c.want))
			}
			if n := len(events(t, s, sess.ID)); n != 1+btoi(c.ended) {
				t.Errorf("%d audit rows: activity must write none", n)
			}
		})
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestListSessions(t *testing.T) {
	t.Parallel()
	s := pgtest.NewStore(t)
	c1, c2 := mustClient(t, s), mustClient(t, s)
	a1 := mustSession(t, s, "alice", c1, t0)
	a2 := mustSession(t, s, "alice", c2, t0.Add(time.Minute))
	b1 := mustSession(t, s, "bob", c1, t0.Add(2*time.Minute))
	a3 := mustSession(t, s, "alice", mustClient(t, s), t0.Add(3*time.Minute))
	mustEnd(t, s, a2.ID, sessions.StatusRevoked, t0.Add(time.Hour))
	for _, c := range []struct {
		name string
		f    sessions.ListFilter
		want []string
	}{
		{"a user's sessions, newest first", sessions.ListFilter{UserID: "alice", Limit: 10}, []string{a3.ID, a2.ID, a1.ID}},
		{"a client's sessions", sessions.ListFilter{ClientID: c1, Limit: 10}, []string{b1.ID, a1.ID}},
		{"by status", sessions.ListFilter{UserID: "alice", Status: sessions.StatusActive, Limit: 10}, []string{a3.ID, a1.ID}},
		{"after a cursor", sessions.ListFilter{UserID: "alice", BeforeID: a3.ID, Limit: 10}, []string{a2.ID, a1.ID}},
		{"limited", sessions.ListFilter{UserID: "alice", Limit: 2}, []string{a3.ID, a2.ID}},
	} {
		var got []sessions.Session
		inTx(t, s, func(tx sessions.Tx) (err error) {
			got, err = tx.ListSessions(ctx, c.f)
			return err
		})
		var gotIDs []string
		for _, sess := range got {
			gotIDs = append(gotIDs, sess.ID)
		}
		if !slices.Equal(gotIDs, c.want) {
			t.Errorf("%s: %v, want %v", c.name, gotIDs, c.want)
		}
	}
}

func TestLocks(t *testing.T) {
	t.Parallel()
	s := pgtest.NewStore(t) // each case works on its own rows
	// heldElsewhere reports whether another transaction running stmt on
	// the row would have to wait: it gives up at once with lock_timeout
	// (55P03) instead of waiting. A row that no one holds never waits.
	heldElsewhere := func(t *testing.T, s *db.Store, stmt, id string) bool {
		t.Helper()
		tx, err := s.Pool().Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx) //nolint:errcheck
		if _, err := tx.Exec(ctx, `SET LOCAL lock_timeout = '50ms'`); err != nil {
			t.Fatal(err)
		}
		_, err = tx.Exec(ctx, stmt, id)
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "55P03" { // lock_not_available
			return true
		}
		if err != nil {
			t.Fatal(err)
		}
		return false
	}
	t.Run("locking an unknown client is ErrClientNotFound", func(t *testing.T) {
		t.Parallel()
		err := s.InTx(ctx, func(tx sessions.Tx) error { return lockErr(tx.Lock(ctx, sessions.Locks{ClientID: newClientID()})) })
		if !errors.Is(err, sessions.ErrClientNotFound) {
			t.Errorf("got %v, want ErrClientNotFound", err)
		}
	})
	t.Run("a client's lock holds its row until the transaction ends", func(t *testing.T) {
		t.Parallel()
		c := mustClient(t, s)
		const q = `SELECT 1 FROM clients WHERE id = $1 FOR UPDATE`
		inTx(t, s, func(tx sessions.Tx) error {
			if err := lockErr(tx.Lock(ctx, sessions.Locks{ClientID: c})); err != nil {
				return err
			}
			if !heldElsewhere(t, s, q, c) {
				t.Error("the client's row is not locked inside the transaction")
			}
			return nil
		})
		if heldElsewhere(t, s, q, c) {
			t.Error("the client's row is still locked after the transaction")
		}
	})
	t.Run("a sign-in's user lock holds the user's lock row, made on first use, until the transaction ends", func(t *testing.T) {
		t.Parallel()
		// What a racing sign-in of the same user runs.
		const q = `INSERT INTO session_users (user_id) VALUES ($1) ON CONFLICT (user_id) DO UPDATE SET user_id = EXCLUDED.user_id`
		for _, attempt := range []string{"first", "again"} {
			inTx(t, s, func(tx sessions.Tx) error {
				if err := lockErr(tx.Lock(ctx, sessions.Locks{UserID: "alice", NewUser: true})); err != nil {
					return err
				}
				if !heldElsewhere(t, s, q, "alice") {
					t.Errorf("%s: the user's row is not locked inside the transaction", attempt)
				}
				return nil
			})
		}
		if heldElsewhere(t, s, q, "alice") {
			t.Error("the user's row is still locked after the transaction")
		}
	})
	t.Run("a lock shape the store cannot take as asked is refused, not narrowed", func(t *testing.T) {
		t.Parallel()
		c := mustClient(t, s)
		token := sessions.HashToken(newSessionID())
		for name, l := range map[string]sessions.Locks{
			"own token with a client":      {OwnToken: token, ClientID: c},
			"own token with sessions":      {OwnToken: token, Sessions: sessions.Selector{ClientID: c}},
			"own client without a token":   {OwnClient: true, OwnID: newSessionID()},
			"own token with an own ID too": {OwnToken: token, OwnID: newSessionID()},
		} {
			err := s.InTx(ctx, func(tx sessions.Tx) error { return lockErr(tx.Lock(ctx, l)) })
			if err == nil || errors.Is(err, sessions.ErrSessionNotFound) {
				t.Errorf("%s: %v, want an error for the shape", name, err)
			}
		}
	})
	t.Run("ClientExists", func(t *testing.T) {
		t.Parallel()
		c := mustClient(t, s)
		for id, want := range map[string]bool{c: true, newClientID(): false} {
			var got bool
			inTx(t, s, func(tx sessions.Tx) (err error) {
				got, err = tx.ClientExists(ctx, id)
				return err
			})
			if got != want {
				t.Errorf("ClientExists(%s) = %v, want %v", id, got, want)
			}
		}
	})
}

func TestInTx(t *testing.T) {
	t.Parallel()
	s := pgtest.NewStore(t) // each case works on its own rows
	t.Run("rolls back everything when fn fails", func(t *testing.T) {
		t.Parallel()
		c, sess := newClientID(), newSession("alice", "", t0)
		sess.ClientID = c
		err := s.InTx(ctx, func(tx sessions.Tx) error {
			if err := db.CreateClient(ctx, tx, c, t0); err != nil {
				return err
			}
			if err := tx.InsertSession(ctx, sessions.Insert{Session: sess, TokenHash: sessions.HashToken(sess.ID), Actor: apiActor}); err != nil {
				return err
			}
			return sessions.ErrSessionNotFound
		})
		if !errors.Is(err, sessions.ErrSessionNotFound) {
			t.Fatalf("got %v, want fn's error", err)
		}
		if exists(t, s, "clients", c) || exists(t, s, "sessions", sess.ID) || len(events(t, s, sess.ID)) != 0 {
			t.Error("a rolled back transaction left rows")
		}
	})
	t.Run("rolls back everything when a statement fails", func(t *testing.T) {
		t.Parallel()
		existing := mustClient(t, s)
		c := newClientID()
		err := s.InTx(ctx, func(tx sessions.Tx) error {
			if err := db.CreateClient(ctx, tx, c, t0); err != nil {
				return err
			}
			return db.CreateClient(ctx, tx, existing, t0) // duplicate key
		})
		wantPgError(t, err, "23505", "clients_pkey")
		if exists(t, s, "clients", c) {
			t.Error("the client created before the failing statement was kept")
		}
	})
	t.Run("retries a transaction Postgres aborted to break a deadlock", func(t *testing.T) {
		t.Parallel()
		a, b := mustClient(t, s), mustClient(t, s)
		var attempts atomic.Int32
		lockedA, lockedB := make(chan struct{}), make(chan struct{})
		doneA, doneB := make(chan struct{}), make(chan struct{})
		// lockBoth locks first, waits until the other transaction holds
		// second, then locks second: the two wait for each other. A retry
		// waits for the other transaction to end: row locks are not handed
		// over in a queue, so a retry that raced the survivor for the row
		// could deadlock again.
		lockBoth := func(first, second string, mine, theirs, done, theirsDone chan struct{}) error {
			defer close(done)
			var once sync.Once
			tries := 0
			return s.InTx(ctx, func(tx sessions.Tx) error {
				attempts.Add(1)
				if tries++; tries > 1 {
					<-theirsDone
				}
				if err := lockErr(tx.Lock(ctx, sessions.Locks{ClientID: first})); err != nil {
					return err
				}
				once.Do(func() { close(mine) })
				<-theirs
				return lockErr(tx.Lock(ctx, sessions.Locks{ClientID: second}))
			})
		}
		errs := make(chan error, 2)
		go func() { errs <- lockBoth(a, b, lockedA, lockedB, doneA, doneB) }()
		go func() { errs <- lockBoth(b, a, lockedB, lockedA, doneB, doneA) }()
		for range 2 {
			if err := <-errs; err != nil {
				t.Errorf("a transaction failed: %v, want it retried", err)
			}
		}
		if n := attempts.Load(); n != 3 {
			t.Errorf("%d attempts, want 3: one of the two retried once", n)
		}
	})
	t.Run("does not retry other errors", func(t *testing.T) {
		t.Parallel()
		existing := mustClient(t, s)
		attempts := 0
		err := s.InTx(ctx, func(tx sessions.Tx) error {
			attempts++
			return db.CreateClient(ctx, tx, existing, t0)
		})
		if err == nil || attempts != 1 {
			t.Errorf("err %v after %d attempts, want an error after 1", err, attempts)
		}
	})
}

// An unreachable database is sessions.ErrUnavailable (503 with
// Retry-After); a database that answers with an error is not.
func TestUnavailable(t *testing.T) {
	t.Parallel()
	// operations are the ways the service reaches the store.
	operations := []struct {
		name string
		run  func(s *db.Store) error
	}{
		{"Ping", func(s *db.Store) error { return s.Ping(ctx) }},
		{"SessionByTokenHash", func(s *db.Store) error {
			_, err := s.SessionByTokenHash(ctx, sessions.HashToken("x"))
			return err
		}},
		{"TouchSession", func(s *db.Store) error { return s.TouchSession(ctx, newSessionID(), t0) }},
		{"InTx", func(s *db.Store) error {
			return s.InTx(ctx, func(tx sessions.Tx) error { _, err := tx.ClientExists(ctx, newClientID()); return err })
		}},
	}
	wantUnavailable := func(t *testing.T, s *db.Store) {
		t.Helper()
		for _, op := range operations {
			err := op.run(s)
			if code := codeOf(err); code != sessions.CodeUnavailable || !errors.Is(err, sessions.ErrUnavailable) {
				t.Errorf("%s: %v (code %q), want unavailable", op.name, err, code)
			}
		}
	}
	t.Run("nothing listens on the database's port", func(t *testing.T) {
		t.Parallel()
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		s, err := db.Open(ctx, "postgres://postgres:postgres@"+addr+"/sessiond?sslmode=disable", 2)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		wantUnavailable(t, s)
	})
	t.Run("the pool is closed", func(t *testing.T) {
		t.Parallel()
		s, err := db.Open(ctx, pgtest.NewDatabase(t), 2)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Ping(ctx); err != nil {
			t.Fatalf("before closing: %v", err)
		}
		s.Close()
		wantUnavailable(t, s)
	})
	t.Run("the request's deadline passed", func(t *testing.T) {
		t.Parallel()
		s := pgtest.NewStore(t)
		past, cancel := context.WithDeadline(ctx, t0)
		defer cancel()
		err := s.InTx(past, func(tx sessions.Tx) error { _, err := tx.ClientExists(past, newClientID()); return err })
		if code := codeOf(err); code != sessions.CodeUnavailable || !errors.Is(err, sessions.ErrTimedOut) {
			t.Errorf("%v (code %q), want unavailable because it ran out of time", err, code)
		}
	})
	t.Run("a statement that waits on a row lock past its deadline ran out of time", func(t *testing.T) {
		t.Parallel()
		s := pgtest.NewStore(t)
		c := mustClient(t, s)
		holder, err := s.Pool().Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer holder.Rollback(ctx)
		if _, err := holder.Exec(ctx, `SELECT 1 FROM clients WHERE id = $1 FOR UPDATE`, c); err != nil {
			t.Fatal(err)
		}
		short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		defer cancel()
		err = s.InTx(short, func(tx sessions.Tx) error { return lockErr(tx.Lock(short, sessions.Locks{ClientID: c})) })
		if code := codeOf(err); code != sessions.CodeUnavailable || !errors.Is(err, sessions.ErrTimedOut) || errors.Is(err, sessions.ErrUnavailable) {
			t.Errorf("%v (code %q), want unavailable because it ran out of time, not because the database is", err, code)
		}
	})
	t.Run("a constraint violation is internal, not unavailable", func(t *testing.T) {
		t.Parallel()
		s := pgtest.NewStore(t)
		c := mustClient(t, s)
		err := s.InTx(ctx, func(tx sessions.Tx) error { return db.CreateClient(ctx, tx, c, t0) })
		if code := codeOf(err); code != sessions.CodeInternal || errors.Is(err, sessions.ErrUnavailable) {
			t.Errorf("%v (code %q), want internal", err, code)
		}
		wantPgError(t, err, "23505", "")
	})
}

func TestMigrations(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t)
	m, err := db.NewMigrator(url)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	latest, dirty, err := m.Version()
	if err != nil || dirty || latest == 0 {
		t.Fatalf("a fresh database: version %d, dirty %v, %v; want migrated", latest, dirty, err)
	}
	s, err := db.Open(ctx, url, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	objects := []string{"clients", "session_users", "sessions", "session_events", "sessions_one_active_per_client_user", "sessions_token_hash_key"}
	wantObjects := func(t *testing.T, want bool) {
		t.Helper()
		for _, name := range objects {
			var got bool
			if err := s.Pool().QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, name).Scan(&got); err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Errorf("%s exists: %v, want %v", name, got, want)
			}
		}
		var trigger bool
		if err := s.Pool().QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_proc WHERE proname = 'sessions_keep_terminal')`).Scan(&trigger); err != nil {
			t.Fatal(err)
		}
		if trigger != want {
			t.Errorf("the terminal-status trigger function exists: %v, want %v", trigger, want)
		}
	}

	if err := m.Down(int(latest)); err != nil {
		t.Fatalf("down: %v", err)
	}
	if v, _, err := m.Version(); err != nil || v != 0 {
		t.Fatalf("after down: version %d, %v; want 0", v, err)
	}
	wantObjects(t, false)

	if err := m.Up(); err != nil {
		t.Fatalf("up: %v", err)
	}
	if v, dirty, err := m.Version(); err != nil || v != latest || dirty {
		t.Fatalf("after up: version %d, dirty %v, %v; want %d", v, dirty, err, latest)
	}
	wantObjects(t, true)
	if err := m.Up(); err != nil {
		t.Errorf("up again: %v, want nothing to do", err)
	}
	// The schema works again, constraints included.
	c := mustClient(t, s)
	mustSession(t, s, "alice", c, t0)
	wantPgError(t, insert(s, newSession("alice", c, t0)), "23505", "sessions_one_active_per_client_user")
}

// The review's finding 8: refusing an ended token and refusing an unknown
// one do the same work — the database answers "no row" to both — and so
// do refusing an ID outside a holder's scope and an unknown ID.
func TestRefusalsLookTheSame(t *testing.T) {
	t.Parallel()
	s := pgtest.NewStore(t)
	c := mustClient(t, s)
	ended := mustSession(t, s, "alice", c, t0)
	mustEnd(t, s, ended.ID, sessions.StatusRevoked, t0.Add(time.Minute))
	if _, err := s.SessionByTokenHash(ctx, sessions.HashToken(ended.ID)); !errors.Is(err, sessions.ErrSessionNotFound) {
		t.Errorf("SessionByTokenHash(ended token): %v, want ErrSessionNotFound as for an unknown one", err)
	}

	bobs := mustSession(t, s, "bob", mustClient(t, s), t0)
	for _, c := range []struct {
		name  string
		scope sessions.Scope
		found bool
	}{
		{"a backend sees it", sessions.Scope{}, true},
		{"its user sees it", sessions.Scope{UserID: "bob", ClientID: newClientID()}, true},
		{"a holder on its client sees it", sessions.Scope{UserID: "carol", ClientID: bobs.ClientID}, true},
		{"anyone else does not", sessions.Scope{UserID: "alice", ClientID: c}, false},
	} {
		err := s.InTx(ctx, func(tx sessions.Tx) error { _, err := tx.Session(ctx, bobs.ID, c.scope); return err })
		if c.found && err != nil || !c.found && !errors.Is(err, sessions.ErrSessionNotFound) {
			t.Errorf("%s: Session = %v", c.name, err)
		}
	}
}

// Locking the own session (Locks.OwnID) takes the lock an UPDATE takes (FOR NO KEY UPDATE): an
// ending of that session waits until the transaction that holds it ends.
func TestLockSessionHoldsOffEndings(t *testing.T) {
	t.Parallel()
	s := pgtest.NewStore(t)
	sess := mustSession(t, s, "alice", mustClient(t, s), t0)
	locked, release := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- s.InTx(ctx, func(tx sessions.Tx) error {
			got, err := tx.Lock(ctx, sessions.Locks{OwnID: sess.ID})
			if err != nil || got.Status != sessions.StatusActive {
				return fmt.Errorf("Lock(OwnID): %v %v", got.Status, err)
			}
			close(locked)
			<-release
			return nil
		})
	}()
	<-locked
	ended := make(chan struct{})
	go func() {
		mustEnd(t, s, sess.ID, sessions.StatusRevoked, t0.Add(time.Minute))
		close(ended)
	}()
	select {
	case <-ended:
		t.Fatal("the session ended while another transaction held its lock")
	case <-time.After(300 * time.Millisecond): // the ending waits, as it should
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	<-ended
	err := s.InTx(ctx, func(tx sessions.Tx) error { _, err := tx.Lock(ctx, sessions.Locks{OwnID: newSessionID()}); return err })
	if !errors.Is(err, sessions.ErrSessionNotFound) {
		t.Errorf("Lock(OwnID: unknown) = %v, want ErrSessionNotFound", err)
	}
}

// TestEndSessionsFoldsExpiry: with Ending.Expiry set, the one statement
// that ends sessions records those already past a bound as expired — at
// the bound, by the system, as ExpireSessions does — and returns only the
// ones it ended.
func TestEndSessionsFoldsExpiry(t *testing.T) {
	t.Parallel()
	s := pgtest.NewStore(t)
	for _, c := range expiryCases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			sess := mustSession(t, s, "alice", mustClient(t, s), t0)
			mustTouch(t, s, sess.ID, t0.Add(c.lastActive))
			now := t0.Add(c.now)
			var ended []sessions.Session
			inTx(t, s, func(tx sessions.Tx) (err error) {
				ended, err = tx.EndSessions(ctx, sessions.Selector{SessionID: sess.ID}, sessions.Ending{
					Status: sessions.StatusRevoked, At: now, Actor: apiActor,
					Expiry: sessions.Expiry{Now: now, IdleTimeout: c.idle},
				})
				return err
			})
			got, evs := read(t, s, sess.ID), events(t, s, sess.ID)
			wantStatus, wantAt, wantActor, wantReturned := sessions.StatusRevoked, now, apiActor, 1
			if c.endedAt != 0 {
				wantStatus, wantAt, wantActor, wantReturned = sessions.StatusExpired, t0.Add(c.endedAt), sessions.SystemActor, 0
			}
			if len(ended) != wantReturned || got.Status != wantStatus || got.EndedAt == nil || !got.EndedAt.Equal(wantAt) {
				t.Errorf("returned %d, stored %s at %v; want %d returned, %s at %v", len(ended), got.Status, got.EndedAt, wantReturned, wantStatus, wantAt)
			}
			if len(evs) != 2 || evs[1].New != string(wantStatus) || evs[1].Actor != wantActor || !evs[1].At.Equal(now) {
				t.Errorf("audit rows %+v, want creation and active → %s by %s at %v", evs, wantStatus, wantActor, now)
			}
		})
	}
}

// TestInsertSessionOnNewClient: with Insert.NewClient the client and its
// first session come in one statement; an existing client ID is refused and stores neither.
func TestInsertSessionOnNewClient(t *testing.T) {
	t.Parallel()
	s := pgtest.NewStore(t)
	sess := newSession("alice", newClientID(), t0)
	inTx(t, s, func(tx sessions.Tx) error {
		return tx.InsertSession(ctx, sessions.Insert{Session: sess, TokenHash: sessions.HashToken(sess.ID), Actor: apiActor, NewClient: true})
	})
	if !exists(t, s, "clients", sess.ClientID) || read(t, s, sess.ID).Status != sessions.StatusActive || len(events(t, s, sess.ID)) != 1 {
		t.Fatal("want the client, the active session and its audit row")
	}
	again := newSession("bob", sess.ClientID, t0)
	err := s.InTx(ctx, func(tx sessions.Tx) error {
		return tx.InsertSession(ctx, sessions.Insert{Session: again, TokenHash: sessions.HashToken(again.ID), Actor: apiActor, NewClient: true})
	})
	wantPgError(t, err, "23505", "clients_pkey")
	if exists(t, s, "sessions", again.ID) {
		t.Error("the session on a client that already existed was stored")
	}
}

// TestTransactionsSendBeginWithTheirFirstStatement: on a pool of one
// connection, a transaction that fails at its first statement, at a later
// one, or in the service's own code leaves nothing behind, and the
// connection serves the next transaction outside any transaction.
func TestTransactionsSendBeginWithTheirFirstStatement(t *testing.T) {
	t.Parallel()
	s, err := db.Open(ctx, pgtest.NewDatabase(t), 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	existing := mustClient(t, s)
	errOwn := errors.New("the service's own error")
	for _, c := range []struct {
		name string
		fn   func(tx sessions.Tx, fresh string) error
		want func(error) bool
	}{
		{"first statement fails", func(tx sessions.Tx, _ string) error {
			return db.CreateClient(ctx, tx, existing, t0)
		}, func(err error) bool { return err != nil }},
		{"a later statement fails", func(tx sessions.Tx, fresh string) error {
			if err := db.CreateClient(ctx, tx, fresh, t0); err != nil {
				return err
			}
			return db.CreateClient(ctx, tx, existing, t0)
		}, func(err error) bool { return err != nil }},
		{"the service fails after writing", func(tx sessions.Tx, fresh string) error {
			if err := db.CreateClient(ctx, tx, fresh, t0); err != nil {
				return err
			}
			return errOwn
		}, func(err error) bool { return errors.Is(err, errOwn) }},
		{"no statement at all", func(sessions.Tx, string) error { return nil },
			func(err error) bool { return err == nil }},
	} {
		fresh := newClientID()
		if err := s.InTx(ctx, func(tx sessions.Tx) error { return c.fn(tx, fresh) }); !c.want(err) {
			t.Errorf("%s: InTx returned %v", c.name, err)
		}
		if exists(t, s, "clients", fresh) {
			t.Errorf("%s: the transaction's write survived", c.name)
		}
		var open int
		if err := s.Pool().QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND state LIKE 'idle in transaction%'`).Scan(&open); err != nil || open != 0 {
			t.Errorf("%s: %d connections idle in a transaction afterwards (%v)", c.name, open, err)
		}
		next := newClientID()
		if err := s.InTx(ctx, func(tx sessions.Tx) error { return db.CreateClient(ctx, tx, next, t0) }); err != nil || !exists(t, s, "clients", next) {
			t.Errorf("%s: the next transaction: %v", c.name, err)
		}
	}
}

// TestEventsCarryTheSessionAsCommitted: the session object of each event
// is the session as that transaction left it — created active, ended with
// its status and time, expired at its bound. (A row written without one,
// by SQL outside sessiond, is not delivered: migration 000004.)
func TestEventsCarryTheSessionAsCommitted(t *testing.T) {
	t.Parallel()
	s := pgtest.NewStore(t)
	c := mustClient(t, s)
	created := mustSession(t, s, "alice", c, t0)
	ended := mustSession(t, s, "bob", c, t0)
	mustEnd(t, s, ended.ID, sessions.StatusRevoked, t0.Add(time.Minute))
	expired := mustSession(t, s, "carol", c, t0)
	inTx(t, s, func(tx sessions.Tx) error {
		_, err := tx.ExpireSessions(ctx, sessions.Selector{SessionID: expired.ID}, sessions.Expiry{Now: t0.Add(lifetime + time.Hour)}, 0)
		return err
	})
	if _, err := s.Pool().Exec(ctx, `INSERT INTO session_events (session_id, old_status, new_status, at, actor)
		VALUES ($1, 'active', 'revoked', now(), 'test')`, ended.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.NumberEvents(ctx); err != nil {
		t.Fatal(err)
	}
	evs, err := s.EventsAfter(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var got []sessions.Session
	for _, e := range evs {
		got = append(got, e.Session)
	}
	endedNow, expiredNow := read(t, s, ended.ID), read(t, s, expired.ID)
	want := []sessions.Session{created, ended, endedNow, expired, expiredNow}
	if len(got) != len(want) {
		t.Fatalf("%d events, want %d", len(got), len(want))
	}
	for i := range want {
		if !reflect.DeepEqual(normalized(got[i]), normalized(want[i])) {
			t.Errorf("event %d: session %+v, want %+v", i, got[i], want[i])
		}
	}
}

// normalized makes two sessions comparable field by field: times in UTC
// at microseconds (Postgres' resolution), metadata compacted.
func normalized(s sessions.Session) sessions.Session {
	us := func(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }
	s.CreatedAt, s.LastActiveAt, s.ExpiresAt = us(s.CreatedAt), us(s.LastActiveAt), us(s.ExpiresAt)
	if s.EndedAt != nil {
		t := us(*s.EndedAt)
		s.EndedAt = &t
	}
	var b bytes.Buffer
	if json.Compact(&b, s.Metadata) == nil {
		s.Metadata = b.Bytes()
	}
	return s
}

// TestCommitWithLastWrite: a write marked as the transaction's last
// (Commit) goes out with the COMMIT — as the transaction's first statement too, and with rows to
// read — and is not cut off by a request that went away meanwhile. When it
// fails, nothing of the transaction stays; a statement after it is
// refused. The one connection is out of any transaction after each.
func TestCommitWithLastWrite(t *testing.T) {
	t.Parallel()
	s, err := db.Open(ctx, pgtest.NewDatabase(t), 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	existing := mustClient(t, s)
	noneInTx := func(t *testing.T) {
		t.Helper()
		var open int
		if err := s.Pool().QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND state LIKE 'idle in transaction%'`).Scan(&open); err != nil || open != 0 {
			t.Errorf("%d connections idle in a transaction (%v)", open, err)
		}
	}

	t.Run("after another statement", func(t *testing.T) {
		a, b := newClientID(), newClientID()
		inTx(t, s, func(tx sessions.Tx) error {
			if err := db.CreateClient(ctx, tx, a, t0); err != nil {
				return err
			}
			return db.CreateClientAndCommit(ctx, tx, b, t0)
		})
		if !exists(t, s, "clients", a) || !exists(t, s, "clients", b) {
			t.Error("want both clients committed")
		}
		noneInTx(t)
	})
	t.Run("as the first statement, with rows", func(t *testing.T) {
		sess := mustSession(t, s, "alice", existing, t0)
		var ended []sessions.Session
		inTx(t, s, func(tx sessions.Tx) (err error) {
			ended, err = tx.EndSessions(ctx, sessions.Selector{SessionID: sess.ID}, sessions.Ending{Status: sessions.StatusRevoked, At: t0, Actor: apiActor, Commit: true})
			return err
		})
		if len(ended) != 1 || read(t, s, sess.ID).Status != sessions.StatusRevoked {
			t.Errorf("ended %d, stored %s; want 1 and revoked", len(ended), read(t, s, sess.ID).Status)
		}
		noneInTx(t)
	})
	t.Run("when it fails", func(t *testing.T) {
		a := newClientID()
		err := s.InTx(ctx, func(tx sessions.Tx) error {
			if err := db.CreateClient(ctx, tx, a, t0); err != nil {
				return err
			}
			return db.CreateClientAndCommit(ctx, tx, existing, t0)
		})
		wantPgError(t, err, "23505", "clients_pkey")
		if exists(t, s, "clients", a) {
			t.Error("the transaction's first write survived its failed last statement")
		}
		noneInTx(t)
	})
	t.Run("a statement after it", func(t *testing.T) {
		a, b := newClientID(), newClientID()
		err := s.InTx(ctx, func(tx sessions.Tx) error {
			if err := db.CreateClientAndCommit(ctx, tx, a, t0); err != nil {
				return err
			}
			return db.CreateClient(ctx, tx, b, t0)
		})
		if err == nil || exists(t, s, "clients", b) {
			t.Errorf("a statement after the last: %v, stored %v; want an error and nothing", err, exists(t, s, "clients", b))
		}
		noneInTx(t)
	})
	t.Run("the request went away before it", func(t *testing.T) {
		a, b := newClientID(), newClientID()
		reqCtx, cancel := context.WithCancel(ctx)
		err := s.InTx(reqCtx, func(tx sessions.Tx) error {
			if err := db.CreateClient(reqCtx, tx, a, t0); err != nil {
				return err
			}
			cancel()
			return db.CreateClientAndCommit(reqCtx, tx, b, t0)
		})
		if err != nil || !exists(t, s, "clients", a) || !exists(t, s, "clients", b) {
			t.Errorf("InTx: %v; want both clients committed", err)
		}
		noneInTx(t)
	})
}

// TestLockSignIn: a sign-in's locks (client, new user, the client's
// sessions: one statement). On an unknown client nothing is locked or made; on a
// known one the client's row, the user's lock row and the rows of the
// client's active sessions are held until the transaction ends.
func TestLockSignIn(t *testing.T) {
	t.Parallel()
	s := pgtest.NewStore(t)
	err := s.InTx(ctx, func(tx sessions.Tx) error { return lockErr(tx.Lock(ctx, signInLocks(newClientID(), "nobody"))) })
	if !errors.Is(err, sessions.ErrClientNotFound) {
		t.Fatalf("unknown client: %v, want ErrClientNotFound", err)
	}
	if exists(t, s, "session_users", "nobody") {
		t.Error("a lock row was made for a sign-in on an unknown client")
	}

	c := mustClient(t, s)
	alice := mustSession(t, s, "alice", c, t0)
	elsewhere := mustSession(t, s, "alice", mustClient(t, s), t0)
	wantLocksWhileHeld(t, s, func(tx sessions.Tx) error { return lockErr(tx.Lock(ctx, signInLocks(c, "bob"))) }, []lockCheck{
		{"the client", `SELECT 1 FROM clients WHERE id = $1 FOR UPDATE`, c, true},
		// bob's row is new and not committed: another sign-in's insert
		// waits on its key.
		{"the user's lock row", `INSERT INTO session_users VALUES ($1) ON CONFLICT DO NOTHING`, "bob", true},
		{"a session on the client", `SELECT 1 FROM sessions WHERE id = $1 FOR NO KEY UPDATE`, alice.ID, true},
		{"a session elsewhere", `SELECT 1 FROM sessions WHERE id = $1 FOR NO KEY UPDATE`, elsewhere.ID, false},
	})
}

// TestLockClientOfToken: Locks{OwnToken, OwnClient}. The token's session comes back only while it is
// active, and while the transaction lasts the client's row and every
// active session on the client are locked (sign-in's order), nothing
// elsewhere is.
func TestLockClientOfToken(t *testing.T) {
	t.Parallel()
	s := pgtest.NewStore(t)
	c := mustClient(t, s)
	alice := mustSession(t, s, "alice", c, t0)
	bob := mustSession(t, s, "bob", c, t0)
	gone := mustSession(t, s, "carol", c, t0)
	mustEnd(t, s, gone.ID, sessions.StatusRevoked, t0.Add(time.Minute))
	elsewhere := mustSession(t, s, "alice", mustClient(t, s), t0)
	for _, token := range []string{gone.ID, "unknown"} {
		err := s.InTx(ctx, func(tx sessions.Tx) error {
			_, err := tx.Lock(ctx, sessions.Locks{OwnToken: sessions.HashToken(token), OwnClient: true})
			return err
		})
		if !errors.Is(err, sessions.ErrSessionNotFound) {
			t.Errorf("token of %s: %v, want ErrSessionNotFound", token, err)
		}
	}

	var self sessions.Session
	wantLocksWhileHeld(t, s, func(tx sessions.Tx) (err error) {
		self, err = tx.Lock(ctx, sessions.Locks{OwnToken: sessions.HashToken(bob.ID), OwnClient: true})
		return err
	}, []lockCheck{
		{"the client", `SELECT 1 FROM clients WHERE id = $1 FOR UPDATE`, c, true},
		{"the token's session", `SELECT 1 FROM sessions WHERE id = $1 FOR NO KEY UPDATE`, bob.ID, true},
		{"another session on the client", `SELECT 1 FROM sessions WHERE id = $1 FOR NO KEY UPDATE`, alice.ID, true},
		{"a session elsewhere", `SELECT 1 FROM sessions WHERE id = $1 FOR NO KEY UPDATE`, elsewhere.ID, false},
	})
	if !reflect.DeepEqual(normalized(self), normalized(bob)) {
		t.Errorf("returned %+v, want bob's session %+v", self, bob)
	}
}

// TestLockClientOfTokenSeesAnEndingItWaitedFor: a session ended by the
// transaction that held its lock is not returned once the lock is taken.
func TestLockClientOfTokenSeesAnEndingItWaitedFor(t *testing.T) {
	t.Parallel()
	s := pgtest.NewStore(t)
	c := mustClient(t, s)
	alice := mustSession(t, s, "alice", c, t0)
	ender, err := s.Pool().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer ender.Rollback(ctx)
	if _, err := ender.Exec(ctx, `UPDATE sessions SET status = 'revoked', ended_at = now() WHERE id = $1`, alice.ID); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		done <- s.InTx(ctx, func(tx sessions.Tx) error {
			_, err := tx.Lock(ctx, sessions.Locks{OwnToken: sessions.HashToken(alice.ID), OwnClient: true})
			return err
		})
	}()
	// Let the locker reach the row lock before the ending commits.
	waitForLockWait(t, s)
	if err := ender.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, sessions.ErrSessionNotFound) {
		t.Fatalf("after waiting for the ending: %v, want ErrSessionNotFound", err)
	}
}

// waitForLockWait returns once a backend of this test's database waits
// for a lock. The bound only catches a hang.
func waitForLockWait(t *testing.T, s *db.Store) {
	t.Helper()
	for start := time.Now(); time.Since(start) < 10*time.Second; time.Sleep(5 * time.Millisecond) {
		var waiting bool
		if err := s.Pool().QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock')`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting {
			return
		}
	}
	t.Fatal("no backend waited for a lock within 10 s")
}

// lockCheck is a statement that would wait for a lock another
// transaction holds (locked) or would not.
type lockCheck struct {
	what, sql string
	arg       string
	locked    bool
}

// wantLocks runs each check in a transaction of its own and says which
// would have waited: a lock that would be waited for fails after 100 ms
// (55P03).
func wantLocks(t *testing.T, s *db.Store, checks []lockCheck) {
	t.Helper()
	for _, c := range checks {
		tx, err := s.Pool().Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, `SET LOCAL lock_timeout = '100ms'`); err != nil {
			t.Fatal(err)
		}
		_, err = tx.Exec(ctx, c.sql, c.arg)
		_ = tx.Rollback(ctx)
		var pgErr *pgconn.PgError
		if got := errors.As(err, &pgErr) && pgErr.Code == "55P03"; got != c.locked {
			t.Errorf("%s: locked %v (%v), want %v", c.what, got, err, c.locked)
		}
	}
}

// TestLockSessionsAndOwn: Locks{Sessions, OwnID}. One statement locks the selected active
// sessions and the caller's own row, and returns the own row as stored,
// ended or not.
func TestLockSessionsAndOwn(t *testing.T) {
	t.Parallel()
	s := pgtest.NewStore(t)
	c := mustClient(t, s)
	own := mustSession(t, s, "alice", c, t0)
	sibling := mustSession(t, s, "alice", mustClient(t, s), t0)
	stranger := mustSession(t, s, "bob", mustClient(t, s), t0)
	err := s.InTx(ctx, func(tx sessions.Tx) error {
		_, err := tx.Lock(ctx, sessions.Locks{Sessions: sessions.Selector{UserID: "alice"}, OwnID: newSessionID()})
		return err
	})
	if !errors.Is(err, sessions.ErrSessionNotFound) {
		t.Fatalf("an own session that does not exist: %v, want ErrSessionNotFound", err)
	}

	var self sessions.Session
	wantLocksWhileHeld(t, s, func(tx sessions.Tx) (err error) {
		self, err = tx.Lock(ctx, sessions.Locks{Sessions: sessions.Selector{SessionID: sibling.ID}, OwnID: own.ID})
		return err
	}, []lockCheck{
		{"the own session", `SELECT 1 FROM sessions WHERE id = $1 FOR NO KEY UPDATE`, own.ID, true},
		{"the selected session", `SELECT 1 FROM sessions WHERE id = $1 FOR NO KEY UPDATE`, sibling.ID, true},
		{"another session", `SELECT 1 FROM sessions WHERE id = $1 FOR NO KEY UPDATE`, stranger.ID, false},
	})
	if !reflect.DeepEqual(normalized(self), normalized(own)) {
		t.Errorf("returned %+v, want the own session %+v", self, own)
	}

	mustEnd(t, s, own.ID, sessions.StatusRevoked, t0.Add(time.Minute))
	inTx(t, s, func(tx sessions.Tx) error {
		self, err := tx.Lock(ctx, sessions.Locks{Sessions: sessions.Selector{UserID: "alice"}, OwnID: own.ID})
		if err == nil && self.Status != sessions.StatusRevoked {
			t.Errorf("an ended own session came back %s, want as stored (revoked)", self.Status)
		}
		return err
	})
}

// wantLocksWhileHeld runs lock in a transaction of its own and, while
// that transaction is still open, checks what is locked (wantLocks).
func wantLocksWhileHeld(t *testing.T, s *db.Store, lock func(tx sessions.Tx) error, checks []lockCheck) {
	t.Helper()
	held, release, done := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	go func() {
		done <- s.InTx(ctx, func(tx sessions.Tx) error {
			if err := lock(tx); err != nil {
				return err
			}
			close(held)
			<-release
			return nil
		})
	}()
	select {
	case <-held:
	case err := <-done:
		t.Fatal(err)
	}
	wantLocks(t, s, checks)
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestOnEventsCommitted: the function is called after a transaction that
// wrote events commits (including one whose last statement travelled
// with its COMMIT), not after one that wrote none, nor after one that
// rolled back.
func TestOnEventsCommitted(t *testing.T) {
	t.Parallel()
	s := pgtest.NewStore(t)
	var calls atomic.Int32
	s.OnEventsCommitted(func() { calls.Add(1) })
	c := mustClient(t, s) // no events
	if n := calls.Load(); n != 0 {
		t.Fatalf("%d calls after a transaction without events", n)
	}
	sess := mustSession(t, s, "alice", c, t0)
	if n := calls.Load(); n != 1 {
		t.Fatalf("%d calls after a sign-in; want 1", n)
	}
	inTx(t, s, func(tx sessions.Tx) error {
		_, err := tx.EndSessions(ctx, sessions.Selector{SessionID: sess.ID}, sessions.Ending{Status: sessions.StatusRevoked, At: t0, Actor: apiActor, Commit: true})
		return err
	})
	if n := calls.Load(); n != 2 {
		t.Fatalf("%d calls after an ending sent with its COMMIT; want 2", n)
	}
	failed := errors.New("changed my mind")
	err := s.InTx(ctx, func(tx sessions.Tx) error {
		if err := tx.InsertSession(ctx, sessions.Insert{Session: newSession("bob", c, t0), TokenHash: sessions.HashToken("st_x"), Actor: apiActor}); err != nil {
			return err
		}
		return failed
	})
	if !errors.Is(err, failed) || calls.Load() != 2 {
		t.Fatalf("rolled back: %v, %d calls; want the error and still 2", err, calls.Load())
	}
	s.OnEventsCommitted(nil)
	mustSession(t, s, "carol", c, t0)
	if n := calls.Load(); n != 2 {
		t.Fatalf("%d calls after OnEventsCommitted(nil); want 2", n)
	}
}

// TestLatestEventSeqCoversWhatCommittedBefore: an event committed and not
// yet numbered is at or below LatestEventSeq, so "from now on" leaves it
// out.
func TestLatestEventSeqCoversWhatCommittedBefore(t *testing.T) {
	t.Parallel()
	s := pgtest.NewStore(t)
	c := mustClient(t, s)
	mustSession(t, s, "alice", c, t0)
	latest, err := s.LatestEventSeq(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.NumberEvents(ctx); err != nil {
		t.Fatal(err)
	}
	if evs, err := s.EventsAfter(ctx, latest, 10); err != nil || len(evs) != 0 {
		t.Fatalf("events after LatestEventSeq %d: %+v, %v; want none", latest, evs, err)
	}
}

// codeOf is the code api answers for err: that of the *sessions.Error in
// its chain, or internal for anything else.
func codeOf(err error) string {
	var e *sessions.Error
	if errors.As(err, &e) {
		return e.Code
	}
	return sessions.CodeInternal
}
