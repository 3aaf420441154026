package api_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sessiond/sessiond/api"
	"github.com/sessiond/sessiond/internal/sessions"
)

// Expiry (README "Settings", the lifetime and inactivity timeout): a session is bounded by its lifetime from creation
// and, when set, by the inactivity timeout from its last activity. Past
// either bound it is expired to every reader at once; the sweeper records
// that and deletes what ended more than the retention ago. Time moves only
// with the injected clock.

// lifetime sets SESSIOND_SESSION_LIFETIME.
func lifetime(d time.Duration) option {
	return func(s *sessions.Config, _ *api.Config) { s.Lifetime = d }
}

// readSession reads a session as a backend sees it.
func (e *testEnv) readSession(t *testing.T, id string) session {
	t.Helper()
	r := e.do(t, http.MethodGet, "/sessions/"+id, backend, nil)
	r.wantStatus(t, http.StatusOK)
	var s session
	r.decode(t, &s)
	return s
}

// wantExpiredAt fails unless the session answers GET /session with 401
// and reads as expired, ended at the given moment.
func (e *testEnv) wantExpiredAt(t *testing.T, s signedIn, at time.Time) {
	t.Helper()
	e.do(t, http.MethodGet, "/session", bearer(s.Token), nil).wantProblem(t, http.StatusUnauthorized, "unauthenticated")
	got := e.readSession(t, s.ID)
	if got.Status != "expired" || got.EndedAt == nil || !got.EndedAt.Equal(at) {
		t.Errorf("session of %s: status %q, ended_at %v; want expired at %v", s.UserID, got.Status, got.EndedAt, at)
	}
}

// wantStillActive fails unless a backend reads the session as active. It
// does not count as activity, unlike wantActive.
func (e *testEnv) wantStillActive(t *testing.T, s signedIn) {
	t.Helper()
	if got := e.readSession(t, s.ID); got.Status != "active" || got.EndedAt != nil {
		t.Errorf("session of %s: status %q, ended_at %v; want active", s.UserID, got.Status, got.EndedAt)
	}
}

// storedRow reads one session's row.
func storedRow(t *testing.T, e *testEnv, id string) storedSession {
	t.Helper()
	row, ok := storedSessions(t, e, "id = $1", id)[id]
	if !ok {
		t.Fatalf("session %s is not in the database", id)
	}
	return row
}

func TestLifetime(t *testing.T) {
	t.Parallel()
	t.Run("past 168h a session answers 401 at once and reads expired at its expires_at", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		s := e.mustSignIn(t, "alice", "")
		expiresAt := e.readSession(t, s.ID).ExpiresAt
		e.Clock.Advance(168*time.Hour - time.Second)
		e.wantActive(t, s) // activity does not move the lifetime bound
		e.Clock.Advance(time.Second)
		e.wantExpiredAt(t, s, expiresAt)
	})
	t.Run("with an inactivity timeout, the earlier bound wins", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, inactivityTimeout(100*time.Hour))
		s := e.mustSignIn(t, "alice", "")
		expiresAt := e.readSession(t, s.ID).ExpiresAt
		e.Clock.Advance(90 * time.Hour)
		e.wantActive(t, s)
		e.Clock.Advance(78 * time.Hour) // idle 78h, but 168h old
		e.wantExpiredAt(t, s, expiresAt)
	})
}

func TestInactivityTimeout(t *testing.T) {
	t.Parallel()
	const idle = 30 * time.Minute
	t.Run("a session idle past the timeout expires at last_active_at + timeout", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, inactivityTimeout(idle))
		s := e.mustSignIn(t, "alice", "")
		lastActive := e.readSession(t, s.ID).LastActiveAt
		e.Clock.Advance(idle - time.Second)
		e.wantStillActive(t, s)
		e.Clock.Advance(time.Second)
		e.wantExpiredAt(t, s, lastActive.Add(idle))
	})
	t.Run("GET /session keeps a session alive", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, inactivityTimeout(idle))
		s := e.mustSignIn(t, "alice", "")
		e.Clock.Advance(20 * time.Minute)
		e.wantActive(t, s)
		e.Clock.Advance(20 * time.Minute) // 40 minutes old, 20 idle
		e.wantActive(t, s)
		lastActive := e.Clock.Now()
		e.Clock.Advance(idle - time.Second)
		e.wantStillActive(t, s)
		if got := storedRow(t, e, s.ID).LastActiveAt; !got.Equal(lastActive) {
			t.Fatalf("stored last_active_at %v, want the last GET /session at %v", got, lastActive)
		}
		e.Clock.Advance(time.Second)
		e.wantExpiredAt(t, s, lastActive.Add(idle))
		if got := e.readSession(t, s.ID); !got.EndedAt.Equal(got.LastActiveAt.Add(idle)) {
			t.Errorf("ended_at %v, last_active_at %v: want ended_at = last_active_at + %v", got.EndedAt, got.LastActiveAt, idle)
		}
	})
	t.Run("activity is recorded once a minute, so the timeout counts from the recorded one", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, inactivityTimeout(idle))
		s := e.mustSignIn(t, "alice", "")
		signedInAt := e.Clock.Now()
		e.Clock.Advance(30 * time.Second)
		e.wantActive(t, s) // within the minute: not written
		e.Clock.Advance(idle - 30*time.Second)
		e.wantExpiredAt(t, s, signedInAt.Add(idle))
	})
}

