package api_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sessiond/sessiond/api"
	"github.com/sessiond/sessiond/internal/sessions"
)

// The callers of the authorization matrix, each asking about one target
// session: alice on client 1, in multi mode.
type callerKind string

const (
	byAPIKey        callerKind = "API key"
	byOwnToken      callerKind = "the target's own token"
	bySameUserOther callerKind = "alice on another client"
	byOtherUserHere callerKind = "bob on the same client"
	byStranger      callerKind = "carol, a stranger on her own client"
	byNoCredentials callerKind = "no credentials"
	byEndedToken    callerKind = "alice's signed-out token"
	byExpiredToken  callerKind = "alice's expired token"
)

const (
	unauthenticated = "unauthenticated"
	// sessionLifetime is newEnv's SESSIOND_SESSION_LIFETIME.
	sessionLifetime = 168 * time.Hour
	// Well-formed IDs of nothing.
	anUnknownSession = "sess_01J00000000000000000000000"
	anUnknownClient  = "client_01J00000000000000000000000"
)

var callerKinds = []callerKind{byAPIKey, byOwnToken, bySameUserOther, byOtherUserHere, byStranger, byNoCredentials, byEndedToken, byExpiredToken}

// authzWorld is the cast of the matrix. Every token but target's belongs to
// the caller it is named after.
type authzWorld struct {
	target     signedIn // alice on client 1
	aliceThere signedIn // alice on client 2
	bobHere    signedIn // bob on client 1
	carol      signedIn // carol on client 3
	ended      signedIn // alice on client 4, signed out
	expired    signedIn // alice on client 5, past its lifetime
}

// newAuthzWorld builds the cast in a multi-mode env. The expired session is
// made first and the clock moved past its lifetime, so everything made
// after it is fresh.
func newAuthzWorld(t *testing.T, e *testEnv) authzWorld {
	t.Helper()
	var w authzWorld
	w.expired = e.mustSignIn(t, "alice", "")
	e.Clock.Advance(sessionLifetime + time.Second)
	w.target = e.mustSignIn(t, "alice", "")
	w.aliceThere = e.mustSignIn(t, "alice", "")
	w.bobHere = e.mustSignIn(t, "bob", w.target.ClientID)
	w.carol = e.mustSignIn(t, "carol", "")
	w.ended = e.mustSignIn(t, "alice", "")
	e.mustEnd(t, "/session", bearer(w.ended.Token))
	return w
}

// cred returns how caller k authenticates, and the session it holds (none
// for the API key and the unauthenticated callers).
func (w authzWorld) cred(k callerKind) (cred, *signedIn) {
	switch k {
	case byAPIKey:
		return backend, nil
	case byOwnToken:
		return bearer(w.target.Token), &w.target
	case bySameUserOther:
		return bearer(w.aliceThere.Token), &w.aliceThere
	case byOtherUserHere:
		return bearer(w.bobHere.Token), &w.bobHere
	case byStranger:
		return bearer(w.carol.Token), &w.carol
	case byNoCredentials:
		return noCred, nil
	case byEndedToken:
		return bearer(w.ended.Token), nil
	case byExpiredToken:
		return bearer(w.expired.Token), nil
	}
	panic("unknown caller " + k)
}

// outcome is one cell of the matrix: the answer, and the target's status
// afterwards.
type outcome struct {
	status int
	code   string // the problem code of a refusal
	target string // the target's status afterwards
}

// answers is a success that leaves the target active.
func answers(status int) outcome { return outcome{status: status, target: "active"} }

// ends is a success after which the target has the given status.
func ends(status int, targetStatus string) outcome {
	return outcome{status: status, target: targetStatus}
}

// refused is a problem answer that leaves the target active.
func refused(status int, code string) outcome {
	return outcome{status: status, code: code, target: "active"}
}

var refusedUnauthenticated = refused(http.StatusUnauthorized, unauthenticated)

