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

// world is the cast of most sign-out tests: alice on two devices, bob on
// alice's first device (multi mode only) and carol elsewhere.
type world struct {
	aliceHere  signedIn // alice on client 1: the caller
	aliceThere signedIn // alice on client 2
	bobHere    signedIn // bob on client 1 (multi mode)
	carol      signedIn // carol on client 3: a stranger
}

func newWorld(t *testing.T, e *testEnv, multi bool) world {
	t.Helper()
	var w world
	w.aliceHere = e.mustSignIn(t, "alice", "")
	w.aliceThere = e.mustSignIn(t, "alice", "")
	if multi {
		w.bobHere = e.mustSignIn(t, "bob", w.aliceHere.ClientID)
	}
	w.carol = e.mustSignIn(t, "carol", "")
	return w
}

func TestSignOutSingleMode(t *testing.T) {
	t.Parallel()
	t.Run("single/sign-out ends only the current session", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		w := newWorld(t, e, false)
		a := e.mustEnd(t, "/session", bearer(w.aliceHere.Token))
		if got := endedIDs(a); !slices.Equal(got, []string{w.aliceHere.ID}) {
			t.Fatalf("ended %v, want only the caller's session", got)
		}
		e.wantSignedOut(t, "ended", w.aliceHere)
		e.wantActive(t, w.aliceThere, w.carol)
	})
	t.Run("single/session_id of own user on another client is revoked", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		w := newWorld(t, e, false)
		e.mustEnd(t, "/session"+q("session_id", w.aliceThere.ID), bearer(w.aliceHere.Token))
		e.wantSignedOut(t, "revoked", w.aliceThere)
		e.wantActive(t, w.aliceHere, w.carol)
	})
	t.Run("single/session_id of own session ends it", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		w := newWorld(t, e, false)
		e.mustEnd(t, "/session"+q("session_id", w.aliceHere.ID), bearer(w.aliceHere.Token))
		e.wantSignedOut(t, "ended", w.aliceHere)
		e.wantActive(t, w.aliceThere, w.carol)
	})
	t.Run("single/session_id of a stranger is 404 and nothing ends", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		w := newWorld(t, e, false)
		e.do(t, http.MethodDelete, "/session"+q("session_id", w.carol.ID), bearer(w.aliceHere.Token), nil).
			wantProblem(t, http.StatusNotFound, "session_not_found")
		e.wantActive(t, w.aliceHere, w.aliceThere, w.carol)
	})
}

func TestSignOutMultiMode(t *testing.T) {
	t.Parallel()
	t.Run("multi/sign-out ends every session on the caller's client", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, multiMode)
		w := newWorld(t, e, true)
		a := e.mustEnd(t, "/session", bearer(w.aliceHere.Token))
		if got := endedIDs(a); len(got) != 2 || !slices.Contains(got, w.aliceHere.ID) || !slices.Contains(got, w.bobHere.ID) {
			t.Fatalf("ended %v, want alice's and bob's sessions on client 1", got)
		}
		e.wantSignedOut(t, "ended", w.aliceHere, w.bobHere)
		e.wantActive(t, w.aliceThere, w.carol)
	})
	t.Run("multi/session_id of another account on the same client is ended", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, multiMode)
		w := newWorld(t, e, true)
		e.mustEnd(t, "/session"+q("session_id", w.bobHere.ID), bearer(w.aliceHere.Token))
		e.wantSignedOut(t, "ended", w.bobHere)
		e.wantActive(t, w.aliceHere, w.aliceThere, w.carol)
	})
	t.Run("multi/session_id of own user on another client is revoked", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, multiMode)
		w := newWorld(t, e, true)
		e.mustEnd(t, "/session"+q("session_id", w.aliceThere.ID), bearer(w.aliceHere.Token))
		e.wantSignedOut(t, "revoked", w.aliceThere)
		e.wantActive(t, w.aliceHere, w.bobHere, w.carol)
	})
	t.Run("multi/session_id of a stranger is 404 and nothing ends", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, multiMode)
		w := newWorld(t, e, true)
		e.do(t, http.MethodDelete, "/session"+q("session_id", w.carol.ID), bearer(w.aliceHere.Token), nil).
			wantProblem(t, http.StatusNotFound, "session_not_found")
		e.wantActive(t, w.aliceHere, w.aliceThere, w.bobHere, w.carol)
	})
	t.Run("multi/bob on alice's device may not end alice's other device", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, multiMode)
		w := newWorld(t, e, true)
		e.do(t, http.MethodDelete, "/session"+q("session_id", w.aliceThere.ID), bearer(w.bobHere.Token), nil).
			wantProblem(t, http.StatusNotFound, "session_not_found")
		e.wantActive(t, w.aliceHere, w.aliceThere, w.bobHere, w.carol)
	})
}