// TestActivityIsWrittenOnceAMinute: last_active_at is written at most once
// per sessions.ActivityInterval (a minute), so the hot path stays a read.
func TestActivityIsWrittenOnceAMinute(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := e.mustSignIn(t, "alice", "")
	signedInAt := e.Clock.Now()
	for _, c := range []struct {
		name    string
		advance time.Duration
		want    time.Duration // stored last_active_at, from the sign-in
	}{
		{"30s after the sign-in: not written", 30 * time.Second, 0},
		{"a minute after the sign-in: written", 30 * time.Second, time.Minute},
		{"30s after that: not written", 30 * time.Second, time.Minute},
		{"59s after that: not written", 29 * time.Second, time.Minute},
		{"a minute after that: written", time.Second, 2 * time.Minute},
	} {
		e.Clock.Advance(c.advance)
		e.wantActive(t, s)
		if got, want := storedRow(t, e, s.ID).LastActiveAt, signedInAt.Add(c.want); !got.Equal(want) {
			t.Errorf("%s: stored last_active_at %v, want %v", c.name, got, want)
		}
	}
}

// expiredWorld is alice with an expired session (old) and an active one
// (young) on two clients.
type expiredWorld struct {
	old, young signedIn
	oldEndedAt time.Time
}

// expirySetups make an expiredWorld on a fresh server: by the lifetime,
// and by the inactivity timeout; old expired a while ago (so ended_at is
// not simply "now"), and nothing has swept or listed since.
var expirySetups = []struct {
	name  string
	setup func(t *testing.T, opts ...option) (*testEnv, expiredWorld)
}{
	{"lifetime", func(t *testing.T, opts ...option) (*testEnv, expiredWorld) {
		e := newEnv(t, opts...)
		var w expiredWorld
		w.old = e.mustSignIn(t, "alice", "")
		w.oldEndedAt = e.readSession(t, w.old.ID).ExpiresAt
		e.Clock.Advance(100 * time.Hour)
		w.young = e.mustSignIn(t, "alice", "")
		e.Clock.Advance(68*time.Hour + 10*time.Minute)
		return e, w
	}},
	{"inactivity", func(t *testing.T, opts ...option) (*testEnv, expiredWorld) {
		e := newEnv(t, append(opts, inactivityTimeout(time.Hour))...)
		var w expiredWorld
		w.old = e.mustSignIn(t, "alice", "")
		w.oldEndedAt = e.Clock.Now().Add(time.Hour)
		e.Clock.Advance(30 * time.Minute)
		w.young = e.mustSignIn(t, "alice", "")
		e.Clock.Advance(40 * time.Minute)
		return e, w
	}},
}

func TestListsSeeExpiryAtOnce(t *testing.T) {
	t.Parallel()
	for _, setup := range expirySetups {
		for _, c := range []struct {
			name string
			path func(w expiredWorld) string
			want func(w expiredWorld) []string
		}{
			{"user list, active by default",
				func(expiredWorld) string { return "/users/alice/sessions" },
				func(w expiredWorld) []string { return []string{w.young.ID} }},
			{"user list, status=active",
				func(expiredWorld) string { return "/users/alice/sessions?status=active" },
				func(w expiredWorld) []string { return []string{w.young.ID} }},
			{"user list, status=expired",
				func(expiredWorld) string { return "/users/alice/sessions?status=expired" },
				func(w expiredWorld) []string { return []string{w.old.ID} }},
			{"user list, status=all",
				func(expiredWorld) string { return "/users/alice/sessions?status=all" },
				func(w expiredWorld) []string { return []string{w.young.ID, w.old.ID} }},
			{"client list, active by default",
				func(w expiredWorld) string { return "/clients/" + w.old.ClientID + "/sessions" },
				func(expiredWorld) []string { return nil }},
			{"client list, status=expired",
				func(w expiredWorld) string { return "/clients/" + w.old.ClientID + "/sessions?status=expired" },
				func(w expiredWorld) []string { return []string{w.old.ID} }},
		} {
			t.Run(setup.name+"/"+c.name, func(t *testing.T) {
				t.Parallel()
				e, w := setup.setup(t)
				r := e.do(t, http.MethodGet, c.path(w), backend, nil)
				r.wantStatus(t, http.StatusOK)
				var l listAnswer
				r.decode(t, &l)
				var got []string
				for _, s := range l.Data {
					got = append(got, s.ID)
					if s.ID == w.old.ID && (s.Status != "expired" || s.EndedAt == nil || !s.EndedAt.Equal(w.oldEndedAt)) {
						t.Errorf("the expired session is listed as %s, ended at %v; want expired at %v", s.Status, s.EndedAt, w.oldEndedAt)
					}
				}
				if want := c.want(w); !slices.Equal(got, want) {
					t.Errorf("listed %v, want %v", got, want)
				}
			})
		}
	}
}