// TestAuthorizationMatrix asks every endpoint about the target session as
// every kind of caller. A session the caller may not see is 404, never
// 403; an ended, expired or missing credential is 401 with one body.
func TestAuthorizationMatrix(t *testing.T) {
	t.Parallel()
	type endpoint struct {
		method string
		path   string // {target}, {user} and {client} are the target's
		body   any
		// aboutCaller: a success answers about the caller's own session
		// (GET and DELETE /session), not the target.
		aboutCaller bool
		by          map[callerKind]outcome
	}
	endpoints := []endpoint{
		{
			method: http.MethodPost, path: "/sessions",
			body: map[string]any{"user_id": "alice", "client_id": "{client}"},
			by: map[callerKind]outcome{
				byAPIKey:        ends(http.StatusCreated, "replaced"),
				byOwnToken:      refused(http.StatusForbidden, "forbidden"),
				bySameUserOther: refused(http.StatusForbidden, "forbidden"),
				byOtherUserHere: refused(http.StatusForbidden, "forbidden"),
				byStranger:      refused(http.StatusForbidden, "forbidden"),
				byNoCredentials: refusedUnauthenticated,
				byEndedToken:    refusedUnauthenticated,
				byExpiredToken:  refusedUnauthenticated,
			},
		},
		{
			method: http.MethodGet, path: "/session", aboutCaller: true,
			by: map[callerKind]outcome{
				byAPIKey:        refused(http.StatusForbidden, "forbidden"),
				byOwnToken:      answers(http.StatusOK),
				bySameUserOther: answers(http.StatusOK),
				byOtherUserHere: answers(http.StatusOK),
				byStranger:      answers(http.StatusOK),
				byNoCredentials: refusedUnauthenticated,
				byEndedToken:    refusedUnauthenticated,
				byExpiredToken:  refusedUnauthenticated,
			},
		},
		{
			// Multi mode: signOut() ends every account on the caller's client.
			method: http.MethodDelete, path: "/session", aboutCaller: true,
			by: map[callerKind]outcome{
				byAPIKey:        refused(http.StatusForbidden, "forbidden"),
				byOwnToken:      ends(http.StatusOK, "ended"),
				bySameUserOther: answers(http.StatusOK),
				byOtherUserHere: ends(http.StatusOK, "ended"),
				byStranger:      answers(http.StatusOK),
				byNoCredentials: refusedUnauthenticated,
				byEndedToken:    refusedUnauthenticated,
				byExpiredToken:  refusedUnauthenticated,
			},
		},
		{
			method: http.MethodGet, path: "/sessions/{target}",
			by: map[callerKind]outcome{
				byAPIKey:        answers(http.StatusOK),
				byOwnToken:      answers(http.StatusOK),
				bySameUserOther: answers(http.StatusOK),
				byOtherUserHere: answers(http.StatusOK),
				byStranger:      refused(http.StatusNotFound, "session_not_found"),
				byNoCredentials: refusedUnauthenticated,
				byEndedToken:    refusedUnauthenticated,
				byExpiredToken:  refusedUnauthenticated,
			},
		},
		{
			method: http.MethodDelete, path: "/sessions/{target}",
			by: map[callerKind]outcome{
				byAPIKey:        ends(http.StatusOK, "revoked"),
				byOwnToken:      ends(http.StatusOK, "ended"),
				bySameUserOther: ends(http.StatusOK, "revoked"),
				byOtherUserHere: ends(http.StatusOK, "ended"),
				byStranger:      refused(http.StatusNotFound, "session_not_found"),
				byNoCredentials: refusedUnauthenticated,
				byEndedToken:    refusedUnauthenticated,
				byExpiredToken:  refusedUnauthenticated,
			},
		},
		{
			method: http.MethodGet, path: "/users/{user}/sessions",
			by: map[callerKind]outcome{
				byAPIKey:        answers(http.StatusOK),
				byOwnToken:      answers(http.StatusOK),
				bySameUserOther: answers(http.StatusOK),
				byOtherUserHere: refused(http.StatusForbidden, "forbidden"),
				byStranger:      refused(http.StatusForbidden, "forbidden"),
				byNoCredentials: refusedUnauthenticated,
				byEndedToken:    refusedUnauthenticated,
				byExpiredToken:  refusedUnauthenticated,
			},
		},
		{
			method: http.MethodDelete, path: "/users/{user}/sessions",
			by: map[callerKind]outcome{
				byAPIKey:        ends(http.StatusOK, "revoked"),
				byOwnToken:      ends(http.StatusOK, "ended"),
				bySameUserOther: ends(http.StatusOK, "revoked"),
				byOtherUserHere: refused(http.StatusForbidden, "forbidden"),
				byStranger:      refused(http.StatusForbidden, "forbidden"),
				byNoCredentials: refusedUnauthenticated,
				byEndedToken:    refusedUnauthenticated,
				byExpiredToken:  refusedUnauthenticated,
			},
		},
		{
			method: http.MethodGet, path: "/clients/{client}/sessions",
			by: map[callerKind]outcome{
				byAPIKey:        answers(http.StatusOK),
				byOwnToken:      answers(http.StatusOK),
				bySameUserOther: refused(http.StatusNotFound, "client_not_found"),
				byOtherUserHere: answers(http.StatusOK),
				byStranger:      refused(http.StatusNotFound, "client_not_found"),
				byNoCredentials: refusedUnauthenticated,
				byEndedToken:    refusedUnauthenticated,
				byExpiredToken:  refusedUnauthenticated,
			},
		},
		{
			method: http.MethodDelete, path: "/clients/{client}/sessions",
			by: map[callerKind]outcome{
				byAPIKey:        ends(http.StatusOK, "revoked"),
				byOwnToken:      ends(http.StatusOK, "ended"),
				bySameUserOther: refused(http.StatusNotFound, "client_not_found"),
				byOtherUserHere: ends(http.StatusOK, "ended"),
				byStranger:      refused(http.StatusNotFound, "client_not_found"),
				byNoCredentials: refusedUnauthenticated,
				byEndedToken:    refusedUnauthenticated,
				byExpiredToken:  refusedUnauthenticated,
			},
		},
	}

	// Every 401 must be this one, whatever the reason.
	the401 := newEnv(t).do(t, http.MethodGet, "/session", noCred, nil)
	the401.wantProblem(t, http.StatusUnauthorized, unauthenticated)

	for _, ep := range endpoints {
		for _, k := range callerKinds {
			want, ok := ep.by[k]
			if !ok {
				t.Fatalf("the matrix has no cell for %s %s by %s", ep.method, ep.path, k)
			}
			t.Run(ep.method+" "+ep.path+"/by "+string(k), func(t *testing.T) {
				t.Parallel()
				e := newEnv(t, multiMode)
				w := newAuthzWorld(t, e)
				c, held := w.cred(k)
				fill := strings.NewReplacer("{target}", w.target.ID, "{user}", w.target.UserID, "{client}", w.target.ClientID)
				var body any
				if ep.body != nil {
					b, _ := json.Marshal(ep.body)
					body = fill.Replace(string(b))
				}

				r := e.do(t, ep.method, fill.Replace(ep.path), c, body)

				if want.code != "" {
					r.wantProblem(t, want.status, want.code)
					if bytes.Contains(r.Body, []byte(w.target.ID)) {
						t.Errorf("a refusal names the target session: %s", r.Body)
					}
				} else {
					r.wantStatus(t, want.status)
					about := w.target.ID
					if ep.aboutCaller {
						about = held.ID
					}
					if !bytes.Contains(r.Body, []byte(about)) {
						t.Errorf("answer does not name %s: %s", about, r.Body)
					}
				}
				if want.status == http.StatusUnauthorized {
					wantThe401(t, r, the401)
				}
				if want.target == "active" {
					e.wantActive(t, w.target)
				} else {
					e.wantSignedOut(t, want.target, w.target)
				}
			})
		}
	}
}