func TestEndingEndpoints(t *testing.T) {
	t.Parallel()
	t.Run("API key ending one session revokes it", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, multiMode)
		w := newWorld(t, e, true)
		e.mustEnd(t, "/sessions/"+w.aliceHere.ID, backend)
		e.wantSignedOut(t, "revoked", w.aliceHere)
		e.wantActive(t, w.aliceThere, w.bobHere, w.carol)
	})
	t.Run("holder ending one session on its own client ends it", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, multiMode)
		w := newWorld(t, e, true)
		e.mustEnd(t, "/sessions/"+w.bobHere.ID, bearer(w.aliceHere.Token))
		e.wantSignedOut(t, "ended", w.bobHere)
		e.wantActive(t, w.aliceHere, w.aliceThere, w.carol)
	})
	t.Run("sign out everywhere: the user's sessions on every client", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, multiMode)
		w := newWorld(t, e, true)
		a := e.mustEnd(t, "/users/alice/sessions", bearer(w.aliceHere.Token))
		if len(a.Ended) != 2 {
			t.Fatalf("ended %v, want alice's two sessions", endedIDs(a))
		}
		e.wantSignedOut(t, "ended", w.aliceHere)
		e.wantSignedOut(t, "revoked", w.aliceThere)
		e.wantActive(t, w.bobHere, w.carol)
	})
	t.Run("sign out other devices: except keeps the caller's session", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		w := newWorld(t, e, false)
		third := e.mustSignIn(t, "alice", "")
		a := e.mustEnd(t, "/users/alice/sessions"+q("except", w.aliceHere.ID), bearer(w.aliceHere.Token))
		if len(a.Ended) != 2 {
			t.Fatalf("ended %v, want alice's two other sessions", endedIDs(a))
		}
		e.wantSignedOut(t, "revoked", w.aliceThere, third)
		e.wantActive(t, w.aliceHere, w.carol)
	})
	t.Run("API key ending a user's sessions revokes them all", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, multiMode)
		w := newWorld(t, e, true)
		e.mustEnd(t, "/users/alice/sessions", backend)
		e.wantSignedOut(t, "revoked", w.aliceHere, w.aliceThere)
		e.wantActive(t, w.bobHere, w.carol)
	})
	t.Run("holder signing out of all accounts on its client ends them", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, multiMode)
		w := newWorld(t, e, true)
		e.mustEnd(t, "/clients/"+w.aliceHere.ClientID+"/sessions", bearer(w.bobHere.Token))
		e.wantSignedOut(t, "ended", w.aliceHere, w.bobHere)
		e.wantActive(t, w.aliceThere, w.carol)
	})
	t.Run("API key ending a client's sessions revokes them", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, multiMode)
		w := newWorld(t, e, true)
		e.mustEnd(t, "/clients/"+w.aliceHere.ClientID+"/sessions", backend)
		e.wantSignedOut(t, "revoked", w.aliceHere, w.bobHere)
		e.wantActive(t, w.aliceThere, w.carol)
	})
}