// An expired session had already ended: a later DELETE does not list it
// and leaves it expired, as it left it.
func TestEndingDoesNotEndExpiredSessions(t *testing.T) {
	t.Parallel()
	for _, setup := range expirySetups {
		for _, c := range []struct {
			name string
			path func(w expiredWorld) string
			cred func(w expiredWorld) cred
			ends func(w expiredWorld) []string
		}{
			{"API key ends the session",
				func(w expiredWorld) string { return "/sessions/" + w.old.ID },
				func(expiredWorld) cred { return backend },
				func(expiredWorld) []string { return nil }},
			{"API key ends the user's sessions",
				func(expiredWorld) string { return "/users/alice/sessions" },
				func(expiredWorld) cred { return backend },
				func(w expiredWorld) []string { return []string{w.young.ID} }},
			{"API key ends the client's sessions",
				func(w expiredWorld) string { return "/clients/" + w.old.ClientID + "/sessions" },
				func(expiredWorld) cred { return backend },
				func(expiredWorld) []string { return nil }},
			{"holder of the same user ends it by session_id",
				func(w expiredWorld) string { return "/session" + q("session_id", w.old.ID) },
				func(w expiredWorld) cred { return bearer(w.young.Token) },
				func(expiredWorld) []string { return nil }},
			{"holder signs out everywhere",
				func(expiredWorld) string { return "/users/alice/sessions" },
				func(w expiredWorld) cred { return bearer(w.young.Token) },
				func(w expiredWorld) []string { return []string{w.young.ID} }},
		} {
			t.Run(setup.name+"/"+c.name, func(t *testing.T) {
				t.Parallel()
				e, w := setup.setup(t)
				a := e.mustEnd(t, c.path(w), c.cred(w))
				if got, want := endedIDs(a), c.ends(w); !slices.Equal(got, want) {
					t.Errorf("ended %v, want %v", got, want)
				}
				e.wantExpiredAt(t, w.old, w.oldEndedAt)
				if row := storedRow(t, e, w.old.ID); row.Status != "expired" || !row.EndedAt.Equal(w.oldEndedAt) {
					t.Errorf("stored as %s, ended at %v; want expired at %v", row.Status, row.EndedAt, w.oldEndedAt)
				}
			})
		}
	}
}

// A sign-in neither counts expired sessions against the per-user limit nor
// lists them as replaced: they had already ended.
func TestSignInIgnoresExpiredSessions(t *testing.T) {
	t.Parallel()
	for _, setup := range expirySetups {
		t.Run(setup.name+"/not counted against the limit", func(t *testing.T) {
			t.Parallel()
			e, w := setup.setup(t, maxSessions(2))
			r := e.do(t, http.MethodPost, "/sessions", backend, map[string]any{"user_id": "alice"})
			r.wantStatus(t, http.StatusCreated)
			var a signInAnswer
			r.decode(t, &a)
			if len(a.Ended) != 0 {
				t.Errorf("ended %+v, want nothing: alice has one active session and a limit of 2", a.Ended)
			}
			e.wantActive(t, w.young, signedIn{ID: a.Session.ID, UserID: "alice", Token: a.Token})
			e.wantExpiredAt(t, w.old, w.oldEndedAt)
		})
		for _, mode := range []struct {
			name string
			opts []option
			user string
		}{
			{"single: another user on the client", nil, "bob"},
			{"multi: the same user on the client", []option{multiMode}, "alice"},
		} {
			t.Run(setup.name+"/not replaced/"+mode.name, func(t *testing.T) {
				t.Parallel()
				e, w := setup.setup(t, mode.opts...)
				r := e.do(t, http.MethodPost, "/sessions", backend, map[string]any{"user_id": mode.user, "client_id": w.old.ClientID})
				r.wantStatus(t, http.StatusCreated)
				var a signInAnswer
				r.decode(t, &a)
				if len(a.Ended) != 0 {
					t.Errorf("ended %+v, want nothing: the session on the client had expired", a.Ended)
				}
				e.wantExpiredAt(t, w.old, w.oldEndedAt)
				e.wantActive(t, w.young)
			})
		}
	}
}