// wantThe401 fails unless r is the one unauthenticated answer: the same
// body as want but for its request ID, and a WWW-Authenticate challenge.
func wantThe401(t *testing.T, r, want response) {
	t.Helper()
	r.wantProblem(t, http.StatusUnauthorized, unauthenticated)
	if got, want := withoutRequestID(t, r.Body), withoutRequestID(t, want.Body); got != want {
		t.Errorf("401 body differs:\n got %s\nwant %s", got, want)
	}
	if h := r.Header.Get("WWW-Authenticate"); !strings.HasPrefix(h, "Bearer") {
		t.Errorf("WWW-Authenticate %q, want a Bearer challenge", h)
	}
}

// withoutRequestID returns a problem body, re-encoded without its
// request_id, the one field that differs from request to request.
func withoutRequestID(t *testing.T, body []byte) string {
	t.Helper()
	var p map[string]any
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
	if _, ok := p["request_id"]; !ok {
		t.Errorf("problem without request_id: %s", body)
	}
	delete(p, "request_id")
	b, _ := json.Marshal(p) // maps encode with sorted keys
	return string(b)
}

// TestEveryBadCredentialIsTheSame401 presents every kind of bad credential
// to every endpoint that needs one: each answer is the same 401, and
// nothing changes.
func TestEveryBadCredentialIsTheSame401(t *testing.T) {
	t.Parallel()
	e := newEnv(t, multiMode)
	w := newAuthzWorld(t, e)
	the401 := e.do(t, http.MethodGet, "/session", noCred, nil)
	the401.wantProblem(t, http.StatusUnauthorized, unauthenticated)

	credentials := []struct {
		name          string
		authorization string // the whole header
		cookie        string
	}{
		{name: "garbage bearer", authorization: "Bearer nonsense"},
		{name: "truncated token", authorization: "Bearer " + w.target.Token[:20]},
		{name: "token with a character changed", authorization: "Bearer " + w.target.Token[:10] + flip(w.target.Token[10]) + w.target.Token[11:]},
		{name: "well-formed unknown token", authorization: "Bearer st_" + strings.Repeat("A", 43)},
		{name: "signed-out token", authorization: "Bearer " + w.ended.Token},
		{name: "expired token", authorization: "Bearer " + w.expired.Token},
		{name: "unknown API key", authorization: "Bearer sk_test_not_the_configured_key"},
		{name: "API key with a character more", authorization: "Bearer " + apiKey + "x"},
		{name: "too short to be an API key", authorization: "Bearer sk_"},
		{name: "empty bearer", authorization: "Bearer "},
		{name: "scheme only", authorization: "Bearer"},
		{name: "Basic scheme with a valid token", authorization: "Basic " + w.target.Token},
		{name: "Token scheme with the API key", authorization: "Token " + apiKey},
		{name: "API key without a scheme", authorization: apiKey},
		{name: "garbage cookie", cookie: "nonsense"},
		{name: "signed-out token in the cookie", cookie: w.ended.Token},
		{name: "expired token in the cookie", cookie: w.expired.Token},
		{name: "API key in the cookie", cookie: apiKey},
	}
	requests := []struct{ method, path string }{
		{http.MethodPost, "/sessions"},
		{http.MethodGet, "/session"},
		{http.MethodDelete, "/session"},
		{http.MethodGet, "/sessions/" + w.target.ID},
		{http.MethodDelete, "/sessions/" + w.target.ID},
		{http.MethodGet, "/users/alice/sessions"},
		{http.MethodDelete, "/users/alice/sessions"},
		{http.MethodGet, "/clients/" + w.target.ClientID + "/sessions"},
		{http.MethodDelete, "/clients/" + w.target.ClientID + "/sessions"},
	}
	for _, c := range credentials {
		t.Run(c.name, func(t *testing.T) {
			for _, rq := range requests {
				h := http.Header{}
				if c.authorization != "" {
					h.Set("Authorization", c.authorization)
				}
				if c.cookie != "" {
					h.Set("Cookie", (&http.Cookie{Name: "__session", Value: c.cookie}).String())
				}
				var body string
				if rq.method == http.MethodPost {
					h.Set("Content-Type", "application/json")
					body = `{"user_id":"alice","client_id":"` + w.target.ClientID + `"}`
				}
				r := e.doRaw(t, rq.method, rq.path, h, body)
				if r.Status != http.StatusUnauthorized {
					t.Errorf("%s %s: %d %s, want 401", rq.method, rq.path, r.Status, r.Body)
					continue
				}
				wantThe401(t, r, the401)
			}
		})
	}
	e.wantActive(t, w.target, w.aliceThere, w.bobHere, w.carol)

	t.Run("the scheme is case-insensitive", func(t *testing.T) {
		h := http.Header{"Authorization": {"bEaReR " + w.target.Token}}
		e.doRaw(t, http.MethodGet, "/session", h, "").wantStatus(t, http.StatusOK)
	})
}

