package api_test

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestSignIn(t *testing.T) {
	t.Parallel()
	t.Run("answers the session, a token and nothing ended", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		r := e.do(t, http.MethodPost, "/sessions", backend, map[string]any{
			"user_id": "user_123", "user_agent": "Mozilla/5.0", "ip_address": "::ffff:203.0.113.7",
			"metadata": map[string]any{"plan": "pro"},
		})
		r.wantStatus(t, http.StatusCreated)
		var a signInAnswer
		r.decode(t, &a)
		s := a.Session
		if s.UserID != "user_123" || s.Status != "active" || s.EndedAt != nil || len(a.Ended) != 0 ||
			*s.UserAgent != "Mozilla/5.0" || *s.IPAddress != "203.0.113.7" || !sameJSON(s.Metadata, `{"plan":"pro"}`) {
			t.Fatalf("unexpected answer %s", r.Body)
		}
		if !s.ExpiresAt.Equal(s.CreatedAt.Add(168*time.Hour)) || !s.LastActiveAt.Equal(s.CreatedAt) {
			t.Fatalf("times: %s", r.Body)
		}
		e.wantActive(t, signedIn{ID: s.ID, Token: a.Token})
	})
	t.Run("single/a new sign-in on a client replaces every session there", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		alice := e.mustSignIn(t, "alice", "")
		r := e.do(t, http.MethodPost, "/sessions", backend, map[string]any{"user_id": "bob", "client_id": alice.ClientID})
		r.wantStatus(t, http.StatusCreated)
		var a signInAnswer
		r.decode(t, &a)
		if len(a.Ended) != 1 || a.Ended[0].ID != alice.ID || a.Ended[0].Status != "replaced" {
			t.Fatalf("ended %+v, want alice's session replaced", a.Ended)
		}
		e.wantSignedOut(t, "replaced", alice)
		e.wantActive(t, signedIn{ID: a.Session.ID, Token: a.Token})
	})
	t.Run("multi/another account on the client leaves the first signed in", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, multiMode)
		alice := e.mustSignIn(t, "alice", "")
		bob := e.mustSignIn(t, "bob", alice.ClientID)
		e.wantActive(t, alice, bob)
	})
	t.Run("multi/the same user signing in again on the client replaces their session", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, multiMode)
		alice := e.mustSignIn(t, "alice", "")
		bob := e.mustSignIn(t, "bob", alice.ClientID)
		again := e.mustSignIn(t, "alice", alice.ClientID)
		e.wantSignedOut(t, "replaced", alice)
		e.wantActive(t, bob, again)
	})
	t.Run("limit/the least recently active sessions are evicted", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, maxSessions(2))
		first := e.mustSignIn(t, "alice", "")
		e.Clock.Advance(2 * time.Minute)
		second := e.mustSignIn(t, "alice", "")
		e.Clock.Advance(2 * time.Minute)
		e.wantActive(t, first) // first is now the most recently active
		e.Clock.Advance(2 * time.Minute)
		r := e.do(t, http.MethodPost, "/sessions", backend, map[string]any{"user_id": "alice"})
		r.wantStatus(t, http.StatusCreated)
		var a signInAnswer
		r.decode(t, &a)
		if len(a.Ended) != 1 || a.Ended[0].ID != second.ID || a.Ended[0].Status != "evicted" {
			t.Fatalf("ended %+v, want the second session evicted", a.Ended)
		}
		e.wantSignedOut(t, "evicted", second)
		e.wantActive(t, first, signedIn{ID: a.Session.ID, Token: a.Token})
		other := e.mustSignIn(t, "bob", "") // other users do not count
		e.wantActive(t, other, first)
	})
	t.Run("an unknown client is 404 and creates nothing", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		r := e.do(t, http.MethodPost, "/sessions", backend, map[string]any{"user_id": "alice", "client_id": "client_01J0000000000000000000000Z"})
		r.wantProblem(t, http.StatusNotFound, "client_not_found")
		var l listAnswer
		e.do(t, http.MethodGet, "/users/alice/sessions?status=all", backend, nil).decode(t, &l)
		if len(l.Data) != 0 {
			t.Fatalf("a failed sign-in left %d sessions", len(l.Data))
		}
	})
}

func TestSignInRejectsBadInput(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	long := strings.Repeat("x", 256)
	bigMeta := `{"k":"` + strings.Repeat("x", 4100) + `"}`
	for _, c := range []struct {
		name, body, contentType string
		status                  int
		code, field             string
	}{
		{"no user_id", `{}`, "", 400, "invalid_request", "user_id"},
		{"empty user_id", `{"user_id":""}`, "", 400, "invalid_request", "user_id"},
		{"user_id over 255 bytes", `{"user_id":"` + long + `"}`, "", 400, "invalid_request", "user_id"},
		{"user_id with a control character", `{"user_id":"a\u0007b"}`, "", 400, "invalid_request", "user_id"},
		{"user_id not a string", `{"user_id":42}`, "", 400, "invalid_request", "user_id"},
		{"malformed client_id", `{"user_id":"a","client_id":"client_nope"}`, "", 400, "invalid_id", "client_id"},
		{"bad ip_address", `{"user_id":"a","ip_address":"999.1.1.1"}`, "", 400, "invalid_request", "ip_address"},
		{"metadata not an object", `{"user_id":"a","metadata":[1]}`, "", 400, "invalid_request", "metadata"},
		{"metadata over 4 KiB", `{"user_id":"a","metadata":` + bigMeta + `}`, "", 400, "invalid_request", "metadata"},
		{"unknown field", `{"user_id":"a","admin":true}`, "", 400, "invalid_request", "admin"},
		{"not JSON", `user_id=a`, "", 400, "invalid_request", ""},
		{"two objects", `{"user_id":"a"}{"user_id":"b"}`, "", 400, "invalid_request", ""},
		{"not application/json", `{"user_id":"a"}`, "text/plain", 415, "unsupported_media_type", ""},
		{"over the body limit", `{"user_id":"a","metadata":{"k":"` + strings.Repeat("x", 70<<10) + `"}}`, "", 413, "payload_too_large", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, e.URL+"/sessions", strings.NewReader(c.body))
			ct := c.contentType
			if ct == "" {
				ct = "application/json"
			}
			req.Header.Set("Content-Type", ct)
			req.Header.Set("Authorization", "Bearer "+apiKey)
			resp, err := e.http.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var p struct {
				Status int               `json:"status"`
				Code   string            `json:"code"`
				Errors map[string]string `json:"errors"`
			}
			r := response{Status: resp.StatusCode, Header: resp.Header}
			r.Body = readAll(t, resp)
			r.wantProblem(t, c.status, c.code)
			r.decode(t, &p)
			if c.field != "" && p.Errors[c.field] == "" {
				t.Errorf("errors %v do not name %q", p.Errors, c.field)
			}
		})
	}
	var l listAnswer
	e.do(t, http.MethodGet, "/users/a/sessions?status=all", backend, nil).decode(t, &l)
	if len(l.Data) != 0 {
		t.Fatalf("rejected sign-ins left %d sessions", len(l.Data))
	}
}
