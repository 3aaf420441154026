package api_test

import (
	"net/http"
	"testing"
)

// The review's findings (SECURITY.md, "Fail closed"): a request that
// cannot be read exactly is refused before anything happens, and a
// sign-out never ends more, or other, sessions than asked.

// Finding 1: malformed query pairs were dropped, so a narrow sign-out
// widened or hit the wrong session.
func TestMalformedQueryEndsNothing(t *testing.T) {
	t.Parallel()
	for _, mode := range []struct {
		name string
		opts []option
	}{{"single", nil}, {"multi", []option{multiMode}}} {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, append(mode.opts, allowRedirectOrigins("https://app.example.com"))...)
			alice := e.mustSignIn(t, "alice", "")
			aliceThere := e.mustSignIn(t, "alice", "")
			// In multi mode bob is signed in beside alice; in single mode
			// that would replace her, so he has a client of his own.
			bobClient := alice.ClientID
			if mode.name == "single" {
				bobClient = ""
			}
			bobHere := e.mustSignIn(t, "bob", bobClient)
			for _, c := range []struct{ name, target string }{
				{"';' after except", "/users/alice/sessions?except=" + alice.ID + ";redirect_url=/bye"},
				{"'%' after except", "/users/alice/sessions?except=" + alice.ID + "%"},
				{"';' after session_id", "/session?session_id=" + aliceThere.ID + ";"},
				{"bad escape in session_id", "/session?session_id=" + aliceThere.ID + "%zz"},
				{"bad escape in redirect_url", "/session?redirect_url=https://evil.example/%zz"},
				{"';' in a one-session sign-out", "/sessions/" + aliceThere.ID + "?redirect_url=/;x"},
				{"';' in a device sign-out", "/clients/" + alice.ClientID + "/sessions?redirect_url=/bye;"},
				{"misspelt session_id", "/session?sessionId=" + aliceThere.ID},
				{"session_id twice", "/session?session_id=" + aliceThere.ID + "&session_id=" + alice.ID},
				{"except twice", "/users/alice/sessions?except=" + alice.ID + "&except=" + aliceThere.ID},
				{"unknown parameter", "/users/alice/sessions?except=" + alice.ID + "&all=true"},
			} {
				r := e.do(t, http.MethodDelete, c.target, bearer(alice.Token), nil)
				if r.Status != http.StatusBadRequest || problemCodeOf(r.Body) != "invalid_request" {
					t.Errorf("%s: DELETE %s = %d %s, want 400 invalid_request", c.name, c.target, r.Status, r.Body)
				}
			}
			e.wantActive(t, alice, aliceThere, bobHere)
		})
	}
	t.Run("lists and every other route", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		alice := e.mustSignIn(t, "alice", "")
		for _, c := range []struct {
			method, target string
			who            cred
		}{
			{http.MethodGet, "/users/alice/sessions?status=all;limit=1", backend},
			{http.MethodGet, "/clients/" + alice.ClientID + "/sessions?cursor=%zz", bearer(alice.Token)},
			{http.MethodGet, "/users/alice/sessions?limit=1&limit=100", backend},
			{http.MethodGet, "/session?%", bearer(alice.Token)},
			{http.MethodGet, "/session?cachebuster=1", bearer(alice.Token)},
			{http.MethodGet, "/sessions/" + alice.ID + "?;", backend},
			{http.MethodPost, "/sessions?user_id=alice;", backend},
			{http.MethodGet, "/healthz?%zz", noCred},
		} {
			before := e.dbState(t)
			r := e.do(t, c.method, c.target, c.who, nil)
			if r.Status != http.StatusBadRequest || problemCodeOf(r.Body) != "invalid_request" {
				t.Errorf("%s %s = %d %s, want 400 invalid_request", c.method, c.target, r.Status, r.Body)
			}
			e.wantUnchanged(t, c.method+" "+c.target, before)
		}
	})
}

// Finding 2: "+" in a user ID in the path was read as a space.
func TestUserIDInPathIsDecodedAsAPath(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	plus := e.mustSignIn(t, "ops+eu/alice", "")
	space := e.mustSignIn(t, "ops eu/alice", "")
	plain := e.mustSignIn(t, "a+b", "")
	aSpaceB := e.mustSignIn(t, "a b", "")

	a := e.mustEnd(t, "/users/ops+eu%2Falice/sessions", backend)
	if ids := endedIDs(a); len(ids) != 1 || ids[0] != plus.ID {
		t.Fatalf("DELETE /users/ops+eu%%2Falice/sessions ended %v, want only %s", ids, plus.ID)
	}
	e.wantSignedOut(t, "revoked", plus)
	e.wantActive(t, space)

	// Without any escape the path reaches the router decoded: the same
	// rule must hold.
	a = e.mustEnd(t, "/users/a+b/sessions", backend)
	if ids := endedIDs(a); len(ids) != 1 || ids[0] != plain.ID {
		t.Fatalf("DELETE /users/a+b/sessions ended %v, want only %s", ids, plain.ID)
	}
	e.wantActive(t, aSpaceB)

	// A space is spelt %20 in a path; "%2B" is a plus too.
	var l listAnswer
	r := e.do(t, http.MethodGet, "/users/ops%20eu%2Falice/sessions", backend, nil)
	r.wantStatus(t, http.StatusOK)
	r.decode(t, &l)
	if len(l.Data) != 1 || l.Data[0].ID != space.ID {
		t.Fatalf("GET /users/ops%%20eu%%2Falice/sessions = %s, want %s", r.Body, space.ID)
	}
	r = e.do(t, http.MethodGet, "/users/a%2Bb/sessions?status=all", backend, nil)
	r.wantStatus(t, http.StatusOK)
	r.decode(t, &l)
	if len(l.Data) != 1 || l.Data[0].ID != plain.ID {
		t.Fatalf("GET /users/a%%2Bb/sessions = %s, want %s", r.Body, plain.ID)
	}
}