// flip returns a different base64url character than c.
func flip(c byte) string {
	if c == 'A' {
		return "B"
	}
	return "A"
}

// noAPIKeys configures a server without API keys.
func noAPIKeys(_ *sessions.Config, a *api.Config) { a.APIKeys = nil }

// TestWithoutAPIKeysBackendCallsAre401 runs a replica that has no API key
// configured next to one that has: there, the key that works elsewhere is
// refused like any unknown credential, and holders are unaffected.
func TestWithoutAPIKeysBackendCallsAre401(t *testing.T) {
	t.Parallel()
	withKeys := newEnv(t)
	s := withKeys.mustSignIn(t, "alice", "")
	e := newEnvOn(t, withKeys.Store, noAPIKeys)
	the401 := e.do(t, http.MethodGet, "/session", noCred, nil)

	for _, rq := range []struct {
		method, path string
		body         any
	}{
		{http.MethodPost, "/sessions", map[string]any{"user_id": "bob"}},
		{http.MethodGet, "/sessions/" + s.ID, nil},
		{http.MethodDelete, "/sessions/" + s.ID, nil},
		{http.MethodGet, "/users/alice/sessions", nil},
		{http.MethodDelete, "/users/alice/sessions", nil},
		{http.MethodGet, "/clients/" + s.ClientID + "/sessions", nil},
		{http.MethodDelete, "/clients/" + s.ClientID + "/sessions", nil},
	} {
		t.Run(rq.method+" "+rq.path, func(t *testing.T) {
			wantThe401(t, e.do(t, rq.method, rq.path, backend, rq.body), the401)
		})
	}
	e.wantActive(t, s)
	var l listAnswer
	withKeys.do(t, http.MethodGet, "/users/bob/sessions?status=all", backend, nil).decode(t, &l)
	if len(l.Data) != 0 {
		t.Errorf("a refused sign-in created %d sessions", len(l.Data))
	}
	// A holder does not need a key.
	e.do(t, http.MethodGet, "/users/alice/sessions", bearer(s.Token), nil).wantStatus(t, http.StatusOK)
	e.mustEnd(t, "/session", bearer(s.Token))
	withKeys.wantSignedOut(t, "ended", s)
}

