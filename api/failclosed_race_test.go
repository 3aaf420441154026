package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sessiond/sessiond/api"
	"github.com/sessiond/sessiond/internal/sessions"
)

// realClock runs a server on the wall clock, for tests about the order of
// timestamps written by transactions that wait on one another.
func realClock(s *sessions.Config, _ *api.Config) { s.Now = time.Now }

// waitForLockWaiters waits until n backends of e's database wait on a
// lock, or fails after a generous bound that only catches a hang.
func waitForLockWaiters(t *testing.T, e *testEnv, n int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var waiting int
		err := e.Store.Pool().QueryRow(context.Background(),
			`SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&waiting)
		if err != nil {
			t.Fatal(err)
		}
		if waiting >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d requests wait on a lock, want %d", waiting, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Finding 3: a request authenticated before its session was revoked must
// not act afterwards. A stolen session A asks to "sign out other devices";
// its statement waits on a row lock; meanwhile the victim V revokes A.
// Whatever order the database settles on, the outcome must be one a
// serial order gives: A ended V and V's request came too late (401), or V
// ended A and A's request came too late (401) — never both.
func TestActionAfterItsSessionEndedIsRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	stolen := e.mustSignIn(t, "alice", "")
	victim := e.mustSignIn(t, "alice", "")

	// Another transaction holds a share lock on V's row: A's UPDATE of V
	// waits, V's own requests do not.
	blocker, err := e.Store.Pool().Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer blocker.Rollback(context.Background())
	if _, err := blocker.Exec(context.Background(), `SELECT 1 FROM sessions WHERE id = $1 FOR SHARE`, victim.ID); err != nil {
		t.Fatal(err)
	}

	type answer struct {
		r   response
		err error
	}
	byStolen, byVictim := make(chan answer, 1), make(chan answer, 1)
	go func() {
		r, err := e.send(http.MethodDelete, "/users/alice/sessions?except="+stolen.ID, bearer(stolen.Token), nil)
		byStolen <- answer{r, err}
	}()
	waitForLockWaiters(t, e, 1)
	go func() {
		r, err := e.send(http.MethodDelete, "/sessions/"+stolen.ID, bearer(victim.Token), nil)
		byVictim <- answer{r, err}
	}()
	// Give V's revocation every chance to commit first, as it did before
	// the fix (then A's request went on to revoke V); a bound, not a timing
	// under test.
	select {
	case a := <-byVictim:
		byVictim <- a
	case <-time.After(500 * time.Millisecond):
	}
	if err := blocker.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
	s, v := <-byStolen, <-byVictim
	if s.err != nil || v.err != nil {
		t.Fatalf("requests failed: %v, %v", s.err, v.err)
	}
	switch {
	case s.r.Status == http.StatusOK && v.r.Status == http.StatusOK:
		t.Fatalf("both acted: A ended V (%s) and V revoked A (%s); no serial order gives that", s.r.Body, v.r.Body)
	case v.r.Status == http.StatusOK:
		s.r.wantProblem(t, http.StatusUnauthorized, "unauthenticated")
		e.wantSignedOut(t, "revoked", stolen)
		e.wantActive(t, victim)
	case s.r.Status == http.StatusOK:
		v.r.wantProblem(t, http.StatusUnauthorized, "unauthenticated")
		e.wantSignedOut(t, "revoked", victim)
		e.wantActive(t, stolen)
	default:
		t.Fatalf("neither acted: A %d %s, V %d %s", s.r.Status, s.r.Body, v.r.Status, v.r.Body)
	}
}

// Finding 4: timestamps are taken after the transaction's locks are held,
// so sign-ins that wait on one another write times in commit order: no
// session ends before it was created, and the audit trail of a client is
// in the order its changes committed.
func TestTimestampsFollowCommitOrder(t *testing.T) {
	t.Parallel()
	e := newEnv(t, realClock)
	first := e.mustSignIn(t, "alice", "")
	bodies := make([]map[string]any, racingSignIns)
	for i := range bodies {
		bodies[i] = map[string]any{"user_id": "alice", "client_id": first.ClientID}
	}
	signInAll(t, []*testEnv{e}, bodies)

	for id, s := range storedSessions(t, e, "client_id = $1", first.ClientID) {
		if s.EndedAt != nil && s.EndedAt.Before(s.CreatedAt) {
			t.Errorf("session %s ended at %s, before it was created at %s", id, s.EndedAt, s.CreatedAt)
		}
	}
	rows, err := e.Store.Pool().Query(context.Background(),
		`SELECT e.id, e.at FROM session_events e JOIN sessions s ON s.id = e.session_id WHERE s.client_id = $1 ORDER BY e.id`, first.ClientID)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var last time.Time
	for rows.Next() {
		var id int64
		var at time.Time
		if err := rows.Scan(&id, &at); err != nil {
			t.Fatal(err)
		}
		if at.Before(last) {
			t.Errorf("audit row %d at %s comes after one at %s", id, at, last)
		}
		last = at
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
}

// Finding 5: a device or user sign-out racing a sign-in there is
// serializable. Either order leaves an active session for the sign-out to
// end, so an answer that ended nothing while the sign-in replaced the old
// session and kept the new one is the anomaly.
func TestScopeSignOutRacingSignInIsSerializable(t *testing.T) {
	t.Parallel()
	const trials = 200
	for _, scope := range []string{"client", "user"} {
		t.Run(scope, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			for i := range trials {
				user := fmt.Sprintf("racer%d", i)
				old := e.mustSignIn(t, user, "")
				path := "/clients/" + old.ClientID + "/sessions"
				if scope == "user" {
					path = "/users/" + user + "/sessions"
				}
				ending, signIn := raceEndingWithSignIn(t, e, path, backend, user, old.ClientID)
				if len(ending.Ended) != 1 {
					t.Fatalf("trial %d: DELETE %s ended %v while the sign-in ended %+v: no serial order gives that", i, path, endedIDs(ending), signIn.Ended)
				}
				created := signedIn{ID: signIn.Session.ID, UserID: user, ClientID: old.ClientID, Token: signIn.Token}
				if ending.Ended[0].ID == created.ID {
					// The sign-in came first and replaced the old session.
					e.wantSignedOut(t, "revoked", created)
					e.wantSignedOut(t, "replaced", old)
				} else {
					e.wantSignedOut(t, "revoked", old)
					e.wantActive(t, created)
				}
			}
		})
	}
}

// The same for the holder's own "sign out of all accounts" (multi mode,
// DELETE /session, whose first statement locks the client and its
// sessions) racing another account's sign-in on that device: either the
// sign-in came first and both sessions end, or it came after and its
// session lives.
func TestHolderDeviceSignOutRacingSignInIsSerializable(t *testing.T) {
	t.Parallel()
	const trials = 200
	e := newEnv(t, multiMode)
	signInFirst := 0
	defer func() { t.Logf("%d of %d trials: the sign-in came first", signInFirst, trials) }()
	for i := range trials {
		holder := e.mustSignIn(t, fmt.Sprintf("holder%d", i), "")
		other := fmt.Sprintf("other%d", i)
		ending, signIn := raceEndingWithSignIn(t, e, "/session", bearer(holder.Token), other, holder.ClientID)
		created := signedIn{ID: signIn.Session.ID, UserID: other, ClientID: holder.ClientID, Token: signIn.Token}
		e.wantSignedOut(t, "ended", holder)
		switch ids := endedIDs(ending); {
		case len(ids) == 2 && slices.Contains(ids, created.ID) && slices.Contains(ids, holder.ID):
			e.wantSignedOut(t, "ended", created)
			signInFirst++
		case len(ids) == 1 && ids[0] == holder.ID:
			e.wantActive(t, created)
		default:
			t.Fatalf("trial %d: DELETE /session ended %v, the sign-in made %s: no serial order gives that", i, ids, created.ID)
		}
	}
}

// raceEndingWithSignIn sends DELETE path as who and a sign-in of user on
// clientID at the same time, and returns both answers.
func raceEndingWithSignIn(t *testing.T, e *testEnv, path string, who cred, user, clientID string) (endAnswer, signInAnswer) {
	t.Helper()
	var ending endAnswer
	var signIn signInAnswer
	concurrently(2, func(j int) {
		if j == 0 {
			r, err := e.send(http.MethodDelete, path, who, nil)
			if err != nil || r.Status != http.StatusOK {
				t.Errorf("DELETE %s: %v %d %s", path, err, r.Status, r.Body)
				return
			}
			if err := json.Unmarshal(r.Body, &ending); err != nil {
				t.Error(err)
			}
			return
		}
		r, err := e.send(http.MethodPost, "/sessions", backend, map[string]any{"user_id": user, "client_id": clientID})
		if err != nil || r.Status != http.StatusCreated {
			t.Errorf("sign-in: %v %d %s", err, r.Status, r.Body)
			return
		}
		if err := json.Unmarshal(r.Body, &signIn); err != nil {
			t.Error(err)
		}
	})
	if t.Failed() {
		t.FailNow()
	}
	return ending, signIn
}

// Finding 6: with an inactivity timeout shorter than the minute between
// activity writes, a session in use must not time out.
func TestShortInactivityTimeoutKeepsSessionsInUse(t *testing.T) {
	t.Parallel()
	e := newEnv(t, inactivityTimeout(30*time.Second))
	s := e.mustSignIn(t, "alice", "")
	for range 24 { // two minutes of polling every 5 s
		e.Clock.Advance(5 * time.Second)
		if r := e.do(t, http.MethodGet, "/session", bearer(s.Token), nil); r.Status != http.StatusOK {
			t.Fatalf("polling every 5 s: GET /session = %d %s, want 200", r.Status, r.Body)
		}
	}
	// And once it is left alone, it still times out.
	e.Clock.Advance(31 * time.Second)
	e.do(t, http.MethodGet, "/session", bearer(s.Token), nil).wantProblem(t, http.StatusUnauthorized, "unauthenticated")
}

// The second review, on the fixes above: sign-outs of one session from
// several tabs at once must neither deadlock nor time out, and each answer
// must be one a serial order gives.
func TestConcurrentSignOutsOfOneSession(t *testing.T) {
	t.Parallel()
	for _, path := range []string{"/session", "/sessions/$self"} {
		t.Run(path, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			s := e.mustSignIn(t, "alice", "")
			target := strings.Replace(path, "$self", s.ID, 1)
			answers := make([]response, 5)
			errs := make([]error, 5)
			concurrently(5, func(i int) { answers[i], errs[i] = e.send(http.MethodDelete, target, bearer(s.Token), nil) })
			ended := 0
			for i, r := range answers {
				switch {
				case errs[i] != nil:
					t.Fatalf("tab %d: %v", i, errs[i])
				case r.Status == http.StatusOK:
					var a endAnswer
					if err := json.Unmarshal(r.Body, &a); err != nil {
						t.Fatal(err)
					}
					ended += len(a.Ended)
				case r.Status != http.StatusUnauthorized:
					t.Errorf("tab %d: DELETE %s = %d %s, want 200 or 401", i, target, r.Status, r.Body)
				}
			}
			if ended != 1 {
				t.Errorf("the five tabs ended %d sessions between them, want 1", ended)
			}
			e.wantSignedOut(t, "ended", s)
		})
	}
}

// A revocation that waits for the revoked session's own action records a
// time after that action: nothing the session did is stamped later than
// its end.
func TestRevocationIsStampedAfterTheActionsItWaitedFor(t *testing.T) {
	t.Parallel()
	e := newEnv(t, realClock)
	h := e.mustSignIn(t, "alice", "")
	x := e.mustSignIn(t, "alice", "")
	// Another transaction holds h's row the way one of h's own actions does.
	blocker, err := e.Store.Pool().Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer blocker.Rollback(context.Background())
	if _, err := blocker.Exec(context.Background(), `SELECT 1 FROM sessions WHERE id = $1 FOR NO KEY UPDATE`, h.ID); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 2)
	go func() { _, err := e.send(http.MethodDelete, "/sessions/"+h.ID, backend, nil); done <- err }()
	waitForLockWaiters(t, e, 1)
	go func() { _, err := e.send(http.MethodDelete, "/sessions/"+x.ID, bearer(h.Token), nil); done <- err }()
	waitForLockWaiters(t, e, 2)
	if err := blocker.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	var hEnded time.Time
	var late int
	err = e.Store.Pool().QueryRow(context.Background(), `SELECT
		(SELECT at FROM session_events WHERE session_id = $1 AND new_status <> 'active'),
		(SELECT count(*) FROM session_events WHERE actor = 'session:' || $1 AND at >
			(SELECT at FROM session_events WHERE session_id = $1 AND new_status <> 'active'))`, h.ID).Scan(&hEnded, &late)
	if err != nil {
		t.Fatal(err)
	}
	if late > 0 {
		t.Errorf("%d changes by session %s are stamped after its revocation at %s", late, h.ID, hEnded)
	}
}

// The second review: a body on an endpoint that takes none, an unknown
// ?except=, and JSON field names in another case or twice are refused and
// end nothing.
func TestSecondReviewInputsAreRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t, multiMode)
	alice := e.mustSignIn(t, "alice", "")
	bob := e.mustSignIn(t, "bob", alice.ClientID)
	elsewhere := e.mustSignIn(t, "alice", "")

	r := e.do(t, http.MethodDelete, "/session", bearer(alice.Token), map[string]any{"session_id": bob.ID})
	r.wantProblem(t, http.StatusBadRequest, "invalid_request")
	e.do(t, http.MethodDelete, "/users/alice/sessions?except=sess_01J00000000000000000000000", bearer(alice.Token), nil).
		wantProblem(t, http.StatusNotFound, "session_not_found")
	e.do(t, http.MethodDelete, "/users/alice/sessions?except="+bob.ID, backend, nil).
		wantProblem(t, http.StatusNotFound, "session_not_found")
	e.wantActive(t, alice, bob, elsewhere)

	before := e.dbState(t)
	for _, body := range []string{
		`{"user_id":"alice","USER_ID":"mallory"}`,
		`{"user_id":"alice","user_id":"mallory"}`,
		`{"User_Id":"mallory"}`,
	} {
		e.do(t, http.MethodPost, "/sessions", backend, body).wantProblem(t, http.StatusBadRequest, "invalid_request")
	}
	e.wantUnchanged(t, "sign-ins with ambiguous fields", before)
}
