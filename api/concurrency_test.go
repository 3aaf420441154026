package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessiond/sessiond/api"
	"github.com/sessiond/sessiond/internal/db"
	"github.com/sessiond/sessiond/internal/pgtest"
	"github.com/sessiond/sessiond/internal/sessions"
)

// The invariants of the contract (README "Sign-out semantics", the
// partial unique index, terminal statuses) must hold under any concurrency, across
// replicas. These tests race real HTTP requests against one server, and
// against two servers with their own connection pools on one database,
// then check what the database holds. They assert outcomes only, never
// timings.

// racingSignIns is how many sign-ins each test sends at once.
const racingSignIns = 50

// deployments are the shapes every concurrency test runs on.
var deployments = []struct {
	name     string
	replicas int
}{
	{"one replica", 1},
	{"two replicas", 2},
}

// newReplicas starts n sessiond servers on one fresh database, each with
// its own pool of 20 connections, all on one clock and with a request
// timeout that only catches a hang: n replicas behind a load balancer.
func newReplicas(t *testing.T, n int, opts ...option) []*testEnv {
	t.Helper()
	url := pgtest.NewDatabase(t)
	var rs []*testEnv
	for range n {
		store, err := db.Open(context.Background(), url, 20)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(store.Close)
		o := opts
		if len(rs) > 0 {
			o = append(o[:len(o):len(o)], onClock(rs[0].Clock))
		}
		e := newEnvOn(t, store, o...)
		if len(rs) > 0 {
			e.Clock = rs[0].Clock
		}
		rs = append(rs, e)
	}
	return rs
}

// onClock makes a server read the given clock.
func onClock(c *testClock) option {
	return func(s *sessions.Config, _ *api.Config) { s.Now = c.Now }
}

// concurrently runs fn(0), …, fn(n-1) in n goroutines released at once and
// waits for them all. fn must not call t.Fatal, which only the test's own
// goroutine may call: it reports with t.Errorf.
func concurrently(n int, fn func(i int)) {
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			fn(i)
		})
	}
	close(start)
	wg.Wait()
}

// send is do for other goroutines than the test's: it returns what went
// wrong instead of stopping the test.
func (e *testEnv) send(method, path string, c cred, body any) (response, error) {
	var r io.Reader
	if body != nil {
		j, err := json.Marshal(body)
		if err != nil {
			return response{}, err
		}
		r = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, e.URL+path, r)
	if err != nil {
		return response{}, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+c.bearer)
	}
	resp, err := e.http.Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return response{Status: resp.StatusCode, Header: resp.Header, Body: b}, err
}

// signInAll sends every sign-in at once, body i to replica i mod len(rs),
// and returns the answers in the order of bodies. Any answer but 201 fails
// the test.
func signInAll(t *testing.T, rs []*testEnv, bodies []map[string]any) []signInAnswer {
	t.Helper()
	answers := make([]signInAnswer, len(bodies))
	concurrently(len(bodies), func(i int) {
		r, err := rs[i%len(rs)].send(http.MethodPost, "/sessions", backend, bodies[i])
		if err != nil {
			t.Errorf("sign-in %d: %v", i, err)
			return
		}
		if r.Status != http.StatusCreated {
			t.Errorf("sign-in %d: %d %s, want 201", i, r.Status, r.Body)
			return
		}
		if err := json.Unmarshal(r.Body, &answers[i]); err != nil {
			t.Errorf("sign-in %d: %v", i, err)
		}
	})
	if t.Failed() {
		t.FailNow()
	}
	return answers
}

// storedSession is a session's row as the database holds it.
type storedSession struct {
	UserID, ClientID, Status           string
	CreatedAt, LastActiveAt, ExpiresAt time.Time
	EndedAt                            *time.Time
}