// TestMalformedIDs: wherever an ID is expected, a malformed one is 400
// invalid_id and nothing ends, whoever asks.
func TestMalformedIDs(t *testing.T) {
	t.Parallel()
	e := newEnv(t, multiMode)
	w := newWorld(t, e, true)
	// IDs are written as they appear in the URL.
	valid := strings.TrimPrefix(w.aliceHere.ID, "sess_")
	malformedSessions := map[string]string{
		"no prefix":              valid,
		"prefix only":            "sess_",
		"one character short":    "sess_" + valid[:25],
		"one character long":     "sess_" + valid + "0",
		"lower case":             "sess_" + strings.ToLower(valid),
		"not base32 (U)":         "sess_" + valid[:25] + "U",
		"beyond the ULID range":  "sess_8" + valid[1:],
		"a client ID":            w.aliceHere.ClientID,
		"a token":                w.aliceHere.Token,
		"an escaped slash":       "sess_" + valid[:13] + "%2F" + valid[14:],
		"unicode":                "sess_" + valid[:25] + "%C3%A9",
		"padded with a space":    "sess_" + valid + "%20",
		"prefix in another case": "SESS_" + valid,
	}
	validClient := strings.TrimPrefix(w.aliceHere.ClientID, "client_")
	malformedClients := map[string]string{
		"no prefix":           validClient,
		"prefix only":         "client_",
		"one character short": "client_" + validClient[:25],
		"lower case":          "client_" + strings.ToLower(validClient),
		"not base32 (L)":      "client_" + validClient[:25] + "L",
		"a session ID":        w.aliceHere.ID,
	}
	type place struct {
		name, method, pathFmt string // %s is where the ID goes
		c                     cred
	}
	sessionPlaces := []place{
		{"GET /sessions/{id} (API key)", http.MethodGet, "/sessions/%s", backend},
		{"GET /sessions/{id} (holder)", http.MethodGet, "/sessions/%s", bearer(w.aliceHere.Token)},
		{"DELETE /sessions/{id} (API key)", http.MethodDelete, "/sessions/%s", backend},
		{"DELETE /sessions/{id} (holder)", http.MethodDelete, "/sessions/%s", bearer(w.aliceHere.Token)},
		{"DELETE /session?session_id=", http.MethodDelete, "/session?session_id=%s", bearer(w.aliceHere.Token)},
		{"DELETE /users/{id}/sessions?except= (API key)", http.MethodDelete, "/users/alice/sessions?except=%s", backend},
		{"DELETE /users/{id}/sessions?except= (holder)", http.MethodDelete, "/users/alice/sessions?except=%s", bearer(w.aliceHere.Token)},
	}
	clientPlaces := []place{
		{"GET /clients/{id}/sessions (API key)", http.MethodGet, "/clients/%s/sessions", backend},
		{"GET /clients/{id}/sessions (holder)", http.MethodGet, "/clients/%s/sessions", bearer(w.aliceHere.Token)},
		{"DELETE /clients/{id}/sessions (API key)", http.MethodDelete, "/clients/%s/sessions", backend},
		{"DELETE /clients/{id}/sessions (holder)", http.MethodDelete, "/clients/%s/sessions", bearer(w.aliceHere.Token)},
	}
	try := func(places []place, ids map[string]string) {
		for _, p := range places {
			for name, id := range ids {
				t.Run(p.name+"/"+name, func(t *testing.T) {
					path := strings.Replace(p.pathFmt, "%s", id, 1)
					e.do(t, p.method, path, p.c, nil).wantProblem(t, http.StatusBadRequest, "invalid_id")
				})
			}
		}
	}
	try(sessionPlaces, malformedSessions)
	try(clientPlaces, malformedClients)
	t.Run("POST /sessions client_id", func(t *testing.T) {
		for name, id := range malformedClients {
			r := e.do(t, http.MethodPost, "/sessions", backend, map[string]any{"user_id": "alice", "client_id": id})
			if r.Status != http.StatusBadRequest || problemCodeOf(r.Body) != "invalid_id" {
				t.Errorf("%s: %d %s, want 400 invalid_id", name, r.Status, r.Body)
			}
		}
	})
	e.wantActive(t, w.aliceHere, w.aliceThere, w.bobHere, w.carol)
}