func TestSweeper(t *testing.T) {
	t.Parallel()
	for _, setup := range expirySetups {
		t.Run(setup.name+"/records expired in the database", func(t *testing.T) {
			t.Parallel()
			e, w := setup.setup(t)
			res, err := e.Svc.Sweep(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if res.Expired != 1 || res.Deleted != 0 {
				t.Errorf("sweep: %+v, want 1 expired and nothing deleted", res)
			}
			if row := storedRow(t, e, w.old.ID); row.Status != "expired" || row.EndedAt == nil || !row.EndedAt.Equal(w.oldEndedAt) {
				t.Errorf("stored as %s, ended at %v; want expired at %v", row.Status, row.EndedAt, w.oldEndedAt)
			}
			if row := storedRow(t, e, w.young.ID); row.Status != "active" || row.EndedAt != nil {
				t.Errorf("the active session is stored as %s", row.Status)
			}
			e.wantExpiredAt(t, w.old, w.oldEndedAt)
			e.wantActive(t, w.young)
		})
	}

	t.Run("deletes sessions ended more than the retention ago and their empty clients", func(t *testing.T) {
		t.Parallel()
		const retention = 720 * time.Hour
		e := newEnv(t, lifetime(1000*time.Hour))
		sweep := func(t *testing.T, wantDeleted int) {
			t.Helper()
			res, err := e.Svc.Sweep(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if res.Deleted != wantDeleted {
				t.Errorf("sweep deleted %d sessions, want %d", res.Deleted, wantDeleted)
			}
		}
		exist := func(t *testing.T, want map[string]bool) {
			t.Helper()
			for id, want := range want {
				var got bool
				table := "sessions"
				if strings.HasPrefix(id, "client_") {
					table = "clients"
				}
				err := e.Store.Pool().QueryRow(context.Background(), `SELECT EXISTS (SELECT 1 FROM `+table+` WHERE id = $1)`, id).Scan(&got)
				if err != nil {
					t.Fatal(err)
				}
				if got != want {
					t.Errorf("%s exists: %v, want %v", id, got, want)
				}
			}
		}

		gone := e.mustSignIn(t, "alice", "")  // revoked now: its client goes with it
		shared := e.mustSignIn(t, "bob", "")  // revoked now; its client gets a new session
		later := e.mustSignIn(t, "dave", "")  // revoked 100h later
		keeper := e.mustSignIn(t, "erin", "") // active for 1000h
		e.mustEnd(t, "/sessions/"+gone.ID, backend)
		e.mustEnd(t, "/sessions/"+shared.ID, backend)
		e.Clock.Advance(100 * time.Hour)
		e.mustEnd(t, "/sessions/"+later.ID, backend)

		e.Clock.Advance(retention - 100*time.Hour) // gone and shared ended exactly the retention ago
		sweep(t, 0)
		exist(t, map[string]bool{gone.ID: true, gone.ClientID: true, shared.ID: true})

		e.Clock.Advance(time.Second)
		carol := e.mustSignIn(t, "carol", shared.ClientID)
		sweep(t, 2)
		exist(t, map[string]bool{
			gone.ID: false, gone.ClientID: false,
			shared.ID: false, shared.ClientID: true, carol.ID: true,
			later.ID: true, later.ClientID: true,
			keeper.ID: true, keeper.ClientID: true,
		})
		e.do(t, http.MethodGet, "/sessions/"+gone.ID, backend, nil).wantProblem(t, http.StatusNotFound, "session_not_found")
		e.wantActive(t, carol, keeper)

		e.Clock.Advance(100 * time.Hour)
		sweep(t, 1)
		exist(t, map[string]bool{later.ID: false, later.ClientID: false, keeper.ID: true, keeper.ClientID: true, carol.ID: true})
		e.wantActive(t, carol, keeper)

		// Expired sessions go the same way: keeper expires at 1000h, and is
		// deleted once that is more than the retention ago.
		e.Clock.Advance(180 * time.Hour) // now 1000h and 1s
		sweep(t, 0)
		if row := storedRow(t, e, keeper.ID); row.Status != "expired" {
			t.Errorf("keeper is stored as %s past its lifetime, want expired", row.Status)
		}
		e.Clock.Advance(retention + time.Second)
		sweep(t, 1)
		exist(t, map[string]bool{keeper.ID: false, keeper.ClientID: false, carol.ID: true, shared.ClientID: true})
	})
}