func TestEndingIsIdempotent(t *testing.T) {
	t.Parallel()
	e := newEnv(t, multiMode)
	w := newWorld(t, e, true)
	first := e.mustEnd(t, "/sessions/"+w.bobHere.ID, bearer(w.aliceHere.Token))
	if len(first.Ended) != 1 {
		t.Fatalf("first DELETE ended %v", endedIDs(first))
	}
	for _, c := range []struct {
		name string
		path string
		cred cred
	}{
		{"again by the same holder", "/sessions/" + w.bobHere.ID, bearer(w.aliceHere.Token)},
		{"again by the API key", "/sessions/" + w.bobHere.ID, backend},
		{"again through signOut({sessionId})", "/session" + q("session_id", w.bobHere.ID), bearer(w.aliceHere.Token)},
	} {
		if a := e.mustEnd(t, c.path, c.cred); len(a.Ended) != 0 {
			t.Errorf("%s: ended %v, want nothing", c.name, endedIDs(a))
		}
	}
	// Left as it was: still "ended" (not "revoked") with the same ended_at.
	r := e.do(t, http.MethodGet, "/sessions/"+w.bobHere.ID, backend, nil)
	var s session
	r.decode(t, &s)
	if s.Status != "ended" || s.EndedAt == nil || !s.EndedAt.Equal(*first.Ended[0].EndedAt) {
		t.Fatalf("after repeated DELETEs: %s, want it as the first DELETE left it", r.Body)
	}
	e.wantActive(t, w.aliceHere, w.aliceThere, w.carol)
}

func TestRedirectURL(t *testing.T) {
	t.Parallel()
	e := newEnv(t, allowRedirectOrigins("https://app.example.com", "http://localhost:3000"))
	for _, c := range []struct {
		url  string
		good bool
	}{
		{"/", true},
		{"/goodbye?from=app#top", true},
		{"https://app.example.com/bye", true},
		{"http://localhost:3000/", true},
		{"HTTPS://APP.EXAMPLE.COM/bye", true},
		{"//evil.example.com/", false},
		{`/\evil.example.com`, false},
		{"https://evil.example.com/", false},
		{"https://app.example.com.evil.example/", false},
		{"https://app.example.com@evil.example.com/", false},
		{"http://app.example.com/", false}, // wrong scheme for that origin
		{"javascript:alert(1)", false},
		{"goodbye", false},
		{"/good\nbye", false},
		{"/" + strings.Repeat("a", 3000), false},
	} {
		s := e.mustSignIn(t, "user", "")
		path := "/session" + q("redirect_url", c.url)
		r := e.do(t, http.MethodDelete, path, bearer(s.Token), nil)
		if !c.good {
			r.wantProblem(t, http.StatusBadRequest, "invalid_redirect_url")
			e.wantActive(t, s) // nothing ended
			continue
		}
		r.wantStatus(t, http.StatusOK)
		var a endAnswer
		r.decode(t, &a)
		if a.RedirectURL == nil || *a.RedirectURL != c.url {
			t.Errorf("redirect_url %q: echoed %v", c.url, a.RedirectURL)
		}
		e.wantSignedOut(t, "ended", s)
	}
	// Every ending endpoint checks it before anything ends.
	s := e.mustSignIn(t, "dave", "")
	for _, path := range []string{"/sessions/" + s.ID, "/users/dave/sessions", "/clients/" + s.ClientID + "/sessions"} {
		e.do(t, http.MethodDelete, path+q("redirect_url", "https://evil.example.com/"), backend, nil).
			wantProblem(t, http.StatusBadRequest, "invalid_redirect_url")
	}
	e.wantActive(t, s)
	if a := e.mustEnd(t, "/users/dave/sessions", backend); a.RedirectURL != nil {
		t.Errorf("redirect_url without one given: %q, want null", *a.RedirectURL)
	}
}