// TestUnknownIDs: a well-formed ID of nothing is 404, exactly as a session
// or client the caller may not see, and nothing ends.
func TestUnknownIDs(t *testing.T) {
	t.Parallel()
	e := newEnv(t, multiMode)
	w := newWorld(t, e, true)
	holder := bearer(w.aliceHere.Token)
	for _, c := range []struct {
		name, method, path string
		cred               cred
		code               string
	}{
		{"GET /sessions/{unknown} (API key)", http.MethodGet, "/sessions/" + anUnknownSession, backend, "session_not_found"},
		{"GET /sessions/{unknown} (holder)", http.MethodGet, "/sessions/" + anUnknownSession, holder, "session_not_found"},
		{"DELETE /sessions/{unknown} (API key)", http.MethodDelete, "/sessions/" + anUnknownSession, backend, "session_not_found"},
		{"DELETE /sessions/{unknown} (holder)", http.MethodDelete, "/sessions/" + anUnknownSession, holder, "session_not_found"},
		{"DELETE /session?session_id={unknown}", http.MethodDelete, "/session" + q("session_id", anUnknownSession), holder, "session_not_found"},
		{"GET /clients/{unknown}/sessions (API key)", http.MethodGet, "/clients/" + anUnknownClient + "/sessions", backend, "client_not_found"},
		{"GET /clients/{unknown}/sessions (holder)", http.MethodGet, "/clients/" + anUnknownClient + "/sessions", holder, "client_not_found"},
		{"DELETE /clients/{unknown}/sessions (API key)", http.MethodDelete, "/clients/" + anUnknownClient + "/sessions", backend, "client_not_found"},
		{"DELETE /clients/{unknown}/sessions (holder)", http.MethodDelete, "/clients/" + anUnknownClient + "/sessions", holder, "client_not_found"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := e.do(t, c.method, c.path, c.cred, nil)
			r.wantProblem(t, http.StatusNotFound, c.code)
			// Unknown and not visible answer alike.
			var hidden string
			switch c.code {
			case "session_not_found":
				hidden = strings.Replace(c.path, anUnknownSession, w.carol.ID, 1)
			default:
				hidden = strings.Replace(c.path, anUnknownClient, w.carol.ClientID, 1)
			}
			if c.cred == holder {
				h := e.do(t, c.method, hidden, c.cred, nil)
				if got, want := withoutRequestID(t, h.Body), withoutRequestID(t, r.Body); h.Status != r.Status || got != want {
					t.Errorf("someone else's: %d %s\nunknown: %d %s", h.Status, got, r.Status, want)
				}
			}
		})
	}
	t.Run("a user without sessions is an empty list", func(t *testing.T) {
		var l listAnswer
		r := e.do(t, http.MethodGet, "/users/nobody/sessions?status=all", backend, nil)
		r.wantStatus(t, http.StatusOK)
		r.decode(t, &l)
		if len(l.Data) != 0 || l.NextCursor != nil {
			t.Errorf("got %s, want an empty list", r.Body)
		}
	})
	e.wantActive(t, w.aliceHere, w.aliceThere, w.bobHere, w.carol)
}