// storedSessions reads the rows of the sessions that cond (an SQL
// condition on the sessions table) selects, by ID.
func storedSessions(t *testing.T, e *testEnv, cond string, args ...any) map[string]storedSession {
	t.Helper()
	rows, err := e.Store.Pool().Query(context.Background(),
		`SELECT id, user_id, client_id, status, created_at, last_active_at, expires_at, ended_at FROM sessions WHERE `+cond, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	got := map[string]storedSession{}
	for rows.Next() {
		var id string
		var s storedSession
		if err := rows.Scan(&id, &s.UserID, &s.ClientID, &s.Status, &s.CreatedAt, &s.LastActiveAt, &s.ExpiresAt, &s.EndedAt); err != nil {
			t.Fatal(err)
		}
		got[id] = s
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return got
}

// idsWithStatus lists the IDs of the stored sessions with this status.
func idsWithStatus(ss map[string]storedSession, status string) []string {
	var ids []string
	for id, s := range ss {
		if s.Status == status {
			ids = append(ids, id)
		}
	}
	return ids
}

// signedInFrom turns sign-in answers into the sessions they created.
func signedInFrom(answers []signInAnswer) map[string]signedIn {
	m := make(map[string]signedIn, len(answers))
	for _, a := range answers {
		s := a.Session
		m[s.ID] = signedIn{ID: s.ID, UserID: s.UserID, ClientID: s.ClientID, Token: a.Token}
	}
	return m
}

// wantEndedOnceEach checks the "ended" lists of racing sign-ins: each
// sign-in ended at most one session (its predecessor: the sign-ins were
// serialised), with the given status, and no session was reported twice.
// It returns the reported IDs.
func wantEndedOnceEach(t *testing.T, answers []signInAnswer, status string) map[string]bool {
	t.Helper()
	reported := map[string]bool{}
	for i, a := range answers {
		if len(a.Ended) > 1 {
			t.Errorf("sign-in %d ended %+v: more than the one session before it", i, a.Ended)
		}
		for _, e := range a.Ended {
			if e.Status != status {
				t.Errorf("sign-in %d ended %s as %q, want %q", i, e.ID, e.Status, status)
			}
			if reported[e.ID] {
				t.Errorf("%s is reported as ended by two sign-ins", e.ID)
			}
			reported[e.ID] = true
		}
	}
	return reported
}

// Invariant 1: in single mode a client holds at most one active session,
// however many sign-ins on it race.
func TestRacingSignInsOnOneClient(t *testing.T) {
	t.Parallel()
	for _, d := range deployments {
		t.Run(d.name+"/single: one active session on the client, the rest replaced", func(t *testing.T) {
			t.Parallel()
			rs := newReplicas(t, d.replicas)
			first := rs[0].mustSignIn(t, "first-user", "")
			bodies := make([]map[string]any, racingSignIns)
			for i := range bodies {
				bodies[i] = map[string]any{"user_id": fmt.Sprintf("user-%02d", i), "client_id": first.ClientID}
			}
			answers := signInAll(t, rs, bodies)

			stored := storedSessions(t, rs[0], "client_id = $1", first.ClientID)
			active := idsWithStatus(stored, "active")
			if len(active) != 1 {
				t.Fatalf("%d active sessions on the client, want 1: %v", len(active), active)
			}
			created := signedInFrom(answers)
			survivor, ok := created[active[0]]
			if !ok {
				t.Fatalf("the active session %s is none of the racing sign-ins", active[0])
			}
			// Serialised sign-ins each replaced exactly the session before them.
			reported := wantEndedOnceEach(t, answers, "replaced")
			for i, a := range answers {
				if len(a.Ended) != 1 {
					t.Errorf("sign-in %d ended %+v, want exactly the session before it", i, a.Ended)
				}
			}
			if len(stored) != racingSignIns+1 || len(reported) != racingSignIns {
				t.Errorf("%d sessions stored and %d reported replaced, want %d and %d", len(stored), len(reported), racingSignIns+1, racingSignIns)
			}
			created[first.ID] = first
			check := rs[len(rs)-1]
			wantReplacedAndReported(t, check, created, survivor, reported)
			check.wantActive(t, survivor)
			wantAuditTrail(t, rs[0])
		})
	}
}

// Invariant 3: with a limit of N, a user holds at most N active sessions,
// however many sign-ins of theirs race; other users do not count.
func TestRacingSignInsOfOneUserWithLimit(t *testing.T) {
	t.Parallel()
	const limit = 3
	for _, d := range deployments {
		t.Run(d.name+"/limit 3: three active sessions, the rest evicted", func(t *testing.T) {
			t.Parallel()
			rs := newReplicas(t, d.replicas, maxSessions(limit))
			bob := rs[0].mustSignIn(t, "bob", "")
			bodies := make([]map[string]any, racingSignIns)
			for i := range bodies {
				bodies[i] = map[string]any{"user_id": "alice"} // each on a new client
			}
			answers := signInAll(t, rs, bodies)

			stored := storedSessions(t, rs[0], "user_id = $1", "alice")
			active := idsWithStatus(stored, "active")
			if len(active) != limit {
				t.Fatalf("alice has %d active sessions, want %d", len(active), limit)
			}
			evicted := idsWithStatus(stored, "evicted")
			if len(evicted) != racingSignIns-limit {
				t.Errorf("%d sessions evicted, want %d", len(evicted), racingSignIns-limit)
			}
			reported := wantEndedOnceEach(t, answers, "evicted")
			if len(reported) != len(evicted) {
				t.Errorf("sign-ins reported %d evictions, the database holds %d", len(reported), len(evicted))
			}
			created := signedInFrom(answers)
			check := rs[len(rs)-1]
			for _, id := range evicted {
				if !reported[id] {
					t.Errorf("%s was evicted but no sign-in reported it", id)
				}
				check.wantSignedOut(t, "evicted", created[id])
			}
			for _, id := range active {
				check.wantActive(t, created[id])
			}
			check.wantActive(t, bob)
			wantAuditTrail(t, rs[0])
		})
	}
}

// Invariant 2: at most one active session per (client, user). In multi
// mode racing sign-ins of one user on one client replace each other and
// leave the other accounts there signed in.
func TestRacingSignInsOfOneUserOnOneClient(t *testing.T) {
	t.Parallel()
	for _, d := range deployments {
		t.Run(d.name+"/multi: one active session of the user on the client, other accounts stay", func(t *testing.T) {
			t.Parallel()
			rs := newReplicas(t, d.replicas, multiMode)
			alice := rs[0].mustSignIn(t, "alice", "")
			bob := rs[0].mustSignIn(t, "bob", alice.ClientID)
			carol := rs[0].mustSignIn(t, "carol", alice.ClientID)
			bodies := make([]map[string]any, racingSignIns)
			for i := range bodies {
				bodies[i] = map[string]any{"user_id": "alice", "client_id": alice.ClientID}
			}
			answers := signInAll(t, rs, bodies)

			stored := storedSessions(t, rs[0], "client_id = $1 AND user_id = $2", alice.ClientID, "alice")
			active := idsWithStatus(stored, "active")
			if len(active) != 1 {
				t.Fatalf("alice has %d active sessions on the client, want 1: %v", len(active), active)
			}
			reported := wantEndedOnceEach(t, answers, "replaced")
			for i, a := range answers {
				if len(a.Ended) != 1 {
					t.Errorf("sign-in %d ended %+v, want exactly alice's session before it", i, a.Ended)
				}
			}
			created := signedInFrom(answers)
			created[alice.ID] = alice
			survivor, ok := created[active[0]]
			if !ok || survivor.ID == alice.ID {
				t.Fatalf("the active session %s is none of the racing sign-ins", active[0])
			}
			check := rs[len(rs)-1]
			wantReplacedAndReported(t, check, created, survivor, reported)
			if reported[bob.ID] || reported[carol.ID] {
				t.Errorf("a sign-in of alice ended another account on the client")
			}
			check.wantActive(t, survivor, bob, carol)
			wantAuditTrail(t, rs[0])
		})
	}
}

// Invariants 4 and 5 under a race of sign-ins and sign-outs: a session
// that an answer reported as ended stays ended, exactly as reported, and
// its token answers 401 on every replica from the moment of the answer.
func TestRacingSignOutsAndSignIns(t *testing.T) {
	t.Parallel()
	const (
		signInWorkers, signInsEach = 10, 6 // 60 sign-ins of alice, each on a new client
		// Each sign-out worker sends at least minSignOuts "sign out
		// everywhere" of alice, and goes on, up to maxSignOuts, until fewer
		// than lastSignIns sign-ins are still to come (which then most
		// likely stay signed in).
		signOutWorkers, minSignOuts, maxSignOuts, lastSignIns = 4, 5, 100, 10
	)
	for _, d := range deployments {
		t.Run(d.name+"/an ended session never comes back", func(t *testing.T) {
			t.Parallel()
			rs := newReplicas(t, d.replicas)
			bob := rs[0].mustSignIn(t, "bob", "")

			var (
				signInsLeft atomic.Int32
				mu          sync.Mutex
				tokens      = map[string]string{} // session ID → token
				endings     []endAnswer           // every 2xx ending answer
			)
			// ended records a 2xx ending answer and checks at once, on another
			// replica than the one that answered, that none of the tokens it
			// ended still works.
			ended := func(other *testEnv, r response, who string) {
				var a endAnswer
				if err := json.Unmarshal(r.Body, &a); err != nil {
					t.Errorf("%s: %v", who, err)
					return
				}
				mu.Lock()
				endings = append(endings, a)
				var toks []string
				for _, s := range a.Ended {
					if tok, ok := tokens[s.ID]; ok {
						toks = append(toks, tok)
					}
				}
				mu.Unlock()
				for _, tok := range toks {
					r, err := other.send(http.MethodGet, "/session", bearer(tok), nil)
					if err != nil || r.Status != http.StatusUnauthorized {
						t.Errorf("%s: a token it ended answers GET /session with %d (%v), want 401", who, r.Status, err)
					}
				}
			}

			signInsLeft.Store(signInWorkers * signInsEach)
			concurrently(signInWorkers+signOutWorkers, func(w int) {
				e, other := rs[w%len(rs)], rs[(w+1)%len(rs)]
				if w >= signInWorkers {
					for i := 0; i < minSignOuts || (i < maxSignOuts && signInsLeft.Load() > lastSignIns); i++ {
						r, err := e.send(http.MethodDelete, "/users/alice/sessions", backend, nil)
						if err != nil || r.Status != http.StatusOK {
							t.Errorf("sign out everywhere: %d %s (%v), want 200", r.Status, r.Body, err)
							continue
						}
						ended(other, r, "sign out everywhere")
					}
					return
				}
				for j := range signInsEach {
					r, err := e.send(http.MethodPost, "/sessions", backend, map[string]any{"user_id": "alice"})
					signInsLeft.Add(-1)
					if err != nil || r.Status != http.StatusCreated {
						t.Errorf("sign-in: %d %s (%v), want 201", r.Status, r.Body, err)
						continue
					}
					var a signInAnswer
					if err := json.Unmarshal(r.Body, &a); err != nil {
						t.Errorf("sign-in: %v", err)
						continue
					}
					mu.Lock()
					tokens[a.Session.ID] = a.Token
					mu.Unlock()
					if j%2 == 1 {
						continue
					}
					// Every other new session signs straight out again; a racing
					// "sign out everywhere" may have ended it first (401).
					r, err = e.send(http.MethodDelete, "/session", bearer(a.Token), nil)
					switch {
					case err != nil:
						t.Errorf("sign-out: %v", err)
					case r.Status == http.StatusOK:
						ended(other, r, "sign-out")
					case r.Status != http.StatusUnauthorized:
						t.Errorf("sign-out: %d %s, want 200 or 401", r.Status, r.Body)
					}
				}
			})
			if t.Failed() {
				t.FailNow()
			}

			reported := map[string]session{}
			for _, a := range endings {
				for _, s := range a.Ended {
					if _, twice := reported[s.ID]; twice {
						t.Errorf("%s was reported as ended by two answers", s.ID)
					}
					reported[s.ID] = s
				}
			}
			stored := storedSessions(t, rs[0], "user_id = $1", "alice")
			if len(stored) != signInWorkers*signInsEach {
				t.Fatalf("%d sessions of alice stored, want %d", len(stored), signInWorkers*signInsEach)
			}
			t.Logf("%d sessions of alice: %d active, %d ended by a sign-out, %d revoked; %d 2xx ending answers",
				len(stored), len(idsWithStatus(stored, "active")), len(idsWithStatus(stored, "ended")),
				len(idsWithStatus(stored, "revoked")), len(endings))
			check := rs[len(rs)-1]
			for id, row := range stored {
				s := signedIn{ID: id, UserID: "alice", ClientID: row.ClientID, Token: tokens[id]}
				answered, ok := reported[id]
				switch {
				case row.Status == "active" && ok:
					t.Errorf("%s is active again after an answer reported it %s", id, answered.Status)
				case row.Status == "active":
					check.wantActive(t, s)
				case !ok:
					t.Errorf("%s is %s, but no answer reported it ended", id, row.Status)
				case row.Status != answered.Status || row.EndedAt == nil || !row.EndedAt.Equal(*answered.EndedAt):
					t.Errorf("%s is %s, ended at %v; the answer that ended it said %s at %v",
						id, row.Status, row.EndedAt, answered.Status, answered.EndedAt)
				default:
					check.wantSignedOut(t, answered.Status, s)
				}
			}
			check.wantActive(t, bob)
			wantAuditTrail(t, rs[0])
		})
	}
}

// wantReplacedAndReported fails unless every created session but the
// survivor is replaced, refused through check, and was reported replaced
// by some sign-in's answer.
func wantReplacedAndReported(t *testing.T, check *testEnv, created map[string]signedIn, survivor signedIn, reported map[string]bool) {
	t.Helper()
	for id, s := range created {
		if id == survivor.ID {
			continue
		}
		if !reported[id] {
			t.Errorf("%s was replaced but no sign-in reported it", id)
		}
		check.wantSignedOut(t, "replaced", s)
	}
}