func TestCookie(t *testing.T) {
	t.Parallel()
	t.Run("authenticates like the bearer token", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		s := e.mustSignIn(t, "alice", "")
		var got session
		r := e.do(t, http.MethodGet, "/session", cookie(s.Token), nil)
		r.wantStatus(t, http.StatusOK)
		r.decode(t, &got)
		if got.ID != s.ID {
			t.Fatalf("cookie resolved to %s, want %s", got.ID, s.ID)
		}
	})
	t.Run("signing out with the cookie clears it", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		s := e.mustSignIn(t, "alice", "")
		r := e.do(t, http.MethodDelete, "/session", cookie(s.Token), nil)
		r.wantStatus(t, http.StatusOK)
		sc := r.Header.Get("Set-Cookie")
		for _, want := range []string{"__session=", "Max-Age=0", "HttpOnly", "Secure", "Path=/"} {
			if !strings.Contains(sc, want) {
				t.Errorf("Set-Cookie %q lacks %q", sc, want)
			}
		}
		e.wantSignedOut(t, "ended", s)
	})
	t.Run("a bearer sign-out sets no cookie", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		s := e.mustSignIn(t, "alice", "")
		if sc := e.do(t, http.MethodDelete, "/session", bearer(s.Token), nil).Header.Get("Set-Cookie"); sc != "" {
			t.Errorf("Set-Cookie %q on a bearer sign-out", sc)
		}
	})
	t.Run("ending another session keeps the caller's cookie", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, multiMode)
		w := newWorld(t, e, true)
		r := e.do(t, http.MethodDelete, "/session"+q("session_id", w.bobHere.ID), cookie(w.aliceHere.Token), nil)
		r.wantStatus(t, http.StatusOK)
		if sc := r.Header.Get("Set-Cookie"); sc != "" {
			t.Errorf("Set-Cookie %q though the caller's session goes on", sc)
		}
	})
	t.Run("the Authorization header wins over the cookie", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		s := e.mustSignIn(t, "alice", "")
		r := e.do(t, http.MethodGet, "/session", cred{bearer: "st_" + strings.Repeat("A", 43), cookie: s.Token}, nil)
		r.wantProblem(t, http.StatusUnauthorized, "unauthenticated")
	})
}

func TestEmptyIDParameterIsRejected(t *testing.T) {
	t.Parallel()
	e := newEnv(t, multiMode)
	w := newWorld(t, e, true)
	// Leaving the value out must not widen the sign-out to every session.
	e.do(t, http.MethodDelete, "/users/alice/sessions?except=", bearer(w.aliceHere.Token), nil).
		wantProblem(t, http.StatusBadRequest, "invalid_id")
	e.do(t, http.MethodDelete, "/session?session_id=", bearer(w.aliceHere.Token), nil).
		wantProblem(t, http.StatusBadRequest, "invalid_id")
	e.wantActive(t, w.aliceHere, w.aliceThere, w.bobHere, w.carol)
}

// TestSignOutCountsAsActivity: a plain sign-out (DELETE /session) is a use
// of the session like any other request: when the once-a-minute activity
// write is due, the ended session says it was last active at the sign-out
// — in the answer and as stored — in both modes, whichever way the token
// is checked; when it is not due, last_active_at stays.
func TestSignOutCountsAsActivity(t *testing.T) {
	t.Parallel()
	for _, mode := range []struct {
		name string
		opt  func(*sessions.Config, *api.Config)
	}{{"single", func(*sessions.Config, *api.Config) {}}, {"multi", multiMode}} {
		for _, c := range []struct {
			name    string
			after   time.Duration
			touched bool
		}{{"activity due", 2 * time.Minute, true}, {"activity not due", 10 * time.Second, false}} {
			t.Run(mode.name+"/"+c.name, func(t *testing.T) {
				t.Parallel()
				e := newEnv(t, mode.opt)
				s := e.mustSignIn(t, "alice", "")
				signedInAt := e.Clock.Now()
				e.Clock.Advance(c.after)
				var ended endAnswer
				e.do(t, http.MethodDelete, "/session", bearer(s.Token), nil).decode(t, &ended)
				want := signedInAt
				if c.touched {
					want = e.Clock.Now()
				}
				if len(ended.Ended) != 1 || !ended.Ended[0].LastActiveAt.Equal(want) {
					t.Fatalf("ended %+v; want %s last active at %s", ended.Ended, s.ID, want)
				}
				var stored time.Time
				if err := e.Store.Pool().QueryRow(context.Background(), `SELECT last_active_at FROM sessions WHERE id = $1`, s.ID).Scan(&stored); err != nil || !stored.Equal(want) {
					t.Errorf("stored last_active_at %s (%v), want %s", stored, err, want)
				}
			})
		}
	}
}