// TestUserIDsInPaths: a user ID is any printable UTF-8 of 1 to 255 bytes,
// so /users/{id}/sessions takes it URL-escaped, "/" included.
func TestUserIDsInPaths(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, c := range []struct{ name, userID string }{
		{"an escaped slash", "org/42"},
		{"unicode", "ユーザー-ünïcødé-👤"},
		{"a percent sign", "100%"},
		{"a space", "john doe"},
		{"query and fragment characters", "a?b#c&d=e"},
		{"dots", ".."},
		{"exactly 255 bytes", strings.Repeat("é", 127) + "x"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := e.mustSignIn(t, c.userID, "")
			other := e.mustSignIn(t, "someone else", "")
			path := "/users/" + url.PathEscape(c.userID) + "/sessions"
			for _, cr := range []cred{backend, bearer(s.Token)} {
				var l listAnswer
				r := e.do(t, http.MethodGet, path, cr, nil)
				r.wantStatus(t, http.StatusOK)
				r.decode(t, &l)
				if len(l.Data) != 1 || l.Data[0].ID != s.ID || l.Data[0].UserID != c.userID {
					t.Fatalf("GET %s: %s, want the one session of %q", path, r.Body, c.userID)
				}
			}
			a := e.mustEnd(t, path, bearer(s.Token))
			if got := endedIDs(a); !slices.Equal(got, []string{s.ID}) {
				t.Fatalf("DELETE %s ended %v, want %s", path, got, s.ID)
			}
			e.wantSignedOut(t, "ended", s)
			e.wantActive(t, other)
		})
	}
	for _, c := range []struct{ name, escaped string }{
		{"256 bytes", url.PathEscape(strings.Repeat("é", 128))},
		{"a control character", "a%07b"},
		{"a newline", "a%0Ab"},
		{"not UTF-8", "a%FFb"},
	} {
		t.Run(c.name+" is invalid_id", func(t *testing.T) {
			for _, m := range []string{http.MethodGet, http.MethodDelete} {
				e.do(t, m, "/users/"+c.escaped+"/sessions", backend, nil).wantProblem(t, http.StatusBadRequest, "invalid_id")
			}
		})
	}
}
