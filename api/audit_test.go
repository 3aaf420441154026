package api_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"slices"
	"testing"
	"time"
)

// Invariant 6: every change of a session is recorded in session_events in
// the same transaction as the change: which session, old and new status,
// when, and the actor.

// auditEvent is one row of session_events.
type auditEvent struct {
	SessionID string
	OldStatus string // "" for the creation (NULL)
	NewStatus string
	At        time.Time
	Actor     string
}

// auditEvents reads session_events in the order they were written.
func auditEvents(t *testing.T, e *testEnv) []auditEvent {
	t.Helper()
	rows, err := e.Store.Pool().Query(context.Background(),
		`SELECT session_id, coalesce(old_status, ''), new_status, at, actor FROM session_events ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var events []auditEvent
	for rows.Next() {
		var ev auditEvent
		if err := rows.Scan(&ev.SessionID, &ev.OldStatus, &ev.NewStatus, &ev.At, &ev.Actor); err != nil {
			t.Fatal(err)
		}
		events = append(events, ev)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return events
}

// apiKeyActor is how the audit table names the test's API key.
func apiKeyActor() string {
	h := sha256.Sum256([]byte(apiKey))
	return "api_key:" + hex.EncodeToString(h[:])[:12]
}

// wantAuditTrail checks invariant 6 over the whole database: every session
// has exactly one creation row (NULL → active, at its created_at) and, if it
// left active, exactly one more row, active → its status, at its ended_at
// (an expiry is written when it is recorded, so not before its ended_at);
// and no row names a session that does not exist.
func wantAuditTrail(t *testing.T, e *testEnv) {
	t.Helper()
	stored := storedSessions(t, e, "true")
	bySession := map[string][]auditEvent{}
	for _, ev := range auditEvents(t, e) {
		bySession[ev.SessionID] = append(bySession[ev.SessionID], ev)
	}
	for id := range bySession {
		if _, ok := stored[id]; !ok {
			t.Errorf("audit rows for %s, which does not exist", id)
		}
	}
	for id, s := range stored {
		evs := bySession[id]
		want := 1
		if s.Status != "active" {
			want = 2
		}
		if len(evs) != want {
			t.Errorf("%s is %s with %d audit rows %+v, want %d", id, s.Status, len(evs), evs, want)
			continue
		}
		if c := evs[0]; c.OldStatus != "" || c.NewStatus != "active" || !c.At.Equal(s.CreatedAt) {
			t.Errorf("%s: creation row %+v, want NULL → active at %v", id, c, s.CreatedAt)
		}
		if want == 1 {
			continue
		}
		end := evs[1]
		atOK := end.At.Equal(*s.EndedAt) || (s.Status == "expired" && end.At.After(*s.EndedAt))
		if end.OldStatus != "active" || end.NewStatus != s.Status || !atOK {
			t.Errorf("%s: ending row %+v, want active → %s at %v", id, end, s.Status, s.EndedAt)
		}
	}
}

// eventsOf returns the audit rows of one session without their times.
func eventsOf(events []auditEvent, id string) []auditEvent {
	var got []auditEvent
	for _, ev := range events {
		if ev.SessionID == id {
			ev.SessionID, ev.At = "", time.Time{}
			got = append(got, ev)
		}
	}
	return got
}

func TestAuditTrail(t *testing.T) {
	t.Parallel()
	e := newEnv(t, multiMode, maxSessions(2))
	key := apiKeyActor()
	step := func() { e.Clock.Advance(time.Minute) }

	s1 := e.mustSignIn(t, "alice", "") // on client A
	step()
	s2 := e.mustSignIn(t, "alice", s1.ClientID) // replaces s1
	step()
	s3 := e.mustSignIn(t, "bob", s1.ClientID)
	step()
	s4 := e.mustSignIn(t, "alice", "") // alice's second session
	step()
	s5 := e.mustSignIn(t, "alice", "") // evicts s2, the least recently active
	step()
	dave := e.mustSignIn(t, "dave", "")
	step()
	e.mustEnd(t, "/session", bearer(s3.Token)) // bob signs out of client A: ends s3
	step()
	e.mustEnd(t, "/session"+q("session_id", s4.ID), bearer(s5.Token)) // revokes s4 from another client
	step()
	s6 := e.mustSignIn(t, "carol", "")
	e.mustEnd(t, "/sessions/"+s6.ID, backend) // the API key revokes s6

	before := auditEvents(t, e)
	t.Run("a request that fails or changes nothing writes no row", func(t *testing.T) {
		step() // a minute on, so the first request's activity is written
		for _, c := range []struct {
			name   string
			method string
			path   string
			cred   cred
			body   any
			status int
		}{
			{"activity (GET /session)", http.MethodGet, "/session", bearer(s5.Token), nil, 200},
			{"bad redirect_url", http.MethodDelete, "/session" + q("redirect_url", "https://evil.example.com/"), bearer(s5.Token), nil, 400},
			{"unknown session", http.MethodDelete, "/sessions/sess_01J0000000000000000000000Z", backend, nil, 404},
			{"session the holder may not see", http.MethodDelete, "/session" + q("session_id", dave.ID), bearer(s5.Token), nil, 404},
			{"another user's sessions", http.MethodDelete, "/users/dave/sessions", bearer(s5.Token), nil, 403},
			{"sign-in on an unknown client", http.MethodPost, "/sessions", backend, map[string]any{"user_id": "alice", "client_id": "client_01J0000000000000000000000Z"}, 404},
			{"sign-in with a bad body", http.MethodPost, "/sessions", backend, map[string]any{"user_id": ""}, 400},
			{"ending an ended session again", http.MethodDelete, "/sessions/" + s6.ID, backend, nil, 200},
			{"an ended token", http.MethodDelete, "/session", bearer(s3.Token), nil, 401},
		} {
			e.do(t, c.method, c.path, c.cred, c.body).wantStatus(t, c.status)
			if got := auditEvents(t, e); len(got) != len(before) {
				t.Errorf("%s: wrote %d audit rows", c.name, len(got)-len(before))
			}
		}
		if got := storedSessions(t, e, "id = $1", s5.ID)[s5.ID].LastActiveAt; !got.Equal(e.Clock.Now()) {
			t.Errorf("last_active_at %v: the activity was not written, so the case proves nothing", got)
		}
	})

	// Past the lifetime: a request records dave's expiry, the sweeper s5's.
	e.Clock.Advance(168 * time.Hour)
	if a := e.mustEnd(t, "/users/dave/sessions", backend); len(a.Ended) != 0 {
		t.Fatalf("ending dave's expired session listed %v", endedIDs(a))
	}
	if _, err := e.Svc.Sweep(context.Background()); err != nil {
		t.Fatal(err)
	}

	events := auditEvents(t, e)
	created := auditEvent{OldStatus: "", NewStatus: "active", Actor: key}
	for _, c := range []struct {
		name    string
		session signedIn
		want    []auditEvent
	}{
		{"replaced by the API key's sign-in", s1, []auditEvent{created, {OldStatus: "active", NewStatus: "replaced", Actor: key}}},
		{"evicted by the API key's sign-in", s2, []auditEvent{created, {OldStatus: "active", NewStatus: "evicted", Actor: key}}},
		{"ended by its holder", s3, []auditEvent{created, {OldStatus: "active", NewStatus: "ended", Actor: "session:" + s3.ID}}},
		{"revoked by a holder on another client", s4, []auditEvent{created, {OldStatus: "active", NewStatus: "revoked", Actor: "session:" + s5.ID}}},
		{"expired, recorded by the sweeper", s5, []auditEvent{created, {OldStatus: "active", NewStatus: "expired", Actor: "system"}}},
		{"revoked by the API key", s6, []auditEvent{created, {OldStatus: "active", NewStatus: "revoked", Actor: key}}},
		{"expired, recorded by a request", dave, []auditEvent{created, {OldStatus: "active", NewStatus: "expired", Actor: "system"}}},
	} {
		if got := eventsOf(events, c.session.ID); !slices.Equal(got, c.want) {
			t.Errorf("%s: audit rows %+v, want %+v", c.name, got, c.want)
		}
	}
	if len(events) != 14 {
		t.Errorf("%d audit rows, want 14 (7 sessions created, 7 ended)", len(events))
	}
	// Every row is at the moment of its change (expiry: when it is recorded).
	wantAuditTrail(t, e)

	t.Run("rows outlive the sessions the sweeper deletes", func(t *testing.T) {
		e.Clock.Advance(720*time.Hour + time.Second)
		if _, err := e.Svc.Sweep(context.Background()); err != nil {
			t.Fatal(err)
		}
		if left := storedSessions(t, e, "true"); len(left) != 0 {
			t.Fatalf("%d sessions left after the retention", len(left))
		}
		if got := auditEvents(t, e); len(got) != len(events) {
			t.Errorf("%d audit rows after the sweep deleted the sessions, want %d", len(got), len(events))
		}
	})
}
